package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/odoo-exporter/odoo_exporter/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func TestScrapeTimeout(t *testing.T) {
	cases := []struct {
		header string
		want   time.Duration
	}{
		{"", 10 * time.Second},
		{"garbage", 10 * time.Second},
		{"-3", 10 * time.Second},
		{"5", 4500 * time.Millisecond},
		{"0.3", 300 * time.Millisecond}, // offset larger than the timeout: use the timeout
		{"60", 10 * time.Second},
	}
	for _, c := range cases {
		if got := ScrapeTimeout(c.header, 10*time.Second, 500*time.Millisecond); got != c.want {
			t.Errorf("ScrapeTimeout(%q) = %v, want %v", c.header, got, c.want)
		}
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildExporter builds the binary once per test run.
func buildExporter(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "odoo_exporter-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "odoo_exporter")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startExporter runs the binary with args and waits for it to answer.
func startExporter(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, append([]string{"--web.listen-address=" + addr}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("exporter output:\n%s", logs)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("exporter did not start: %v\n%s", err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestExporterEndToEnd runs the real binary against a cluster holding two
// Odoo databases with --odoo.database=all, then stops PostgreSQL: the scrape
// stays 200 with odoo_pg_up 0, and recovers when the server is back.
func TestExporterEndToEnd(t *testing.T) {
	c := pgtest.New(t)
	a := c.OdooDB(t, "17.0")
	b := c.OdooDB(t, "18.0")
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("not-needed-with-trust\n"), 0o600)
	bin := buildExporter(t)
	addr := startExporter(t, bin,
		[]string{"ODOO_EXPORTER_PG_DSN=" + c.DSN("postgres", "")},
		"--odoo.database=all", "--pg.password-file="+pwFile, "--log.level=debug")

	// With all, the database collectors run in background passes by
	// default: their series come with the first pass.
	var (
		code int
		body string
	)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, body = get(t, "http://"+addr+"/metrics")
		if code != 200 {
			t.Fatalf("GET /metrics = %d", code)
		}
		if strings.Contains(body, "odoo_exporter_database_pass_timestamp_seconds ") || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{
		"odoo_exporter_database_pass_timestamp_seconds ",
		"odoo_exporter_discovery_success 1",
		"odoo_exporter_pg_sessions_opened_total ",
		"odoo_pg_up 1",
		"odoo_databases 2",
		fmt.Sprintf(`odoo_database_up{database=%q} 1`, a),
		fmt.Sprintf(`odoo_database_up{database=%q} 1`, b),
		fmt.Sprintf(`odoo_cron_jobs{database=%q} 0`, a),
		fmt.Sprintf(`odoo_modules_in_transition{database=%q} 0`, b),
		`odoo_exporter_collector_success{collector="cron"} 1`,
		`odoo_exporter_build_info{`,
		`process_resident_memory_bytes `,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, "not-needed-with-trust") {
		t.Errorf("the password appears in the metrics")
	}

	code, landing := get(t, "http://"+addr+"/")
	if code != 200 || !strings.Contains(landing, "/metrics") {
		t.Errorf("landing page: %d %q", code, landing)
	}

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	code, body = get(t, "http://"+addr+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics with PostgreSQL down = %d, want 200", code)
	}
	if !strings.Contains(body, "odoo_pg_up 0") {
		t.Errorf("odoo_pg_up is not 0 with PostgreSQL down")
	}
	// The cluster-wide series are of this scrape; the database collectors'
	// (cron, modules) are the last background pass's until the next one.
	if strings.Contains(body, "odoo_pg_deadlocks_total{") || strings.Contains(body, "odoo_pg_backends{") {
		t.Errorf("cluster-wide database metrics still exposed with PostgreSQL down")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	_, body = get(t, "http://"+addr+"/metrics")
	if !strings.Contains(body, "odoo_pg_up 1") {
		t.Errorf("odoo_pg_up did not recover after PostgreSQL came back")
	}
}

func TestVersionFlag(t *testing.T) {
	out, err := exec.Command(buildExporter(t), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "odoo_exporter, version") {
		t.Fatalf("--version: %v %s", err, out)
	}
}

func TestBadDSNIsAClearErrorWithoutThePassword(t *testing.T) {
	cmd := exec.Command(buildExporter(t), "--web.listen-address="+freeAddr(t))
	cmd.Env = append(os.Environ(), "ODOO_EXPORTER_PG_DSN=postgres://u:s3cret@host:notaport/db")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("exporter started with a malformed DSN")
	}
	if strings.Contains(string(out), "s3cret") {
		t.Errorf("the password was logged: %s", out)
	}
	if !strings.Contains(string(out), "DSN") {
		t.Errorf("the error does not name the DSN: %s", out)
	}
}

// TestDatabaseRefreshFlag runs the binary with background passes over the
// databases: scrapes show the pass's metrics and its age; a negative
// interval is refused.
func TestDatabaseRefreshFlag(t *testing.T) {
	c := pgtest.New(t)
	a := c.OdooDB(t, "17.0")
	bin := buildExporter(t)
	env := []string{"ODOO_EXPORTER_PG_DSN=" + c.DSN("postgres", "")}
	addr := startExporter(t, bin, env, "--odoo.database=all", "--odoo.database-refresh-interval=500ms")
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := get(t, "http://"+addr+"/metrics")
		if strings.Contains(body, fmt.Sprintf(`odoo_cron_jobs{database=%q} 0`, a)) &&
			strings.Contains(body, "odoo_exporter_database_pass_timestamp_seconds ") &&
			strings.Contains(body, "odoo_pg_up 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no background pass in the metrics:\n%s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	cmd := exec.Command(bin, "--web.listen-address="+freeAddr(t), "--odoo.database-refresh-interval=-1s")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--odoo.database-refresh-interval=-1s is out of range") {
		t.Errorf("a negative interval: %v\n%s", err, out)
	}
}
