package collector

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/prober"
)

// Longpoll probe modes.
const (
	LongpollHealth    = "health"    // GET /websocket/health on the gevent port
	LongpollWebsocket = "websocket" // connect, subscribe, ping
	LongpollRoundTrip = "roundtrip" // bus_bus row + NOTIFY imbus, until delivered
)

var (
	odooGeventURL = kingpin.Flag("odoo.gevent-url",
		"Base URL of Odoo's gevent (longpolling/websocket) port, e.g. http://127.0.0.1:8072, or of the proxy that routes /websocket to it. Empty disables the longpoll prober.").
		Envar("ODOO_EXPORTER_GEVENT_URL").String()
	longpollMode = kingpin.Flag("collector.longpoll.mode",
		"Probe: health (gevent health route), websocket (connect+subscribe+ping) or roundtrip (publish a bus message and wait for it; needs --collector.longpoll.roundtrip-dsn).").
		Default(LongpollWebsocket).Enum(LongpollHealth, LongpollWebsocket, LongpollRoundTrip)
	longpollInterval = kingpin.Flag("collector.longpoll.interval",
		"Time between two probes (they run in the background, independent of scrapes).").
		Default("15s").Duration()
	longpollTimeout = kingpin.Flag("collector.longpoll.timeout",
		"Timeout of one probe; a probe that times out is observed in the latency histogram with its elapsed time.").
		Default("10s").Duration()
	longpollOrigin = kingpin.Flag("collector.longpoll.origin",
		"Origin header of the websocket handshake (Odoo 17+ requires one; default: --odoo.public-url, else --odoo.web-url, else --odoo.gevent-url).").
		Default("").String()
	longpollWSVersion = kingpin.Flag("collector.longpoll.websocket-version",
		"websocket_worker_version sent as ?version= (default: read from the login page of --odoo.web-url when set).").
		Default("").String()
	longpollRoundTripDSN = kingpin.Flag("collector.longpoll.roundtrip-dsn",
		"DSN of the Odoo database for the round trip; it writes (INSERT/DELETE on bus_bus, pg_notify in the notify database), so it is separate from the read-only --pg.dsn. Prefer the environment variable.").
		Envar("ODOO_EXPORTER_LONGPOLL_DSN").String()
	longpollNotifyDB = kingpin.Flag("collector.longpoll.notify-database",
		"Database in which Odoo's bus dispatcher LISTENs for imbus (Odoo's db_system, \"postgres\").").
		Default("postgres").String()
)

func init() {
	registerCollector("longpoll", true, func(d Deps) (any, error) {
		origin := *longpollOrigin
		for _, u := range []string{*odooPublicURL, *odooWebURL, *odooGeventURL} {
			if origin == "" {
				origin = u
			}
		}
		c, err := NewLongpollCollector(LongpollOptions{
			GeventURL: *odooGeventURL, WebURL: *odooWebURL, Mode: *longpollMode,
			Interval: *longpollInterval, Timeout: *longpollTimeout, Origin: origin,
			WebsocketVersion: *longpollWSVersion, RoundTripDSN: *longpollRoundTripDSN,
			NotifyDatabase: *longpollNotifyDB, Logger: d.Logger,
		})
		if c == nil || err != nil {
			return nil, err
		}
		return c, nil
	})
}

// LongpollOptions configures the longpoll prober.
type LongpollOptions struct {
	// GeventURL is the gevent port's base URL.
	GeventURL string
	// WebURL, when set, is used to read the websocket worker version and
	// to bind the session to the round trip's database.
	WebURL string
	// Mode is LongpollHealth, LongpollWebsocket (default) or LongpollRoundTrip.
	Mode string
	// Interval between probes (default 15 s); Timeout of one (default 10 s).
	Interval, Timeout time.Duration
	// Origin header of the handshake.
	Origin string
	// WebsocketVersion overrides the version read from the login page.
	WebsocketVersion string
	// RoundTripDSN (required by LongpollRoundTrip) connects to the Odoo
	// database with write access to bus_bus.
	RoundTripDSN string
	// NotifyDatabase is where imbus is NOTIFYed (default postgres).
	NotifyDatabase string
	Logger         *slog.Logger
}

// LongpollCollector probes Odoo's bus in the background, every Interval,
// and exposes the latency histogram, whether the last probe succeeded and
// failures by reason. Only the round trip sees a dead dispatcher: health
// and websocket probes stay fine while notifications are not delivered.
type LongpollCollector struct {
	opts      LongpollOptions
	bus       prober.BusOptions
	publisher *prober.Publisher
	health    *http.Client
	source    *probeSource // the gevent port, as the probe sees it

	mu       sync.Mutex // serialises probes
	version  string     // websocket worker version in use
	prepared bool       // login page read (version, session cookie)

	latency  prometheus.Histogram
	up       prometheus.Gauge
	upSet    bool
	upMu     sync.Mutex
	failures *prometheus.CounterVec
}

