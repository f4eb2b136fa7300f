package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildHealer builds this command into a temporary directory.
func buildHealer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "odoo_healer")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer is a bytes.Buffer safe for the process's writer goroutine
// and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ruleFor is a configuration whose only rule matches alertname alert.
func ruleFor(alert string) string {
	return "rules:\n  - name: assets\n    match: {alertname: " + alert + "}\n    action: clear_assets\n    targets: [odoo]\n"
}

// resolvedNamed is resolvedAlert named alert: a rule may match it, it
// never acts, so the answer's outcome (resolved when a rule matches,
// unmatched otherwise) shows which configuration runs.
func resolvedNamed(alert string) string {
	return strings.Replace(resolvedAlert, "OdooAssetsBroken", alert, 1)
}

// TestSignals runs the built binary: SIGHUP loads the changed
// configuration (and keeps the running one when the new one is invalid)
// and reopens the audit log; SIGTERM exits with status 0. Neither the
// PostgreSQL password nor the bearer token appears in its output.
func TestSignals(t *testing.T) {
	const (
		password = "pg-Secret-Passw0rd"
		token    = "bearer-Secret-T0ken-1234"
	)
	bin := buildHealer(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "healer.yml")
	auditPath := filepath.Join(dir, "audit.log")
	write := func(content string) {
		t.Helper()
		// Write and rename, as configuration management does: a reload
		// never sees a half-written file.
		tmp := cfgPath + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfgPath); err != nil {
			t.Fatal(err)
		}
	}
	write(ruleFor("AlertOld"))
	addr := freeAddr(t)
	cmd := exec.Command(bin,
		"--config.file", cfgPath,
		"--web.listen-address", addr,
		"--auth.bearer-token-file", writeFile(t, "token", token+"\n"),
		"--audit.file", auditPath,
		"--state.file", filepath.Join(dir, "state.json"),
		"--docker.host", "unix://"+filepath.Join(dir, "no-docker.sock"),
		"--log.level", "debug")
	// The DSN is passed as the documented environment variable; nothing
	// listens there (no action runs in this test).
	cmd.Env = append(os.Environ(), "ODOO_HEALER_PG_DSN=postgres://healer:"+password+"@127.0.0.1:1/postgres?sslmode=disable")
	var output syncBuffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("healer output:\n%s", output.String())
		}
	})

	base := "http://" + addr
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			select {
			case err := <-exited:
				t.Fatalf("the healer exited (%v) while waiting for %s", err, what)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	metric := func(name string) string {
		t.Helper()
		_, body := do(http.MethodGet, "/metrics", "")
		sc := bufio.NewScanner(strings.NewReader(body))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				return v
			}
		}
		return ""
	}
	// matched: whether a rule of the running configuration matches alert.
	matched := func(alert string, want bool) func() bool {
		return func() bool {
			code, body := do(http.MethodPost, "/webhook", resolvedNamed(alert))
			if code != http.StatusOK {
				t.Errorf("webhook: %d %s", code, body)
				return false
			}
			return strings.Contains(body, `"outcome":"resolved"`) == want
		}
	}

	waitFor("the healer to serve", func() bool { code, _ := do(http.MethodGet, "/-/healthy", ""); return code == http.StatusOK })
	if !matched("AlertOld", true)() || !matched("AlertNew", false)() {
		t.Fatal("the initial configuration does not run")
	}

	// A valid new configuration, and a rotated audit log.
	write(ruleFor("AlertNew"))
	if err := os.Rename(auditPath, auditPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("the new configuration to run", matched("AlertNew", true))
	if !matched("AlertOld", false)() {
		t.Error("the old rule still matches after the reload")
	}
	if got := metric("odoo_healer_config_last_reload_successful"); got != "1" {
		t.Errorf("odoo_healer_config_last_reload_successful = %q after a good reload, want 1", got)
	}
	if _, err := os.Stat(auditPath); err != nil {
		t.Errorf("the audit log was not reopened at its path: %v", err)
	}

	// An invalid configuration (a value out of its range) is refused and
	// the running one kept.
	write(ruleFor("AlertBad") + "    cooldown: 30d\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("the failed reload to be reported", func() bool { return metric("odoo_healer_config_last_reload_successful") == "0" })
	if !matched("AlertNew", true)() || !matched("AlertBad", false)() {
		t.Error("the running configuration was dropped by an invalid reload")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the healer did not exit after SIGTERM")
	}
	out := output.String()
	for _, secret := range []string{password, token} {
		if strings.Contains(out, secret) {
			t.Errorf("the output holds the secret %q", secret)
		}
	}
	if !strings.Contains(out, "configuration reload failed") || !strings.Contains(out, "cooldown 30d: must be between") {
		t.Errorf("the failed reload was not logged with its reason:\n%s", out)
	}
	if strings.Contains(out, "targets=odoo,") {
		t.Errorf("the start-up log lists an empty target:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err != nil {
		t.Errorf("no state file: %v", err)
	}
}
