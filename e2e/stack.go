// Package e2e runs the whole odoo_exporter chain on real parts — an
// Odoo-shaped PostgreSQL database, the Odoo stand-in in a container of a
// private dockerd behind a real nginx, odoo_exporter and odoo_healer in a
// container built from the project's Dockerfile, a real Prometheus
// evaluating the shipped rule pack and a real Alertmanager calling the
// healer — and injects the runbooks' incidents into it.
//
// The end-to-end test (e2e_test.go) and the demo (e2e/cmd/demo, make demo)
// start the same Stack. See docs/e2e.md.
package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/jackc/pgx/v5"

	"github.com/odoo-exporter/odoo_exporter/internal/dockertest"
	"github.com/odoo-exporter/odoo_exporter/internal/nginxtest"
	"github.com/odoo-exporter/odoo_exporter/internal/pgtest"
	"github.com/odoo-exporter/odoo_exporter/internal/promtest"
	"github.com/odoo-exporter/odoo_exporter/rules"
)

// Names of the stack's database, roles, images and containers.
const (
	Database      = "odoo"
	AppRole       = "odoo"          // Odoo's own role: the stand-in, the blockers, the cron worker
	ExporterRole  = "odoo_exporter" // pg_monitor + SELECT
	HealerRole    = "odoo_healer"   // pg_signal_backend + pg_monitor + the grants of docs/healer.md
	ImageTag      = "odoo_exporter:e2e"
	SimImage      = "odoosim:e2e"
	SimContainer  = "odoo-sim"    // the Odoo stand-in (web + gevent ports)
	WorkerName    = "odoo-worker" // a memory-limited worker container (OOM incident)
	ExporterName  = "e2e-exporter"
	HealerName    = "e2e-healer"
	simPackage    = "github.com/odoo-exporter/odoo_exporter/e2e/cmd/odoosim"
	dockerSockIn  = "/var/run/docker.sock"
	healerToken   = "e2e-healer-token-0123456789abcdef"
	workerLimitMB = 64
)

// PartError says which part of the stack cannot be installed or started,
// and why. The test fails on it in CI and skips elsewhere.
type PartError struct {
	Part string // dockerd, prometheus, alertmanager, nginx, postgresql
	Err  error
}

func (e *PartError) Error() string { return fmt.Sprintf("e2e: %s unavailable: %v", e.Part, e.Err) }
func (e *PartError) Unwrap() error { return e.Err }

// ShippedInterval, as Options.LongpollInterval, runs the exporter's bus
// prober at its shipped default interval.
const ShippedInterval time.Duration = -1

// Ports are the preferred listen ports on 127.0.0.1; a port that is 0 or
// busy is replaced by a free one.
type Ports struct {
	Exporter, Healer, Prometheus, Alertmanager, Web, Gevent int
}

// Options configures a Stack.
type Options struct {
	// Dir holds every file of the stack; empty makes a temporary directory
	// that Close removes.
	Dir string
	// ForMax caps the "for" of every alert (rules.Shorten); negative keeps
	// the shipped durations.
	ForMax time.Duration
	// ForDivisor, when above 0, divides the durations instead (rules.Scale,
	// at most ForMax), keeping their order for Alertmanager's inhibition.
	ForDivisor int
	// ScrapeInterval of Prometheus (default 2s); evaluation runs every 1s.
	ScrapeInterval time.Duration
	// LongpollInterval of the exporter's bus prober (default 250ms);
	// ShippedInterval keeps the exporter's own default (15s).
	LongpollInterval time.Duration
	// Version is the Odoo series imitated (default 18.0).
	Version string
	// Ports are the preferred ports.
	Ports Ports
	// Webhooks are more receivers of Alertmanager (every alert goes to
	// each of them, besides the healer's heal-labelled ones).
	Webhooks []promtest.Webhook
	// Logf receives progress messages; nil discards them.
	Logf func(format string, args ...any)
}

