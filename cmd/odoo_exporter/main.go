// Command odoo_exporter is a Prometheus exporter for Odoo: it reads
// PostgreSQL (locks, activity, cron, modules, assets), probes Odoo over HTTP
// (bus/longpoll, login page, asset bundles) and reads container state from
// the Docker Engine API.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/odoo-exporter/odoo_exporter/collector"
	"github.com/odoo-exporter/odoo_exporter/postgres"
)

const exporterName = "odoo_exporter"

func main() {
	os.Exit(run())
}

func run() int {
	var (
		metricsPath = kingpin.Flag("web.telemetry-path", "Path under which to expose metrics.").
				Default("/metrics").String()
		maxRequests = kingpin.Flag("web.max-requests", "Maximum number of parallel scrape requests (0 = no limit).").
				Default("10").Int()
		scrapeTimeout = kingpin.Flag("scrape.timeout", "Upper bound of one scrape; Prometheus' X-Prometheus-Scrape-Timeout-Seconds minus --scrape.timeout-offset is used when smaller.").
				Default("10s").Duration()
		timeoutOffset = kingpin.Flag("scrape.timeout-offset", "Subtracted from Prometheus' scrape timeout to leave time for the answer.").
				Default("500ms").Duration()
		dsn = kingpin.Flag("pg.dsn", "PostgreSQL connection string or URL (prefer the environment variable: flags are visible in ps). Empty disables the database collectors.").
			Envar("ODOO_EXPORTER_PG_DSN").String()
		passwordFile = kingpin.Flag("pg.password-file", "File holding the PostgreSQL password (overrides the DSN's).").
				Envar("ODOO_EXPORTER_PG_PASSWORD_FILE").String()
		maxConns = kingpin.Flag("pg.max-connections", "Maximum number of open PostgreSQL connections, across all databases; from 2, one is reserved for the cluster-wide views and the others go to the Odoo databases (kept open and reused).").
				Default("4").Int()
		stmtTimeout = kingpin.Flag("pg.statement-timeout", "statement_timeout set on every session.").
				Default("5s").Duration()
		lockTimeout = kingpin.Flag("pg.lock-timeout", "lock_timeout set on every session.").
				Default("500ms").Duration()
		connectTimeout = kingpin.Flag("pg.connect-timeout", "Timeout of one connection attempt.").
				Default("5s").Duration()
		database = kingpin.Flag("odoo.database", "Odoo database to collect; empty = the DSN's database; 'all' = discover every Odoo database of the cluster.").
				Default("").String()
		discovery = kingpin.Flag("odoo.database-discovery-interval", "How often the Odoo databases are re-discovered (in the background) with --odoo.database=all.").
				Default("5m").Duration()
		discoveryTimeout = kingpin.Flag("odoo.database-discovery-timeout", "Time budget of one discovery run; databases not checked within it keep their last known status and the run counts as failed.").
					Default("1m").Duration()
		refreshSet bool
		refresh    = kingpin.Flag("odoo.database-refresh-interval", "0 runs the per-database collectors (cron, modules, asset_attachments) in every scrape. Above 0 they run in the background, one pass over every database each interval (a pass may last the interval at most), and scrapes answer from the last pass (absent until the first ends; odoo_exporter_database_pass_timestamp_seconds tells its age). Default: 0s, or 1m with --odoo.database=all.").
				IsSetByUser(&refreshSet).Default("0s").Duration()
		toolkitFlags = kingpinflag.AddFlags(kingpin.CommandLine, ":9769")
	)
	promslogConfig := &promslog.Config{}
	flag.AddFlags(kingpin.CommandLine, promslogConfig)
	kingpin.Version(version.Print(exporterName))
	kingpin.HelpFlag.Short('h')
	kingpin.CommandLine.Validate(validateFlags) // flags.go: ranges of every duration, size and count
	kingpin.Parse()
	logger := promslog.New(promslogConfig)

	logger.Info("starting "+exporterName, "version", version.Info())
	logger.Info("build context", "build_context", version.BuildContext())

	if !refreshSet && *database == postgres.AllDatabases {
		*refresh = collector.DefaultDatabaseRefresh
	}
	deps := collector.Deps{Logger: logger, DatabaseRefresh: *refresh}
	if *dsn != "" {
		password := ""
		if *passwordFile != "" {
			b, err := os.ReadFile(*passwordFile)
			if err != nil {
				logger.Error("cannot read the password file", "err", err)
				return 1
			}
			password = strings.TrimRight(string(b), "\r\n")
		}
		src, err := postgres.New(postgres.Config{
			DSN:               *dsn,
			Password:          password,
			Database:          *database,
			MaxConns:          *maxConns,
			StatementTimeout:  *stmtTimeout,
			LockTimeout:       *lockTimeout,
			ConnectTimeout:    *connectTimeout,
			DiscoveryInterval: *discovery,
			DiscoveryTimeout:  *discoveryTimeout,
		}, logger)
		if err != nil {
			logger.Error("invalid PostgreSQL configuration", "err", err)
			return 1
		}
		defer src.Close()
		deps.PG = src
	} else {
		logger.Warn("no PostgreSQL DSN given (--pg.dsn or ODOO_EXPORTER_PG_DSN): database collectors are off")
	}

	exp, err := collector.New(deps)
	if err != nil {
		logger.Error("cannot create collectors", "err", err)
		return 1
	}
	logger.Info("enabled collectors", "collectors", strings.Join(exp.Enabled(), ","))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	background := make(chan struct{})
	go func() {
		defer close(background)
		exp.Run(ctx)
	}()
	defer func() {
		stop()
		<-background
		if err := exp.Close(); err != nil {
			logger.Warn("closing collectors", "err", err)
		}
	}()

	global := prometheus.NewRegistry()
	global.MustRegister(
		versioncollector.NewCollector(exporterName),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	http.Handle(*metricsPath, metricsHandler(exp, global, logger, *maxRequests, *scrapeTimeout, *timeoutOffset))
	if *metricsPath != "/" && *metricsPath != "" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "Odoo Exporter",
			Description: "Prometheus exporter for Odoo: PostgreSQL locks and cron, bus/longpoll, HTTP and assets, containers",
			Version:     version.Info(),
			Links: []web.LandingLinks{
				{Address: *metricsPath, Text: "Metrics"},
				{Address: "https://github.com/odoo-exporter/odoo_exporter/blob/main/docs/runbooks.md", Text: "Runbooks"},
			},
		})
		if err != nil {
			logger.Error("cannot create the landing page", "err", err)
			return 1
		}
		http.Handle("/", landing)
	}

	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second}
	shutdownDone := make(chan struct{})
	go func() {
		defer close(shutdownDone)
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := web.ListenAndServe(srv, toolkitFlags, logger); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("HTTP server failed", "err", err)
		return 1
	}
	// ListenAndServe returns as Shutdown begins: let the scrapes in
	// flight end before the collectors are closed.
	<-shutdownDone
	return 0
}