// LongpollBuckets resolve 5 ms to 10 s (the seed's p95 < 1 s target sits
// in the middle).
var LongpollBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewLongpollCollector returns nil when no gevent URL is configured.
func NewLongpollCollector(o LongpollOptions) (*LongpollCollector, error) {
	if o.GeventURL == "" {
		return nil, nil
	}
	if o.Mode == "" {
		o.Mode = LongpollWebsocket
	}
	if o.Interval <= 0 {
		o.Interval = 15 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.GeventURL = strings.TrimRight(o.GeventURL, "/")
	o.WebURL = strings.TrimRight(o.WebURL, "/")
	// The probes stay on the configured URLs' origins, redirects included.
	gevent, err := prober.NewOrigins(o.GeventURL)
	if err != nil {
		return nil, fmt.Errorf("gevent URL: %w", err)
	}
	both, err := prober.NewOrigins(o.GeventURL, o.WebURL)
	if err != nil {
		return nil, fmt.Errorf("web URL: %w", err)
	}
	busClient := prober.NewClient(true, 1, both)
	busClient.Jar, _ = cookiejar.New(nil) // never fails with nil options
	c := &LongpollCollector{
		opts:    o,
		version: o.WebsocketVersion,
		bus:     prober.BusOptions{GeventURL: o.GeventURL, Origin: o.Origin, Client: busClient},
		health:  prober.NewClient(true, 1, gevent),
		source:  newProbeSource(o.Logger, "longpoll", o.Mode, o.GeventURL),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "odoo_longpoll_latency_seconds",
			Help:    "Latency of the bus probe (mode health: the health request; websocket: connect+subscribe+ping; roundtrip: NOTIFY to delivery). Probes that time out are observed with their elapsed time.",
			Buckets: LongpollBuckets,
		}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "odoo_longpoll_up",
			Help: "Whether the last bus probe succeeded.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoo_longpoll_probe_failures_total",
			Help: "Failed bus probes by reason (timeout, connect, status, handshake, closed, protocol, publish, no_delivery, unavailable).",
		}, []string{"reason"}),
	}
	for _, r := range prober.Reasons {
		c.failures.WithLabelValues(r)
	}
	switch o.Mode {
	case LongpollHealth, LongpollWebsocket:
	case LongpollRoundTrip:
		if o.RoundTripDSN == "" {
			return nil, fmt.Errorf("longpoll mode %q needs a round-trip DSN (--collector.longpoll.roundtrip-dsn)", o.Mode)
		}
		p, err := prober.NewPublisher(o.RoundTripDSN, o.NotifyDatabase)
		if err != nil {
			return nil, err
		}
		c.publisher = p
	default:
		return nil, fmt.Errorf("unknown longpoll mode %q", o.Mode)
	}
	return c, nil
}

// Describe implements Collector.
func (c *LongpollCollector) Describe(ch chan<- *prometheus.Desc) {
	c.latency.Describe(ch)
	c.up.Describe(ch)
	c.failures.Describe(ch)
}

// Update implements Collector: it reports the background prober's state
// and never waits for a probe.
func (c *LongpollCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	c.latency.Collect(ch)
	c.failures.Collect(ch)
	c.upMu.Lock()
	defer c.upMu.Unlock()
	if c.upSet {
		c.up.Collect(ch)
	}
	return nil
}

// Run implements Runner: one probe at once, then every Interval. When it
// returns, odoo_longpoll_up is withdrawn: a stopped prober has no verdict,
// and a stale 1 would hide an outage.
func (c *LongpollCollector) Run(ctx context.Context) {
	defer func() {
		c.setUp(false, false)
		if c.publisher != nil {
			c.publisher.Close()
		}
	}()
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		if err := c.Probe(ctx); err != nil && ctx.Err() == nil {
			c.opts.Logger.Debug("longpoll probe failed", "mode", c.opts.Mode, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Probe runs one probe, bounded by the configured timeout, and records
// its outcome.
func (c *LongpollCollector) Probe(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	begin := time.Now()
	var d time.Duration
	var err error
	switch c.opts.Mode {
	case LongpollHealth:
		err = prober.Health(ctx, c.health, c.opts.GeventURL+"/websocket/health")
		d = time.Since(begin)
	case LongpollWebsocket:
		c.prepare(ctx)
		d, err = prober.Websocket(ctx, c.busOptions())
	case LongpollRoundTrip:
		c.prepare(ctx)
		d, err = prober.RoundTrip(ctx, c.busOptions(), c.publisher)
	}
	if parent.Err() != nil {
		return err // shutting down: not a probe outcome
	}
	c.source.observe(err)
	reason := prober.Reason(err)
	switch {
	case err == nil:
		c.latency.Observe(d.Seconds())
	case reason == prober.ReasonTimeout || reason == prober.ReasonNoDelivery:
		// A stall is latency: the p95 must rise, not only up drop.
		c.latency.Observe(time.Since(begin).Seconds())
	}
	if err != nil {
		c.failures.WithLabelValues(reason).Inc()
		if reason == prober.ReasonClosed || reason == prober.ReasonHandshake {
			c.prepared = false // maybe a new worker version or session
		}
	}
	c.setUp(true, err == nil)
	return err
}

// setUp records the outcome of the last probe; known false withdraws
// odoo_longpoll_up.
func (c *LongpollCollector) setUp(known, up bool) {
	c.upMu.Lock()
	defer c.upMu.Unlock()
	c.upSet = known
	c.up.Set(boolFloat(up))
}

func (c *LongpollCollector) busOptions() prober.BusOptions {
	o := c.bus
	o.Version = c.version
	return o
}

// prepare reads the login page once (again after a refused handshake):
// it sets the session cookie, bound to the round trip's database when
// there is one, and reads the websocket worker version.
func (c *LongpollCollector) prepare(ctx context.Context) {
	if c.prepared || c.opts.WebURL == "" {
		return
	}
	u := c.opts.WebURL + "/web/login"
	if c.publisher != nil {
		u += "?db=" + url.QueryEscape(c.publisher.Database())
	}
	page, _, err := prober.LoginPage(ctx, c.bus.Client, u)
	if err != nil {
		c.opts.Logger.Debug("cannot read the login page", "err", err)
		return
	}
	if c.opts.WebsocketVersion == "" {
		c.version = prober.WebsocketWorkerVersion(page)
	}
	c.prepared = true
}