// Stack is a running chain.
type Stack struct {
	opts   Options
	root   string // module root
	dir    string
	ownDir bool
	PG     *pgtest.Cluster
	Docker *dockertest.Daemon
	Proxy  *nginxtest.Proxy
	Prom   *promtest.Prometheus
	AM     *promtest.Alertmanager
	Worker *dockertest.App
	WebURL string // the stand-in's web port, direct
	Gevent string // the stand-in's gevent port
	Exporter,
	Healer string // base URLs
	AuditFile string // the healer's audit log (JSON lines)
	TokenFile string // the healer's bearer token

	cron    *cronWorker
	mu      sync.Mutex
	closers []func()
	held    []func() // sessions of running incidents
}

func (s *Stack) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

func (s *Stack) onClose(f func()) {
	s.mu.Lock()
	s.closers = append(s.closers, f)
	s.mu.Unlock()
}

// Check reports the first part of the stack that is missing, as a
// *PartError.
func Check() error {
	if _, err := pgtest.BinDir(); err != nil {
		return &PartError{"postgresql", err}
	}
	if os.Geteuid() != 0 {
		return &PartError{"dockerd", errors.New("dockerd must run as root")}
	}
	if _, err := exec.LookPath("dockerd"); err != nil {
		if _, serr := os.Stat("/usr/sbin/dockerd"); serr != nil {
			return &PartError{"dockerd", errors.New("dockerd not found (install Debian's docker.io, see scripts/install-deps.sh)")}
		}
	}
	if _, err := nginxtest.Binary(); err != nil {
		return &PartError{"nginx", err}
	}
	if _, err := promtest.PrometheusBinary(); err != nil {
		return &PartError{"prometheus", err}
	}
	if _, err := promtest.AlertmanagerBinary(); err != nil {
		return &PartError{"alertmanager", err}
	}
	return nil
}

// Start starts the whole stack. On error everything started is stopped.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if opts.ScrapeInterval == 0 {
		opts.ScrapeInterval = 2 * time.Second
	}
	if opts.LongpollInterval == 0 {
		opts.LongpollInterval = 250 * time.Millisecond
	}
	if opts.LongpollInterval == ShippedInterval {
		d, err := shippedLongpollInterval()
		if err != nil {
			return nil, err
		}
		opts.LongpollInterval = d
	}
	if opts.Version == "" {
		opts.Version = "18.0"
	}
	s := &Stack{opts: opts, dir: opts.Dir}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.root, err = moduleRoot(); err != nil {
		return nil, err
	}
	if s.dir == "" {
		// Short: dockerd's socket path lives below it in some setups.
		if s.dir, err = os.MkdirTemp("/tmp", "e2e-"); err != nil {
			return nil, err
		}
		s.ownDir = true
	} else if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(s.dir, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()

	binDir := filepath.Join(s.dir, "context", "bin")
	if err := s.startBase(ctx, binDir, s.startPostgres); err != nil {
		return nil, err
	}
	s.logf("postgresql, dockerd and binaries ready in %v", time.Since(start).Round(time.Millisecond))

	// Images: the project's Dockerfile, the stand-in, the worker.
	if err := s.buildProjectImage(ctx, filepath.Dir(binDir)); err != nil {
		return nil, err
	}
	if err := s.Docker.BuildImage(ctx, SimImage, simPackage); err != nil {
		return nil, err
	}
	s.logf("images built in %v", time.Since(start).Round(time.Millisecond))

	if err := s.startSim(ctx); err != nil {
		return nil, err
	}
	if s.Worker, err = s.Docker.RunApp(ctx, dockertest.AppConfig{
		Name:          WorkerName,
		Labels:        map[string]string{"com.docker.compose.project": "odoo", "com.docker.compose.service": "worker"},
		Memory:        workerLimitMB << 20,
		RestartPolicy: container.RestartPolicyOnFailure,
		Healthcheck:   true,
		AllocMB:       8,
	}); err != nil {
		return nil, err
	}
	px, err := nginxtest.Start(hostPort(s.WebURL), hostPort(s.Gevent))
	if err != nil {
		return nil, &PartError{"nginx", err}
	}
	s.Proxy = px
	s.onClose(px.Stop)

	if err := s.startExporter(ctx); err != nil {
		return nil, err
	}
	if err := s.startHealer(ctx); err != nil {
		return nil, err
	}
	if err := s.startMonitoring(); err != nil {
		return nil, err
	}
	s.cron = startCronWorker(s.PG.DSN(Database, AppRole))
	s.onClose(s.cron.stop)
	s.logf("stack up in %v", time.Since(start).Round(time.Millisecond))
	return s, nil
}

