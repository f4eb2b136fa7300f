// Command odoo_healer is an Alertmanager webhook receiver that runs safe
// healing actions for Odoo incidents (see docs/healer.md): it ends lock
// blockers and stuck cron locks in PostgreSQL, clears broken asset
// bundles, resets stuck module states, and restarts or signals Odoo's
// containers through the Docker Engine API.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	"gopkg.in/yaml.v3"

	"github.com/odoo-exporter/odoo_exporter/heal"
)

const name = "odoo_healer"

func main() {
	os.Exit(run(os.Args[1:]))
}

// flags are the command line options.
type flags struct {
	configFile       string
	webhookPath      string
	metricsPath      string
	maxBody          int64
	bearerFile       string
	allowUnauth      bool
	auditFile        string
	stateFile        string
	pgDSN            string
	pgPasswordFile   string
	pgStmtTimeout    time.Duration
	pgLockTimeout    time.Duration
	pgConnectTimeout time.Duration
	dockerHost       string
	shutdownTimeout  time.Duration
	checkConfig      bool
	toolkit          *web.FlagConfig
	log              *promslog.Config
	logger           *slog.Logger
}

func parseFlags(args []string) (*flags, error) {
	app := kingpin.New(name, "Alertmanager webhook receiver running safe healing actions for Odoo.")
	f := &flags{log: &promslog.Config{}}
	app.Flag("config.file", "Healer configuration file (rules, targets, dry_run, limits).").Default("odoo_healer.yml").StringVar(&f.configFile)
	app.Flag("config.check", "Validate the configuration file and exit.").BoolVar(&f.checkConfig)
	app.Flag("web.webhook-path", "Path of the Alertmanager webhook endpoint.").Default("/webhook").StringVar(&f.webhookPath)
	app.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&f.metricsPath)
	app.Flag("web.max-body-bytes", "Largest webhook body accepted (413 beyond).").Default("1048576").Int64Var(&f.maxBody)
	app.Flag("auth.bearer-token-file", "File holding the bearer token Alertmanager sends (http_config.authorization). Not combinable with basic_auth_users of --web.config.file.").
		Envar("ODOO_HEALER_BEARER_TOKEN_FILE").StringVar(&f.bearerFile)
	app.Flag("web.allow-unauthenticated", "Start even though no authentication (bearer token, basic auth or verified client certificates) is configured. Anyone who reaches the port can then trigger actions.").
		BoolVar(&f.allowUnauth)
	app.Flag("audit.file", "Append the audit log (JSON lines) to this file; empty writes it to stdout. Reopened on SIGHUP.").StringVar(&f.auditFile)
	app.Flag("state.file", "Keep the alert episodes, cooldowns and rate limits in this file (rewritten atomically on every change; its directory must be writable) so that a restart of the healer keeps them. Empty keeps them in memory only: a restart forgets them.").
		Envar("ODOO_HEALER_STATE_FILE").StringVar(&f.stateFile)
	app.Flag("pg.dsn", "PostgreSQL connection string or URL of the healer's role (prefer the environment variable: flags are visible in ps); its database is replaced by the alert's. Empty disables the PostgreSQL actions.").
		Envar("ODOO_HEALER_PG_DSN").StringVar(&f.pgDSN)
	app.Flag("pg.password-file", "File holding the PostgreSQL password (overrides the DSN's).").Envar("ODOO_HEALER_PG_PASSWORD_FILE").StringVar(&f.pgPasswordFile)
	app.Flag("pg.statement-timeout", "statement_timeout of the healer's sessions.").Default("10s").DurationVar(&f.pgStmtTimeout)
	app.Flag("pg.lock-timeout", "lock_timeout of the healer's sessions.").Default("2s").DurationVar(&f.pgLockTimeout)
	app.Flag("pg.connect-timeout", "Timeout of one connection attempt.").Default("5s").DurationVar(&f.pgConnectTimeout)
	app.Flag("docker.host", "Docker Engine API address, e.g. unix:///var/run/docker.sock or tcp://host:2376 (default: DOCKER_HOST and the DOCKER_TLS_VERIFY/DOCKER_CERT_PATH conventions, else the local socket).").
		Default("").StringVar(&f.dockerHost)
	app.Flag("shutdown.timeout", "How long SIGTERM waits for running actions.").Default("5m").DurationVar(&f.shutdownTimeout)
	f.toolkit = kingpinflag.AddFlags(app, ":9770")
	flag.AddFlags(app, f.log)
	app.Version(version.Print(name))
	app.HelpFlag.Short('h')
	if _, err := app.Parse(args); err != nil {
		return nil, err
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// validate checks the values of the flags; the error names the flag and
// the valid range.
func (f *flags) validate() error {
	if f.maxBody < 1024 || f.maxBody > 64<<20 {
		return fmt.Errorf("--web.max-body-bytes=%d: must be between 1024 and %d", f.maxBody, 64<<20)
	}
	for _, d := range []struct {
		name   string
		v      time.Duration
		lo, hi time.Duration
	}{
		// PostgreSQL's statement_timeout and lock_timeout are whole
		// milliseconds up to INT_MAX; 0 (no timeout) is refused: the healer
		// must never wait behind the locks it clears.
		{"--pg.statement-timeout", f.pgStmtTimeout, time.Millisecond, time.Hour},
		{"--pg.lock-timeout", f.pgLockTimeout, time.Millisecond, time.Hour},
		{"--pg.connect-timeout", f.pgConnectTimeout, time.Second, 5 * time.Minute},
		{"--shutdown.timeout", f.shutdownTimeout, time.Second, 24 * time.Hour},
	} {
		if d.v < d.lo || d.v > d.hi {
			return fmt.Errorf("%s=%s: must be between %s and %s", d.name, d.v, d.lo, d.hi)
		}
		if d.lo == time.Millisecond && d.v%time.Millisecond != 0 {
			return fmt.Errorf("%s=%s: PostgreSQL takes whole milliseconds", d.name, d.v)
		}
	}
	for _, p := range []struct{ name, v string }{{"--web.webhook-path", f.webhookPath}, {"--web.telemetry-path", f.metricsPath}} {
		if !strings.HasPrefix(p.v, "/") {
			return fmt.Errorf("%s=%q: must start with /", p.name, p.v)
		}
	}
	if f.webhookPath == f.metricsPath {
		return fmt.Errorf("--web.webhook-path and --web.telemetry-path are both %q", f.webhookPath)
	}
	return nil
}

func run(args []string) int {
	f, err := parseFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	logger := promslog.New(f.log)
	f.logger = logger

	cfg, err := heal.LoadConfig(f.configFile)
	if err != nil {
		logger.Error("invalid configuration", "err", err)
		return 1
	}
	if f.checkConfig {
		fmt.Printf("%s: %d rule(s), OK\n", f.configFile, len(cfg.Rules))
		return 0
	}
	auth, err := newAuth(f)
	if err != nil {
		logger.Error("authentication", "err", err)
		return 1
	}
	if auth.none {
		logger.Warn("no authentication configured: anyone who reaches the port can trigger healing actions (--web.allow-unauthenticated)")
	}
	logger.Info("starting "+name, "version", version.Info())

	env := &heal.Env{Logger: logger}
	if f.pgDSN != "" {
		password := ""
		if f.pgPasswordFile != "" {
			b, err := os.ReadFile(f.pgPasswordFile)
			if err != nil {
				logger.Error("cannot read the PostgreSQL password file", "err", err)
				return 1
			}
			password = strings.TrimRight(string(b), "\r\n")
		}
		env.PG, err = heal.NewPGConnector(heal.PGConfig{DSN: f.pgDSN, Password: password,
			StatementTimeout: f.pgStmtTimeout, LockTimeout: f.pgLockTimeout, ConnectTimeout: f.pgConnectTimeout})
		if err != nil {
			logger.Error("PostgreSQL", "err", err)
			return 1
		}
	}
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if f.dockerHost != "" {
		opts = append(opts, client.WithHost(f.dockerHost))
	}
	dc, err := client.NewClientWithOpts(opts...)
	if err != nil {
		logger.Error("Docker client", "err", err)
		return 1
	}
	defer dc.Close()
	env.Docker = dc
	if err := checkSources(cfg, env); err != nil {
		logger.Error("invalid configuration", "err", err)
		return 1
	}

	audit, err := heal.NewAuditLog(f.auditFile, os.Stdout)
	if err != nil {
		logger.Error("audit log", "err", err)
		return 1
	}
	defer audit.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(versioncollector.NewCollector(name), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := heal.NewMetrics(reg)
	metrics.ConfigLoaded(true)
	var state *heal.StateFile
	if f.stateFile != "" {
		if state, err = heal.OpenStateFile(f.stateFile); err != nil {
			logger.Error("--state.file", "err", err)
			return 1
		}
		defer state.Close()
	} else {
		logger.Warn("no --state.file: episodes, cooldowns and rate limits are kept in memory only, a restart forgets them")
	}
	h, err := heal.New(cfg, heal.Options{Env: env, Audit: audit, Metrics: metrics, Logger: logger, MaxBodyBytes: f.maxBody, State: state})
	if err != nil {
		logger.Error("--state.file", "err", err)
		return 1
	}
	auth.metrics = metrics
	logRules(logger, cfg)

	srv := &http.Server{
		Handler:           newMux(f, h, reg, auth),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, os.Interrupt)
	go func() {
		for s := range sigs {
			if s == syscall.SIGHUP {
				reload(f, env, h, audit, metrics, logger)
				continue
			}
			logger.Info("shutting down: waiting for running actions", "signal", s.String(), "timeout", f.shutdownTimeout)
			ctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
			if err := h.Shutdown(ctx); err != nil {
				logger.Error("shutdown", "err", err)
			}
			_ = srv.Shutdown(ctx)
			cancel()
			return
		}
	}()
	if err := web.ListenAndServe(srv, f.toolkit, logger); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("HTTP server failed", "err", err)
		return 1
	}
	return 0
}

// reload re-reads the configuration on SIGHUP; an invalid one is logged
// and the running one is kept.
func reload(f *flags, env *heal.Env, h *heal.Healer, audit *heal.AuditLog, m *heal.Metrics, logger *slog.Logger) {
	if err := audit.Reopen(); err != nil {
		logger.Error("reopening the audit log", "err", err)
	}
	cfg, err := heal.LoadConfig(f.configFile)
	if err == nil {
		err = checkSources(cfg, env)
	}
	if err != nil {
		m.ConfigLoaded(false)
		logger.Error("configuration reload failed, keeping the running one", "err", err)
		return
	}
	h.SetConfig(cfg)
	m.ConfigLoaded(true)
	logger.Info("configuration reloaded", "rules", len(cfg.Rules))
	logRules(logger, cfg)
}

// logRules logs each rule with its targets (the allow-list, and the fixed
// target when it is not in the list).
func logRules(logger *slog.Logger, cfg *heal.Config) {
	for _, r := range cfg.Rules {
		targets := slices.Clone(r.Targets)
		if r.Target != "" && !slices.Contains(targets, r.Target) {
			targets = append(targets, r.Target)
		}
		logger.Info("rule", "name", r.Name, "action", r.Action, "dry_run", cfg.DryRun || r.DryRun, "target", r.Target, "targets", strings.Join(targets, ","))
	}
}

// checkSources refuses rules whose source (PostgreSQL or Docker) is not
// configured.
func checkSources(cfg *heal.Config, env *heal.Env) error {
	for _, r := range cfg.Rules {
		if r.TargetKind() == heal.TargetDatabase && env.PG == nil {
			return fmt.Errorf("rule %q: action %s needs PostgreSQL: set --pg.dsn or ODOO_HEALER_PG_DSN", r.Name, r.Action)
		}
	}
	return nil
}

func newMux(f *flags, h *heal.Healer, reg *prometheus.Registry, auth *auth) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(f.webhookPath, auth.wrap(h))
	mux.Handle(f.metricsPath, auth.wrap(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "OK") }
	mux.HandleFunc("/-/healthy", ok)
	mux.HandleFunc("/-/ready", ok)
	return mux
}

