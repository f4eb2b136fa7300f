package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/crypto/bcrypt"

	"github.com/odoo-exporter/odoo_exporter/heal"
)

const testConfig = `
rules:
  - name: assets
    match: {heal: clear_assets}
    action: clear_assets
    targets: [odoo]
`

// resolvedAlert matches the rule but never acts.
const resolvedAlert = `{"version":"4","status":"resolved","receiver":"healer","alerts":[{"status":"resolved",
	"labels":{"alertname":"OdooAssetsBroken","heal":"clear_assets","database":"odoo"},
	"startsAt":"2025-01-01T00:00:00Z","fingerprint":"abc"}]}`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
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

// serve starts the healer's HTTP server with args as main does and
// returns its base URL.
func serve(t *testing.T, args ...string) string {
	t.Helper()
	url, _, _ := serveMetrics(t, args...)
	return url
}

// serveMetrics is serve that also returns the healer's registry and the
// log of its authentication.
func serveMetrics(t *testing.T, args ...string) (string, *prometheus.Registry, *syncBuffer) {
	t.Helper()
	addr := freeAddr(t)
	f, err := parseFlags(append(args, "--config.file", writeFile(t, "healer.yml", testConfig), "--web.listen-address", addr))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	f.logger = slog.New(slog.NewTextHandler(logs, nil))
	a, err := newAuth(f)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := heal.LoadConfig(f.configFile)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := heal.NewMetrics(reg)
	a.metrics = m
	h, err := heal.New(cfg, heal.Options{Metrics: m, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: newMux(f, h, reg, a), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = web.ListenAndServe(srv, f.toolkit, logger) }()
	t.Cleanup(func() { srv.Close() })
	url := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/-/healthy")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return url, reg, logs
}

func post(t *testing.T, url string, set func(*http.Request)) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/webhook", strings.NewReader(resolvedAlert))
	req.Header.Set("Content-Type", "application/json")
	if set != nil {
		set(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestAuth(t *testing.T) {
	const token = "s3cr3t-t0ken-for-tests"
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := writeFile(t, "web.yml", "basic_auth_users:\n  alertmanager: "+string(hash)+"\n")
	bearer := writeFile(t, "token", token+"\n")
	basic := func(u, p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, p) } }
	bearerAuth := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	for _, tc := range []struct {
		name string
		args []string
		set  func(*http.Request)
		want int
	}{
		{"basic: none", []string{"--web.config.file", webCfg}, nil, 401},
		{"basic: wrong password", []string{"--web.config.file", webCfg}, basic("alertmanager", "nope"), 401},
		{"basic: wrong user", []string{"--web.config.file", webCfg}, basic("root", "pw"), 401},
		{"basic: right", []string{"--web.config.file", webCfg}, basic("alertmanager", "pw"), 200},
		{"bearer: none", []string{"--auth.bearer-token-file", bearer}, nil, 401},
		{"bearer: wrong", []string{"--auth.bearer-token-file", bearer}, bearerAuth("s3cr3t-t0ken-for-test"), 401},
		{"bearer: basic instead", []string{"--auth.bearer-token-file", bearer}, basic("alertmanager", token), 401},
		{"bearer: right", []string{"--auth.bearer-token-file", bearer}, bearerAuth(token), 200},
		{"unauthenticated allowed explicitly", []string{"--web.allow-unauthenticated"}, nil, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := serve(t, tc.args...)
			if got := post(t, url, tc.set); got != tc.want {
				t.Errorf("webhook: %d, want %d", got, tc.want)
			}
			// /metrics is protected alike; health endpoints are open.
			req, _ := http.NewRequest(http.MethodGet, url+"/metrics", nil)
			if tc.set != nil {
				tc.set(req)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("metrics: %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// TestAuthFailuresCounted: every request with a missing or wrong bearer
// token is counted in odoo_healer_auth_failures_total; good ones are not.
// The log says it at most once per 10 s (a brute force does not flood
// it).
func TestAuthFailuresCounted(t *testing.T) {
	const token = "s3cr3t-t0ken-for-tests"
	url, reg, logs := serveMetrics(t, "--auth.bearer-token-file", writeFile(t, "token", token))
	for _, tok := range []string{"", "wrong", "wrong-again", token} {
		post(t, url, func(r *http.Request) {
			if tok != "" {
				r.Header.Set("Authorization", "Bearer "+tok)
			}
		})
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "odoo_healer_auth_failures_total" {
			got = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if got != 3 {
		t.Errorf("odoo_healer_auth_failures_total = %v, want 3", got)
	}
	if n := strings.Count(logs.String(), "refused a request: bad credentials"); n != 1 {
		t.Errorf("%d log lines for 3 refusals within 10 s, want 1:\n%s", n, logs.String())
	}
}

// TestBadFlagValues: each out-of-range flag value refuses to start with a
// message naming the flag.
func TestBadFlagValues(t *testing.T) {
	cfg := writeFile(t, "healer.yml", testConfig)
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--web.max-body-bytes=0"}, "--web.max-body-bytes=0: must be between"},
		{[]string{"--web.max-body-bytes=-5"}, "--web.max-body-bytes=-5"},
		{[]string{"--web.max-body-bytes=1000000000"}, "--web.max-body-bytes"},
		{[]string{"--pg.statement-timeout=-5s"}, "--pg.statement-timeout=-5s: must be between 1ms and 1h"},
		{[]string{"--pg.statement-timeout=0s"}, "--pg.statement-timeout=0s"},
		{[]string{"--pg.statement-timeout=1500us"}, "whole milliseconds"},
		{[]string{"--pg.lock-timeout=1ns"}, "--pg.lock-timeout=1ns"},
		{[]string{"--pg.lock-timeout=2h"}, "--pg.lock-timeout=2h0m0s"},
		{[]string{"--pg.connect-timeout=-1s"}, "--pg.connect-timeout=-1s"},
		{[]string{"--pg.connect-timeout=0s"}, "--pg.connect-timeout=0s"},
		{[]string{"--shutdown.timeout=0s"}, "--shutdown.timeout=0s"},
		{[]string{"--web.webhook-path=webhook"}, "--web.webhook-path=\"webhook\": must start with /"},
		{[]string{"--web.telemetry-path=/webhook"}, "are both"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseFlags(append(tc.args, "--config.file", cfg))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
			if code := run(append(tc.args, "--config.file", cfg, "--web.allow-unauthenticated")); code != 2 {
				t.Errorf("run: exit %d, want 2", code)
			}
		})
	}
	if _, err := parseFlags([]string{"--config.file", cfg}); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestRefusesToStartWithoutAuth(t *testing.T) {
	cfg := writeFile(t, "healer.yml", testConfig)
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	webCfg := writeFile(t, "web.yml", "basic_auth_users:\n  alertmanager: "+string(hash)+"\n")
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"nothing", nil, "no authentication configured"},
		{"web config without users", []string{"--web.config.file", writeFile(t, "web.yml", "http_server_config:\n  http2: false\n")}, "no authentication configured"},
		{"short token", []string{"--auth.bearer-token-file", writeFile(t, "tok", "short")}, "shorter than 16"},
		{"bearer and basic", []string{"--auth.bearer-token-file", writeFile(t, "tok", "0123456789abcdef0123"), "--web.config.file", webCfg}, "exclude each other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parseFlags(append(tc.args, "--config.file", cfg))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := newAuth(f); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
		})
	}
	// run itself exits with status 1 before listening.
	if code := run([]string{"--config.file", cfg, "--web.listen-address", freeAddr(t), "--log.level", "error"}); code != 1 {
		t.Errorf("run without authentication: exit %d, want 1", code)
	}
}

func TestInvalidConfigRefused(t *testing.T) {
	for _, c := range []string{"", "rules: []\n", "rules:\n  - name: x\n    match: {heal: x}\n    action: nope\n    targets: [a]\n", "bogus_key: 1\n" + testConfig} {
		p := writeFile(t, "healer.yml", c)
		if code := run([]string{"--config.file", p, "--config.check", "--log.level", "error"}); code != 1 {
			t.Errorf("%q: exit %d, want 1", c, code)
		}
	}
	if code := run([]string{"--config.file", writeFile(t, "healer.yml", testConfig), "--config.check"}); code != 0 {
		t.Errorf("valid config: exit %d", code)
	}
}