// startBase runs startPG, builds the binaries into binDir and starts
// dockerd, in parallel. A part that cannot start is a *PartError.
func (s *Stack) startBase(ctx context.Context, binDir string, startPG func(context.Context) error) error {
	var (
		wg                     sync.WaitGroup
		pgErr, bErr, dockerErr error
	)
	wg.Add(3)
	go func() { defer wg.Done(); pgErr = startPG(ctx) }()
	go func() { defer wg.Done(); bErr = s.buildBinaries(ctx, binDir) }()
	go func() {
		defer wg.Done()
		d, err := dockertest.Start()
		if err != nil {
			dockerErr = &PartError{"dockerd", err}
			return
		}
		s.Docker = d
		s.onClose(d.Close)
	}()
	wg.Wait()
	if err := errors.Join(pgErr, bErr, dockerErr); err != nil {
		var pe *PartError
		if errors.As(err, &pe) {
			return pe
		}
		return err
	}
	return nil
}

// Close stops everything, in the reverse order of start.
func (s *Stack) Close() {
	s.mu.Lock()
	held, closers := s.held, s.closers
	s.held, s.closers = nil, nil
	s.mu.Unlock()
	for _, f := range held {
		f()
	}
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	if s.ownDir && s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// Dir is the stack's directory (logs, configurations).
func (s *Stack) Dir() string { return s.dir }

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("e2e: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// pickPort returns preferred when it is free on 127.0.0.1, else a free port.
func pickPort(preferred int) (int, error) {
	if preferred != 0 {
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(preferred)); err == nil {
			l.Close()
			return preferred, nil
		}
	}
	return promtest.FreePort()
}

func hostPort(u string) string { return strings.TrimPrefix(u, "http://") }

// startPostgres starts the cluster and creates the Odoo database, the
// roles with the least privileges of the docs, and some cron jobs.
func (s *Stack) startPostgres(ctx context.Context) error {
	c, err := pgtest.Start()
	if err != nil {
		return &PartError{"postgresql", err}
	}
	s.PG = c
	s.onClose(c.Close)
	schema, err := pgtest.Schema(s.opts.Version)
	if err != nil {
		return err
	}
	roles := fmt.Sprintf(`CREATE ROLE %[1]s LOGIN;
CREATE ROLE %[2]s LOGIN; GRANT pg_monitor TO %[2]s;
CREATE ROLE %[3]s LOGIN; GRANT pg_signal_backend, pg_monitor TO %[3]s;`, AppRole, ExporterRole, HealerRole)
	grants := fmt.Sprintf(`GRANT ALL ON ALL TABLES IN SCHEMA public TO %[1]s;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO %[1]s;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO %[2]s;
GRANT SELECT ON ir_cron TO %[3]s;
GRANT SELECT, DELETE ON ir_attachment TO %[3]s;
GRANT SELECT, UPDATE (state) ON ir_module_module TO %[3]s;
INSERT INTO ir_act_server (name, model_name, code) VALUES
  ('{"en_US": "Mail: Email Queue Manager"}', 'mail.mail', 'model.process_email_queue()'),
  ('{"en_US": "Base: Auto-vacuum internal data"}', 'ir.autovacuum', 'model._run_vacuum_cleaner()'),
  ('{"en_US": "Bus: garbage collect"}', 'bus.bus', 'model._gc_messages()');
INSERT INTO ir_cron (ir_actions_server_id, cron_name, user_id, interval_number, interval_type, nextcall)
SELECT id, name->>'en_US', 1, n, t, (now() AT TIME ZONE 'UTC') + make_interval(mins => n)
FROM ir_act_server, (VALUES (1, 'minutes')) AS v(n, t);`, AppRole, ExporterRole, HealerRole)
	if err := execSQL(ctx, c.DSN("postgres", ""), roles); err != nil {
		return err
	}
	// CREATE DATABASE cannot run in the implicit transaction of a
	// multi-statement string.
	if err := execSQL(ctx, c.DSN("postgres", ""), fmt.Sprintf("CREATE DATABASE %s OWNER %s", Database, AppRole)); err != nil {
		return err
	}
	if err := execSQL(ctx, c.DSN(Database, ""), schema); err != nil {
		return err
	}
	if strings.HasPrefix(s.opts.Version, "16") {
		grants = strings.Replace(grants, "name->>'en_US'", "name", 1)
	}
	return execSQL(ctx, c.DSN(Database, ""), grants)
}

func execSQL(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("e2e: %w\n%s", err, sql)
	}
	return nil
}

