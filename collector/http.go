package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/prober"
)

var (
	odooWebURL = kingpin.Flag("odoo.web-url",
		"Base URL of Odoo's web port reached directly, bypassing the proxy (e.g. http://127.0.0.1:8069). Empty disables the direct HTTP probe.").
		Envar("ODOO_EXPORTER_WEB_URL").String()
	odooPublicURL = kingpin.Flag("odoo.public-url",
		"Public base URL of Odoo, through the reverse proxy (e.g. https://erp.example.com). Empty disables the public HTTP probe.").
		Envar("ODOO_EXPORTER_PUBLIC_URL").String()
	httpPath = kingpin.Flag("collector.http.path",
		"Path requested on both targets; redirects are not followed (/ and /web answer 303).").
		Default("/web/login").String()
	httpTimeout = kingpin.Flag("collector.http.timeout",
		"Timeout of each HTTP probe (the scrape's deadline applies when sooner).").
		Default("5s").Duration()
	httpDatabase = kingpin.Flag("collector.http.database",
		"Value of the database label of odoo_version_info{source=\"http\"}.").
		Default("").String()
)

func init() {
	registerCollector("http", true, func(d Deps) (any, error) {
		c, err := NewHTTPCollector(HTTPOptions{
			DirectURL: *odooWebURL, PublicURL: *odooPublicURL, Path: *httpPath,
			Timeout: *httpTimeout, Database: *httpDatabase, Logger: d.Logger,
		})
		if c == nil || err != nil {
			return nil, err
		}
		return c, nil
	})
}

// HTTPOptions configures the HTTP collector.
type HTTPOptions struct {
	// DirectURL is Odoo's web port; PublicURL the same through the proxy.
	DirectURL, PublicURL string
	// Path is requested on both (default /web/login).
	Path string
	// Timeout bounds each request (default 5 s).
	Timeout time.Duration
	// Database labels odoo_version_info.
	Database string
	Logger   *slog.Logger
}

// HTTPCollector requests the same path on Odoo's web port directly and
// through the public URL, on every scrape, so that "Odoo down" (both fail)
// and "proxy broken" (only public fails) are told apart, as the 502
// runbook does by hand with curl. It also reads Odoo's version from
// /web/webclient/version_info.
//
// A target that does not answer is the probe's finding (odoo_http_up 0),
// not a failure of the collector; its state changes are logged once.
type HTTPCollector struct {
	opts    HTTPOptions
	client  *http.Client
	targets []httpTarget
}

type httpTarget struct {
	name, base string
	source     *probeSource
}

// NewHTTPCollector returns nil when no URL is configured, and an error
// when a URL is not an absolute http(s) URL.
func NewHTTPCollector(o HTTPOptions) (*HTTPCollector, error) {
	if o.DirectURL == "" && o.PublicURL == "" {
		return nil, nil
	}
	if o.Path == "" {
		o.Path = "/web/login"
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	o.DirectURL = strings.TrimRight(o.DirectURL, "/")
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	// Redirects are not followed; the origins only make sure of it.
	origins, err := prober.NewOrigins(o.DirectURL, o.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("HTTP probe URL: %w", err)
	}
	c := &HTTPCollector{opts: o, client: prober.NewClient(false, 2, origins)}
	for _, t := range []struct{ name, base string }{{"direct", o.DirectURL}, {"public", o.PublicURL}} {
		if t.base != "" {
			c.targets = append(c.targets, httpTarget{t.name, t.base, newProbeSource(o.Logger, "http", t.name, t.base+o.Path)})
		}
	}
	return c, nil
}

var (
	httpUpDesc = prometheus.NewDesc("odoo_http_up",
		"Whether Odoo answered the probe path with a status below 400 (target=\"direct\": web port, \"public\": through the proxy).",
		[]string{"target"}, nil)
	httpStatusDesc = prometheus.NewDesc("odoo_http_status_code",
		"HTTP status of the probe (0 when no answer came).", []string{"target"}, nil)
	httpDurationDesc = prometheus.NewDesc("odoo_http_duration_seconds",
		"Time the probe took.", []string{"target"}, nil)
)

// Describe implements Collector.
func (c *HTTPCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- httpUpDesc
	ch <- httpStatusDesc
	ch <- httpDurationDesc
	ch <- versionInfoDesc
}

// Update implements Collector. Each probe ends at its timeout or at the
// scrape's deadline, whichever comes first.
func (c *HTTPCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	scrape := ctx
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, t := range c.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := prober.HTTP(ctx, c.client, http.MethodGet, t.base+c.opts.Path, nil, nil)
			var err error
			if !r.Up() {
				err = r.Err
				if err == nil {
					err = &prober.Error{Reason: prober.ReasonStatus, Err: fmt.Errorf("answered %d", r.Status)}
				}
			}
			up := 0.0
			if err == nil || scrape.Err() == nil { // else cut by the scrape: not the source's state
				up = t.source.observe(err)
			}
			ch <- prometheus.MustNewConstMetric(httpUpDesc, prometheus.GaugeValue, up, t.name)
			ch <- prometheus.MustNewConstMetric(httpStatusDesc, prometheus.GaugeValue, float64(r.Status), t.name)
			ch <- prometheus.MustNewConstMetric(httpDurationDesc, prometheus.GaugeValue, r.Duration.Seconds(), t.name)
		}()
	}
	base := c.opts.DirectURL
	if base == "" {
		base = c.opts.PublicURL
	}
	if v, err := VersionInfo(ctx, c.client, base); err == nil {
		ch <- prometheus.MustNewConstMetric(versionInfoDesc, prometheus.GaugeValue, 1, c.opts.Database, v, "http")
	}
	wg.Wait()
	return nil
}

// VersionInfo asks Odoo's /web/webclient/version_info (JSON-RPC) for its
// version and returns "<major>.<minor>" from server_version_info (e.g.
// "17.0", "saas~17.2"); server_version may carry build suffixes.
func VersionInfo(ctx context.Context, client *http.Client, base string) (string, error) {
	body := strings.NewReader(`{"jsonrpc":"2.0","method":"call","params":{},"id":1}`)
	a, err := prober.Fetch(ctx, client, http.MethodPost, base+"/web/webclient/version_info", body,
		http.Header{"Content-Type": {"application/json"}}, 1<<16, true)
	if err != nil {
		return "", fmt.Errorf("version_info: %w", err)
	}
	if a.Status != http.StatusOK {
		return "", fmt.Errorf("version_info answered %d", a.Status)
	}
	var r struct {
		Result struct {
			ServerVersion     string `json:"server_version"`
			ServerVersionInfo []any  `json:"server_version_info"`
		} `json:"result"`
	}
	if err := json.Unmarshal(a.Body, &r); err != nil {
		return "", fmt.Errorf("version_info: %w", err)
	}
	if info := r.Result.ServerVersionInfo; len(info) >= 2 {
		return fmt.Sprintf("%v.%v", info[0], info[1]), nil
	}
	if r.Result.ServerVersion != "" {
		return r.Result.ServerVersion, nil
	}
	return "", errors.New("version_info: no version in the answer")
}
