package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/odoo-exporter/odoo_exporter/internal/dockertest"
	"github.com/odoo-exporter/odoo_exporter/internal/pgtest"
	"github.com/odoo-exporter/odoo_exporter/internal/promtest"
	"github.com/odoo-exporter/odoo_exporter/rules"
)

// Images the compose test builds FROM scratch from the host's Debian
// binaries (no registry here); the overlay names its images through
// PSQL_IMAGE, PROMETHEUS_IMAGE and ALERTMANAGER_IMAGE.
const (
	composePsqlImage = "compose-psql:test"
	composePromImage = "compose-prometheus:test"
	composeAMImage   = "compose-alertmanager:test"
	composeProject   = "odoo"
	composeOverlay   = "examples/compose/docker-compose.monitoring.yml"
	// composeServices are the overlay's services the test starts: all but
	// grafana, which cannot run here (no image; TestGrafanaProvisioning
	// checks its files instead).
	composeServices = "odoo odoo-monitoring-init odoo-exporter odoo-healer prometheus alertmanager"
)

// TestComposeOverlay brings examples/compose/docker-compose.monitoring.yml
// up with Debian's docker-compose on the private dockerd, beside a
// stand-in `odoo` service (the odoosim image) and PostgreSQL (pgtest, on
// the host), and checks the wiring: the init step created the roles with
// the secrets' passwords (PostgreSQL requires them: scram for those roles)
// and only the grants of the docs, Prometheus scrapes the exporter (which
// reaches PostgreSQL and Docker) and the healer (with its token), loaded
// the pack and found Alertmanager, an alert with a heal label reaches the
// healer through Alertmanager, and the healer refuses an unauthenticated
// webhook.
//
// The private dockerd has no bridge (--bridge=none), so a test-only file
// puts every service on the host's network with its own free port; the
// shipped prometheus.yml, alertmanager.yml and odoo_healer.yml are used
// with only their host:port strings replaced (each must occur), and the
// overlay's commands are kept with a listen address added.
func TestComposeOverlay(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped with -short")
	}
	t.Parallel() // beside TestChain and TestHealthySoak: its own dockerd and PostgreSQL
	skipOrFail := func(err error) {
		t.Helper()
		if dockertest.InCI() {
			t.Fatalf("a part of the compose test is required in CI: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	if err := Check(); err != nil {
		skipOrFail(err)
	}
	compose, err := exec.LookPath("docker-compose")
	if err != nil {
		skipOrFail(&PartError{"docker-compose", errors.New("not found (Debian's docker-compose, see scripts/install-deps.sh)")})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("/tmp", "compose-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &Stack{root: root, dir: dir, opts: Options{Version: "18.0"}}
	t.Cleanup(s.Close)

	binDir := filepath.Join(dir, "context", "bin")
	if err := s.startBase(ctx, binDir, func(ctx context.Context) error { return composePostgres(ctx, s) }); err != nil {
		var pe *PartError
		if errors.As(err, &pe) {
			skipOrFail(pe)
		}
		t.Fatal(err)
	}
	if err := s.buildProjectImage(ctx, filepath.Dir(binDir)); err != nil {
		t.Fatal(err)
	}
	if err := s.Docker.BuildImage(ctx, SimImage, simPackage); err != nil {
		t.Fatal(err)
	}
	for _, img := range []struct {
		tag, entry string
		extra      []string
	}{
		{composePromImage, "/usr/bin/prometheus", nil},
		// Debian's Alertmanager reads its default templates there.
		{composeAMImage, "/usr/bin/prometheus-alertmanager", []string{"/usr/share/prometheus/alertmanager/*.tmpl"}},
		{composePsqlImage, "", nil},
	} {
		if err := buildHostImage(ctx, s, img.tag, img.entry, img.extra...); err != nil {
			t.Fatal(err)
		}
	}

	ports := map[string]int{}
	for _, name := range []string{"exporter", "healer", "prometheus", "alertmanager", "web", "gevent"} {
		if ports[name], err = pickPort(0); err != nil {
			t.Fatal(err)
		}
	}
	sock, gid, err := s.dockerSocket()
	if err != nil {
		t.Fatal(err)
	}

	// ODOO_EXPORTER_DIR: a copy of the files the overlay mounts, the
	// configurations with their ports replaced, and the secrets made by
	// the shipped secrets.sh.
	exDir := filepath.Join(dir, "odoo_exporter")
	replaced := map[string][][2]string{
		"examples/compose/prometheus.yml": {
			{"odoo-exporter:9769", fmt.Sprintf("odoo-exporter:%d", ports["exporter"])},
			{"odoo-healer:9770", fmt.Sprintf("odoo-healer:%d", ports["healer"])},
			{"alertmanager:9093", fmt.Sprintf("alertmanager:%d", ports["alertmanager"])},
			{"localhost:9090", fmt.Sprintf("localhost:%d", ports["prometheus"])},
		},
		"examples/compose/alertmanager.yml": {{"odoo-healer:9770", fmt.Sprintf("odoo-healer:%d", ports["healer"])}},
		"examples/compose/odoo_healer.yml":  {{"odoo:8069", fmt.Sprintf("odoo:%d", ports["web"])}},
		composeOverlay:                      nil,
		"examples/compose/init-roles.sh":    nil,
		"examples/compose/secrets.sh":       nil,
		"rules/alerts_odoo.yml":             nil,
	}
	for rel, repl := range replaced {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if rel == composeOverlay {
			// Host networking cannot publish ports: the copy drops them.
			if text, err = dropPorts(b); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range repl {
			if !strings.Contains(text, r[0]) {
				t.Fatalf("%s: no %q: the test's port substitution follows the shipped file", rel, r[0])
			}
			text = strings.ReplaceAll(text, r[0], r[1])
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(exDir, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(exDir, rel), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.CommandContext(ctx, "sh", filepath.Join(exDir, "examples/compose/secrets.sh")).CombinedOutput(); err != nil {
		t.Fatalf("secrets.sh: %v\n%s", err, out)
	}
	token, err := os.ReadFile(filepath.Join(exDir, "examples/compose/secrets/healer_token"))
	if err != nil {
		t.Fatal(err)
	}
	healerToken := strings.TrimSpace(string(token))

	// The Odoo project (the stand-in as `odoo`) and the test-only file.
	overlay, err := os.ReadFile(filepath.Join(root, composeOverlay))
	if err != nil {
		t.Fatal(err)
	}
	var shipped struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(overlay, &shipped); err != nil {
		t.Fatalf("%s: %v", composeOverlay, err)
	}
	hosts := []string{"odoo:127.0.0.1", "db:127.0.0.1", "odoo-exporter:127.0.0.1", "odoo-healer:127.0.0.1",
		"prometheus:127.0.0.1", "alertmanager:127.0.0.1"}
	svc := func(name, listen string, port int) map[string]any {
		m := map[string]any{"network_mode": "host", "extra_hosts": hosts}
		if listen != "" {
			cmd, ok := shipped.Services[name]
			if !ok {
				t.Fatalf("%s: no service %s", composeOverlay, name)
			}
			m["command"] = append(append([]string{}, cmd.Command...), fmt.Sprintf("%s=127.0.0.1:%d", listen, port))
		}
		return m
	}
	test := map[string]any{"services": map[string]any{
		"odoo": map[string]any{
			"image": SimImage, "network_mode": "host",
			"command": []string{"-dsn", s.PG.DSN(Database, AppRole), "-version", s.opts.Version,
				"-web-addr", fmt.Sprintf("127.0.0.1:%d", ports["web"]), "-gevent-addr", fmt.Sprintf("127.0.0.1:%d", ports["gevent"]),
				"-filestore", "/var/lib/odoo/filestore"},
		},
		"odoo-monitoring-init": svc("odoo-monitoring-init", "", 0),
		"odoo-exporter": func() map[string]any {
			m := svc("odoo-exporter", "--web.listen-address", ports["exporter"])
			m["volumes"] = []string{sock + ":/var/run/docker.sock:ro"}
			return m
		}(),
		"odoo-healer": func() map[string]any {
			m := svc("odoo-healer", "--web.listen-address", ports["healer"])
			m["volumes"] = []string{sock + ":/var/run/docker.sock"}
			return m
		}(),
		"prometheus":   svc("prometheus", "--web.listen-address", ports["prometheus"]),
		"alertmanager": svc("alertmanager", "--web.listen-address", ports["alertmanager"]),
	}}
	files := map[string]any{
		"docker-compose.yml": map[string]any{"services": map[string]any{"odoo": map[string]any{"image": SimImage}}},
		"test.yml":           test,
	}
	projDir := filepath.Join(dir, "project")
	if err := os.MkdirAll(projDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range files {
		b, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(projDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(),
		"DOCKER_HOST="+s.Docker.Host(),
		"ODOO_EXPORTER_DIR="+exDir,
		"DOCKER_GID="+gid,
		"ODOO_EXPORTER_IMAGE="+ImageTag,
		"PSQL_IMAGE="+composePsqlImage,
		"PROMETHEUS_IMAGE="+composePromImage,
		"ALERTMANAGER_IMAGE="+composeAMImage,
		fmt.Sprintf("ODOO_WEB_URL=http://odoo:%d", ports["web"]),
		fmt.Sprintf("ODOO_GEVENT_URL=http://odoo:%d", ports["gevent"]),
		"ODOO_DB_HOST=127.0.0.1",
		"ODOO_DB_PORT="+strconv.Itoa(s.PG.Port),
		"ODOO_DB_ADMIN_USER="+pgtest.Superuser,
	)
	dc := func(args ...string) ([]byte, error) {
		full := append([]string{"-p", composeProject, "--project-directory", projDir,
			"-f", filepath.Join(projDir, "docker-compose.yml"),
			"-f", filepath.Join(exDir, composeOverlay),
			"-f", filepath.Join(projDir, "test.yml")}, args...)
		cmd := exec.CommandContext(ctx, compose, full...)
		cmd.Dir = projDir
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		list, err := s.Docker.Client().ContainerList(context.Background(), container.ListOptions{All: true})
		if err != nil {
			t.Logf("containers: %v", err)
			return
		}
		for _, c := range list {
			name := strings.TrimPrefix(c.Names[0], "/")
			t.Logf("container %s (%s):\n%s", name, c.Status, s.Logs(name))
		}
	})
	started := time.Now()
	if out, err := dc(append([]string{"up", "-d", "--no-build"}, strings.Fields(composeServices)...)...); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}
	t.Logf("docker-compose up in %v", time.Since(started).Round(time.Millisecond))

	posted := false
	t.Run("alertmanager-post", func(t *testing.T) {
		am := fmt.Sprintf("http://127.0.0.1:%d", ports["alertmanager"])
		if err := s.waitHTTP(ctx, "odoo_alertmanager_1", am+"/-/ready", ""); err != nil {
			t.Fatal(err)
		}
		alert := `[{"labels":{"alertname":"ComposeRouteTest","heal":"end_blockers","database":"not_allowed","job":"odoo"},` +
			`"annotations":{"summary":"compose test"}}]`
		resp, err := http.Post(am+"/api/v2/alerts", "application/json", strings.NewReader(alert))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("posting an alert to Alertmanager: %s", resp.Status)
		}
		posted = true
	})
	t.Run("roles", func(t *testing.T) {
		checkComposeRoles(ctx, t, s)
		// Run again (as after creating a database): idempotent.
		out, err := dc("run", "--rm", "odoo-monitoring-init")
		if err != nil || !strings.Contains(string(out), "granted odoo_exporter and odoo_healer in database odoo") {
			t.Fatalf("odoo-monitoring-init run again: %v\n%s", err, out)
		}
		checkComposeRoles(ctx, t, s)
	})

	prom := promtest.API{URL: fmt.Sprintf("http://127.0.0.1:%d", ports["prometheus"])}
	t.Run("scrape", func(t *testing.T) {
		for _, q := range []string{
			`up{job="odoo"} == 1`,        // Prometheus scrapes the exporter
			`up{job="odoo_healer"} == 1`, // and the healer, with the token
			`odoo_pg_up == 1`,            // the exporter's role logs in with its secret
			`odoo_database_up{database="odoo"} == 1`,
			`odoo_container_running{name="odoo"} == 1`, // Docker read through the socket
			`odoo_http_up{target="direct"} == 1`,
		} {
			waitQuery(ctx, t, prom, q)
		}
		var loaded struct {
			Groups []struct {
				Rules []struct {
					Name string `json:"name"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := getJSON(ctx, prom.URL+"/api/v1/rules?type=alert", "", &loaded); err != nil {
			t.Fatal(err)
		}
		var pack struct {
			Groups []struct {
				Rules []struct {
					Alert string `yaml:"alert"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(rules.Pack(), &pack); err != nil {
			t.Fatal(err)
		}
		want, got := map[string]bool{}, map[string]bool{}
		for _, g := range pack.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					want[r.Alert] = true
				}
			}
		}
		for _, g := range loaded.Groups {
			for _, r := range g.Rules {
				got[r.Name] = true
			}
		}
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("Prometheus loaded the alerts %v, want the pack's %v", got, want)
		}
		var ams struct {
			Active []struct {
				URL string `json:"url"`
			} `json:"activeAlertmanagers"`
		}
		if err := getJSON(ctx, prom.URL+"/api/v1/alertmanagers", "", &ams); err != nil {
			t.Fatal(err)
		}
		if len(ams.Active) != 1 {
			t.Errorf("active Alertmanagers = %+v, want the overlay's one", ams.Active)
		}
	})

	healer := fmt.Sprintf("http://127.0.0.1:%d", ports["healer"])
	t.Run("webhook", func(t *testing.T) {
		payload := `{"version":"4","status":"resolved","receiver":"odoo-healer","groupKey":"{}:{}","alerts":[` +
			`{"status":"resolved","labels":{"alertname":"ComposeTest","heal":"end_blockers","database":"odoo"},` +
			`"annotations":{},"startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-01T00:01:00Z","fingerprint":"0123456789abcdef"}]}`
		for _, c := range []struct {
			token string
			want  int
		}{{"", http.StatusUnauthorized}, {"wrong-token-0123456789", http.StatusUnauthorized}, {healerToken, http.StatusOK}} {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, healer+"/webhook", strings.NewReader(payload))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("webhook with token %q: %s %s, want %d", c.token, resp.Status, body, c.want)
			}
		}
	})

	// The alert posted at the start (group_wait is the shipped 30s) has
	// reached the healer through the overlay's route and token: it names a
	// database outside the allow-list, so it is audited, never acted on.
	t.Run("alertmanager-to-healer", func(t *testing.T) {
		if !posted {
			t.Fatal("the alert could not be posted to Alertmanager")
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		waitMetric(wctx, t, healer, healerToken, `odoo_healer_actions_total{action="end_blockers",result="rejected_target"}`)
	})
}

// dropPorts returns the compose file b without its services' ports.
func dropPorts(b []byte) (string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return "", err
	}
	dropped := 0
	if len(doc.Content) == 1 {
		top := doc.Content[0]
		for i := 0; i+1 < len(top.Content); i += 2 {
			if top.Content[i].Value != "services" {
				continue
			}
			services := top.Content[i+1]
			for j := 1; j < len(services.Content); j += 2 {
				svc := services.Content[j]
				for k := 0; k+1 < len(svc.Content); k += 2 {
					if svc.Content[k].Value == "ports" {
						svc.Content = append(svc.Content[:k], svc.Content[k+2:]...)
						dropped++
						break
					}
				}
			}
		}
	}
	if dropped == 0 {
		return "", errors.New("e2e: no ports in the overlay's services")
	}
	out, err := yaml.Marshal(&doc)
	return string(out), err
}

// composePostgres starts the cluster with the Odoo database and only Odoo's
// own role: the overlay's init step creates the others. Their logins need
// a password (scram), so the secrets' passwords are proven to be wired.
func composePostgres(ctx context.Context, s *Stack) error {
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
	hba := filepath.Join(c.Dir, "pg_hba.conf")
	b, err := os.ReadFile(hba)
	if err != nil {
		return err
	}
	if err := os.WriteFile(hba, append([]byte("host all odoo_exporter,odoo_healer 127.0.0.1/32 scram-sha-256\n"), b...), 0o600); err != nil {
		return err
	}
	for _, step := range []struct{ db, sql string }{
		{"postgres", "CREATE ROLE " + AppRole + " LOGIN; SELECT pg_reload_conf()"},
		{"postgres", "CREATE DATABASE " + Database + " OWNER " + AppRole},
		{Database, schema},
		{Database, "GRANT ALL ON ALL TABLES IN SCHEMA public TO " + AppRole + "; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO " + AppRole},
	} {
		if err := execSQL(ctx, c.DSN(step.db, ""), step.sql); err != nil {
			return err
		}
	}
	return nil
}

// checkComposeRoles checks what the init step granted: the docs' least
// privilege, no more.
func checkComposeRoles(ctx context.Context, t *testing.T, s *Stack) {
	conn, err := pgx.Connect(ctx, s.PG.DSN(Database, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, c := range []struct {
		query string
		want  bool
	}{
		{`SELECT pg_has_role('odoo_exporter', 'pg_monitor', 'MEMBER')`, true},
		{`SELECT pg_has_role('odoo_exporter', 'pg_signal_backend', 'MEMBER')`, false},
		{`SELECT has_table_privilege('odoo_exporter', 'ir_cron', 'SELECT')`, true},
		{`SELECT has_table_privilege('odoo_exporter', 'ir_cron_progress', 'SELECT')`, true},
		{`SELECT has_table_privilege('odoo_exporter', 'ir_attachment', 'SELECT')`, true},
		{`SELECT has_table_privilege('odoo_exporter', 'ir_attachment', 'DELETE')`, false},
		{`SELECT has_table_privilege('odoo_exporter', 'res_users', 'SELECT')`, false},
		{`SELECT pg_has_role('odoo_healer', 'pg_signal_backend', 'MEMBER')`, true},
		{`SELECT has_table_privilege('odoo_healer', 'ir_attachment', 'DELETE')`, true},
		{`SELECT has_column_privilege('odoo_healer', 'ir_module_module', 'state', 'UPDATE')`, true},
		{`SELECT has_column_privilege('odoo_healer', 'ir_module_module', 'name', 'UPDATE')`, false},
		{`SELECT has_table_privilege('odoo_healer', 'res_users', 'SELECT')`, false},
		{`SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = 'odoo_healer'`, false},
	} {
		var got bool
		if err := conn.QueryRow(ctx, c.query).Scan(&got); err != nil {
			t.Errorf("%s: %v", c.query, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s = %v, want %v", c.query, got, c.want)
		}
	}
}

// buildHostImage builds tag FROM scratch with a binary of the host and the
// shared libraries ldd lists for it, as entrypoint, and the host's files
// extra (glob patterns) at their paths; with an empty entry, psql and
// busybox (as /bin/sh and the applets init-roles.sh runs).
func buildHostImage(ctx context.Context, s *Stack, tag, entry string, extra ...string) error {
	files := map[string]dockertest.File{}
	add := func(src, dst string, mode int64) error {
		b, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("e2e: image %s: %w", tag, err)
		}
		name := "rootfs/" + strings.TrimPrefix(dst, "/")
		files[name] = dockertest.File{Name: name, Mode: mode, Data: b}
		return nil
	}
	withLibs := func(bin, dst string) error {
		if err := add(bin, dst, 0o755); err != nil {
			return err
		}
		out, err := exec.CommandContext(ctx, "ldd", bin).Output()
		if err != nil {
			return fmt.Errorf("e2e: ldd %s: %w", bin, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			var lib string
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				lib = f[2]
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				lib = f[0]
			default:
				continue
			}
			if err := add(lib, lib, 0o755); err != nil {
				return err
			}
		}
		return nil
	}
	for _, pattern := range extra {
		matches, err := filepath.Glob(pattern)
		if err != nil || len(matches) == 0 {
			return fmt.Errorf("e2e: image %s: no file %s", tag, pattern)
		}
		for _, f := range matches {
			if err := add(f, f, 0o644); err != nil {
				return err
			}
		}
	}
	dockerfile := "FROM scratch\nCOPY rootfs/ /\n"
	if entry != "" {
		if err := withLibs(entry, "/bin/app"); err != nil {
			return err
		}
		dockerfile += "ENTRYPOINT [\"/bin/app\"]\n"
	} else {
		bin, err := pgtest.BinDir()
		if err != nil {
			return err
		}
		if err := withLibs(filepath.Join(bin, "psql"), "/usr/bin/psql"); err != nil {
			return err
		}
		// busybox runs the applet its name says (a copy each: the
		// build context has no links).
		for _, applet := range []string{"sh", "tr", "sleep", "chown", "chmod"} {
			if err := add("/bin/busybox", "/bin/"+applet, 0o755); err != nil {
				return err
			}
		}
		dockerfile += "ENV PATH=/usr/bin:/bin\n"
	}
	all := []dockertest.File{{Name: "Dockerfile", Data: []byte(dockerfile)}}
	for _, f := range files {
		all = append(all, f)
	}
	return s.Docker.BuildContext(ctx, tag, all...)
}

// waitQuery waits until expr returns a sample (the scrape interval of the
// shipped prometheus.yml is 30s).
func waitQuery(ctx context.Context, t *testing.T, api promtest.API, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		got, err := api.Query(ctx, expr)
		if err == nil && len(got) > 0 {
			return
		}
		last = err
		time.Sleep(time.Second)
	}
	t.Fatalf("%s returned nothing before the deadline (last error: %v)", expr, last)
}

// waitMetric waits until the healer's /metrics (with its token) has series
// with a value above 0.
func waitMetric(ctx context.Context, t *testing.T, base, token, series string) {
	t.Helper()
	var body string
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			for _, line := range strings.Split(body, "\n") {
				if v, ok := strings.CutPrefix(line, series+" "); ok && v != "0" {
					return
				}
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("the healer's %s never rose above 0", series)
}

// getJSON decodes the data of a Prometheus API answer.
func getJSON(ctx context.Context, u, token string, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: status %q", u, env.Status)
	}
	return json.Unmarshal(env.Data, data)
}