// buildBinaries builds the static binaries the Dockerfile copies, as make
// does (CGO_ENABLED=0), and copies the CA bundle next to them.
func (s *Stack) buildBinaries(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", dir+"/",
		"./cmd/odoo_exporter", "./cmd/odoo_healer")
	cmd.Dir = s.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("e2e: go build: %v\n%s", err, out)
	}
	ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		return fmt.Errorf("e2e: CA bundle for the image (install ca-certificates): %w", err)
	}
	return os.WriteFile(filepath.Join(dir, "ca-certificates.crt"), ca, 0o644)
}

// buildProjectImage builds the project's Dockerfile with the context
// directory ctxDir (holding bin/) through the Engine API.
func (s *Stack) buildProjectImage(ctx context.Context, ctxDir string) error {
	dockerfile, err := os.ReadFile(filepath.Join(s.root, "Dockerfile"))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("Dockerfile", 0o644, dockerfile); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		mode int64
	}{{"bin/odoo_exporter", 0o755}, {"bin/odoo_healer", 0o755}, {"bin/ca-certificates.crt", 0o644}} {
		b, err := os.ReadFile(filepath.Join(ctxDir, f.name))
		if err != nil {
			return err
		}
		if err := add(f.name, f.mode, b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	resp, err := s.Docker.Client().ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags: []string{ImageTag}, Version: build.BuilderV1, Remove: true, ForceRemove: true,
	})
	if err != nil {
		return fmt.Errorf("e2e: building the Dockerfile: %w", err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("e2e: building the Dockerfile: %w", err)
		}
		if msg.Error != "" {
			return fmt.Errorf("e2e: building the Dockerfile: %s", msg.Error)
		}
	}
}

// run creates and starts a container on the host's network.
func (s *Stack) run(ctx context.Context, name string, cc *container.Config, hc *container.HostConfig) error {
	hc.NetworkMode = "host"
	created, err := s.Docker.Client().ContainerCreate(ctx, cc, hc, nil, nil, name)
	if err != nil {
		return fmt.Errorf("e2e: creating container %s: %w", name, err)
	}
	if err := s.Docker.Client().ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return fmt.Errorf("e2e: starting container %s: %w", name, err)
	}
	return nil
}