// auth checks the bearer token. Basic auth and client certificates are
// checked by exporter-toolkit from --web.config.file before.
type auth struct {
	token [32]byte // sha256 of the token
	on    bool
	none  bool // no authentication at all (allowed explicitly)

	metrics *heal.Metrics // counts refusals (nil in some tests)
	logger  *slog.Logger
	mu      sync.Mutex
	lastLog time.Time // refusals are logged at most once per authLogEvery
	dropped int       // refusals not logged since lastLog
}

// authLogEvery rate-limits the log of refused requests: a brute force
// must not flood the log; the counter counts every one.
const authLogEvery = 10 * time.Second

// refused counts and (rate-limited) logs a request refused for its
// credentials.
func (a *auth) refused(r *http.Request, why string) {
	if a.metrics != nil {
		a.metrics.AuthFailed()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if now := time.Now(); now.Sub(a.lastLog) >= authLogEvery {
		if a.logger != nil {
			a.logger.Warn("refused a request: bad credentials", "reason", why, "remote", r.RemoteAddr, "path", r.URL.Path,
				"refused_since_last_log", a.dropped)
		}
		a.lastLog, a.dropped = now, 0
	} else {
		a.dropped++
	}
}

// webConfig is the part of exporter-toolkit's web configuration file that
// says whether it authenticates.
type webConfig struct {
	Users     map[string]string `yaml:"basic_auth_users"`
	TLSConfig struct {
		ClientAuth string `yaml:"client_auth_type"`
	} `yaml:"tls_server_config"`
}

func newAuth(f *flags) (*auth, error) {
	a := &auth{logger: f.logger}
	var wc webConfig
	if p := *f.toolkit.WebConfigFile; p != "" {
		if err := web.Validate(p); err != nil {
			return nil, fmt.Errorf("--web.config.file: %w", err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if err := yaml.Unmarshal(b, &wc); err != nil {
			return nil, fmt.Errorf("--web.config.file: %w", err)
		}
	}
	basic := len(wc.Users) > 0
	certs := wc.TLSConfig.ClientAuth == "RequireAndVerifyClientCert"
	if f.bearerFile != "" {
		if basic {
			return nil, errors.New("--auth.bearer-token-file and basic_auth_users in --web.config.file exclude each other (basic auth would reject the bearer token): choose one")
		}
		b, err := os.ReadFile(f.bearerFile)
		if err != nil {
			return nil, fmt.Errorf("reading the bearer token: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return nil, errors.New("the bearer token is shorter than 16 characters")
		}
		a.token, a.on = sha256.Sum256([]byte(tok)), true
	}
	if !a.on && !basic && !certs {
		if !f.allowUnauth {
			return nil, errors.New("no authentication configured: set --auth.bearer-token-file, basic_auth_users or client_auth_type: RequireAndVerifyClientCert in --web.config.file, or start with --web.allow-unauthenticated")
		}
		a.none = true
	}
	return a, nil
}

func (a *auth) wrap(next http.Handler) http.Handler {
	if !a.on {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if !ok || subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 {
			why := "wrong bearer token"
			if !ok {
				why = "no bearer token"
			}
			a.refused(r, why)
			w.Header().Set("WWW-Authenticate", `Bearer realm="odoo_healer"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