// metricsHandler gathers the process-wide registry and, per request, a
// scrape of the collectors bounded by the scrape's deadline. At most
// maxRequests (0: no limit) are served at once, across requests: the one
// semaphore is shared by every request, and a request past the limit is
// answered 503 at once, as promhttp's MaxRequestsInFlight does (which,
// being per handler, cannot be used here: the handler is built per
// request around its scrape).
func metricsHandler(exp *collector.Exporter, global *prometheus.Registry, logger *slog.Logger, maxRequests int, maxTimeout, offset time.Duration) http.Handler {
	var inFlight chan struct{}
	if maxRequests > 0 {
		inFlight = make(chan struct{}, maxRequests)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inFlight != nil {
			select {
			case inFlight <- struct{}{}:
				defer func() { <-inFlight }()
			default:
				http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", maxRequests),
					http.StatusServiceUnavailable)
				return
			}
		}
		timeout := ScrapeTimeout(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"), maxTimeout, offset)
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		reg := prometheus.NewRegistry()
		if err := reg.Register(exp.Scrape(ctx)); err != nil {
			http.Error(w, fmt.Sprintf("registering the scrape: %v", err), http.StatusInternalServerError)
			return
		}
		promhttp.HandlerFor(prometheus.Gatherers{global, reg}, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
		}).ServeHTTP(w, r)
	})
}

// ScrapeTimeout is the deadline of one scrape: the smaller of max and the
// header's value minus offset (as blackbox_exporter does).
func ScrapeTimeout(header string, max, offset time.Duration) time.Duration {
	if header == "" {
		return max
	}
	secs, err := strconv.ParseFloat(header, 64)
	if err != nil || secs <= 0 {
		return max
	}
	t := time.Duration(secs*float64(time.Second)) - offset
	if t <= 0 {
		t = time.Duration(secs * float64(time.Second))
	}
	if t < max {
		return t
	}
	return max
}