// waitHTTP waits until u answers 200 (with the bearer token when set).
func (s *Stack) waitHTTP(ctx context.Context, container, u, token string) error {
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("e2e: %s: %s does not answer: %v\n%s", container, u, err, s.Logs(container))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Logs returns the end of a container's output.
func (s *Stack) Logs(name string) string {
	if s.Docker == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := s.Docker.Client().ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "40"})
	if err != nil {
		return "(no logs: " + err.Error() + ")"
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	// Strip the 8-byte frame headers of the multiplexed stream.
	var out []byte
	for len(b) >= 8 {
		n := int(b[4])<<24 | int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		b = b[8:]
		if n > len(b) {
			n = len(b)
		}
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return string(out)
}

func (s *Stack) startSim(ctx context.Context) error {
	web, err := pickPort(s.opts.Ports.Web)
	if err != nil {
		return err
	}
	gev, err := pickPort(s.opts.Ports.Gevent)
	if err != nil {
		return err
	}
	s.WebURL = fmt.Sprintf("http://127.0.0.1:%d", web)
	s.Gevent = fmt.Sprintf("http://127.0.0.1:%d", gev)
	err = s.run(ctx, SimContainer, &container.Config{
		Image: SimImage,
		Cmd: []string{"-dsn", s.PG.DSN(Database, AppRole), "-version", s.opts.Version,
			"-web-addr", hostPort(s.WebURL), "-gevent-addr", hostPort(s.Gevent),
			"-filestore", "/var/lib/odoo/filestore", "-cron-interval", "10s"},
		Labels: map[string]string{"com.docker.compose.project": "odoo", "com.docker.compose.service": "web"},
	}, &container.HostConfig{Resources: container.Resources{Memory: 512 << 20, MemorySwap: 512 << 20}})
	if err != nil {
		return err
	}
	return s.waitHTTP(ctx, SimContainer, s.WebURL+"/web/health", "")
}

// dockerSocket returns the daemon's socket path and its group id.
func (s *Stack) dockerSocket() (string, string, error) {
	sock := strings.TrimPrefix(s.Docker.Host(), "unix://")
	fi, err := os.Stat(sock)
	if err != nil {
		return "", "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", "", errors.New("e2e: cannot read the socket's group")
	}
	return sock, strconv.Itoa(int(st.Gid)), nil
}

func (s *Stack) startExporter(ctx context.Context) error {
	port, err := pickPort(s.opts.Ports.Exporter)
	if err != nil {
		return err
	}
	s.Exporter = fmt.Sprintf("http://127.0.0.1:%d", port)
	sock, gid, err := s.dockerSocket()
	if err != nil {
		return err
	}
	err = s.run(ctx, ExporterName, &container.Config{
		Image: ImageTag,
		// The image's user (nobody) with the socket's group: no root.
		Env: []string{"ODOO_EXPORTER_PG_DSN=" + s.PG.DSN(Database, ExporterRole)},
		Cmd: []string{
			"--web.listen-address=" + hostPort(s.Exporter),
			"--odoo.web-url=" + s.WebURL,
			"--odoo.public-url=" + s.Proxy.URL(),
			"--odoo.gevent-url=" + s.Gevent,
			"--collector.longpoll.interval=" + s.opts.LongpollInterval.String(),
			"--collector.longpoll.timeout=5s",
			"--collector.http.database=" + Database,
			"--collector.docker",
			"--docker.host=unix://" + dockerSockIn,
			"--collector.odoo_log.container=" + SimContainer,
			"--collector.odoo_log.per-job",
		},
	}, &container.HostConfig{GroupAdd: []string{gid}, Binds: []string{sock + ":" + dockerSockIn}})
	if err != nil {
		return err
	}
	return s.waitHTTP(ctx, ExporterName, s.Exporter+"/metrics", "")
}

// HealerConfig is the healer's configuration in the stack: every
// PostgreSQL action on the database, restart_container on the stand-in,
// short cooldowns, no dry run.
const HealerConfig = `dry_run: false
max_actions_per_hour: 200
verify_interval: 1s
defaults:
  cooldown: 20s
  max_actions_per_hour: 30
  timeout: 1m
  verify_timeout: 1m
rules:
  - name: lock-blockers
    match: {heal: end_blockers}
    action: end_blockers
    targets: [odoo]
    params: {min_wait: 20s, grace: 2s, max_backends: 3, users: [odoo]}
  - name: cron-lock
    match: {heal: unlock_cron}
    action: unlock_cron
    targets: [odoo]
    params: {min_running: 1m, grace: 2s, users: [odoo]}
  # OdooAssetsBroken comes from the HTTP probe of one Odoo: it has no
  # database label, so the rule names its database.
  - name: assets
    match: {heal: clear_assets}
    action: clear_assets
    target: odoo
  - name: modules
    match: {heal: reset_module_states}
    action: reset_module_states
    targets: [odoo]
    params: {min_age: 10m}
  # OdooMemoryLeak: the stand-in does not reload on SIGHUP as Odoo's
  # master does, so this rule only says what it would do.
  - name: recycle
    match: {heal: recycle_workers}
    action: recycle_workers
    dry_run: true
    targets: [odoo-sim, odoo-worker]
    params: {health_url: "{web}/web/health"}
  - name: restart
    match: {heal: restart_container}
    action: restart_container
    target: odoo-sim
    params: {stop_timeout: 5s, health_url: "{web}/web/health"}
`

func (s *Stack) startHealer(ctx context.Context) error {
	port, err := pickPort(s.opts.Ports.Healer)
	if err != nil {
		return err
	}
	s.Healer = fmt.Sprintf("http://127.0.0.1:%d", port)
	confDir := filepath.Join(s.dir, "healer")
	auditDir := filepath.Join(s.dir, "audit")
	for _, d := range []string{confDir, auditDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// The healer runs as nobody: it must be able to write its audit log.
	if err := os.Chmod(auditDir, 0o777); err != nil {
		return err
	}
	s.AuditFile = filepath.Join(auditDir, "audit.log")
	s.TokenFile = filepath.Join(confDir, "token")
	if err := os.WriteFile(filepath.Join(confDir, "odoo_healer.yml"), []byte(strings.ReplaceAll(HealerConfig, "{web}", s.WebURL)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(s.TokenFile, []byte(healerToken+"\n"), 0o644); err != nil {
		return err
	}
	sock, gid, err := s.dockerSocket()
	if err != nil {
		return err
	}
	err = s.run(ctx, HealerName, &container.Config{
		Image:      ImageTag,
		Entrypoint: []string{"/bin/odoo_healer"},
		Env:        []string{"ODOO_HEALER_PG_DSN=" + s.PG.DSN(Database, HealerRole)},
		Cmd: []string{
			"--config.file=/etc/odoo_healer/odoo_healer.yml",
			"--auth.bearer-token-file=/etc/odoo_healer/token",
			"--audit.file=/var/log/odoo_healer/audit.log",
			"--state.file=/var/log/odoo_healer/state.json",
			"--web.listen-address=" + hostPort(s.Healer),
			"--docker.host=unix://" + dockerSockIn,
		},
	}, &container.HostConfig{GroupAdd: []string{gid}, Binds: []string{
		confDir + ":/etc/odoo_healer:ro",
		auditDir + ":/var/log/odoo_healer",
		sock + ":" + dockerSockIn,
	}})
	if err != nil {
		return err
	}
	return s.waitHTTP(ctx, HealerName, s.Healer+"/-/ready", "")
}

// HealerToken is the bearer token Alertmanager sends to the healer.
func (s *Stack) HealerToken() string { return healerToken }

func (s *Stack) startMonitoring() error {
	amDir := filepath.Join(s.dir, "alertmanager")
	promDir := filepath.Join(s.dir, "prometheus")
	for _, d := range []string{amDir, promDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	amPort, err := pickPort(s.opts.Ports.Alertmanager)
	if err != nil {
		return err
	}
	inhibit, err := rules.InhibitRules()
	if err != nil {
		return err
	}
	am, err := promtest.StartAlertmanager(promtest.AlertmanagerConfig{
		Dir:  amDir,
		Port: amPort,
		// Short, so that a notification the healer skipped (busy target)
		// comes back soon.
		GroupWait: time.Second, GroupInterval: 2 * time.Second, RepeatInterval: 10 * time.Second,
		GroupBy: []string{"alertname", "job", "instance", "database", "name", "service", "target"},
		Webhooks: append([]promtest.Webhook{{
			Name: "odoo_healer", URL: s.Healer + "/webhook", BearerTokenFile: s.TokenFile,
			Matchers: []string{`heal=~".+"`},
		}}, s.opts.Webhooks...),
		InhibitRules: inhibit,
	})
	if err != nil {
		return &PartError{"alertmanager", err}
	}
	s.AM = am
	s.onClose(am.Stop)

	pack := rules.Pack()
	switch {
	case s.opts.ForMax >= 0 && s.opts.ForDivisor > 0:
		pack, err = rules.Scale(pack, s.opts.ForDivisor, s.opts.ForMax)
	case s.opts.ForMax >= 0:
		pack, err = rules.Shorten(pack, s.opts.ForMax)
	}
	if err != nil {
		return err
	}
	promPort, err := pickPort(s.opts.Ports.Prometheus)
	if err != nil {
		return err
	}
	prom, err := promtest.StartPrometheus(promtest.PrometheusConfig{
		Dir: promDir, Port: promPort,
		ScrapeInterval: s.opts.ScrapeInterval, EvaluationInterval: time.Second,
		Rules:         map[string][]byte{rules.FileName: pack},
		Alertmanagers: []string{am.Addr()},
		Scrape: []promtest.Target{
			{Job: "odoo", Targets: []string{hostPort(s.Exporter)}},
			{Job: "odoo_healer", Targets: []string{hostPort(s.Healer)}, BearerTokenFile: s.TokenFile},
		},
	})
	if err != nil {
		return &PartError{"prometheus", err}
	}
	s.Prom = prom
	s.onClose(prom.Stop)
	return nil
}
