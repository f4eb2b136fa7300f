package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// numericFlags returns the flags of the binary whose default is a number
// or a duration (from --help), with whether it is a duration.
func numericFlags(t *testing.T, bin string) map[string]bool {
	t.Helper()
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	flags := map[string]bool{}
	re := regexp.MustCompile(`(?m)^\s+--([a-z0-9._-]+)=(\S+)`)
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		if _, err := strconv.ParseInt(m[2], 10, 64); err == nil {
			flags[m[1]] = false
		} else if _, err := time.ParseDuration(m[2]); err == nil {
			flags[m[1]] = true
		}
	}
	if len(flags) < 10 {
		t.Fatalf("found only %d numeric flags in --help:\n%s", len(flags), out)
	}
	return flags
}

// TestEveryNumericFlagHasARange: every duration, size and count flag of
// the binary is checked at start.
func TestEveryNumericFlagHasARange(t *testing.T) {
	flags := numericFlags(t, buildExporter(t))
	for name := range flags {
		if _, ok := flagRanges[name]; !ok {
			t.Errorf("--%s has no range in flagRanges (flags.go)", name)
		}
	}
	for name := range flagRanges {
		if _, ok := flags[name]; !ok {
			t.Errorf("flagRanges names --%s, which the binary does not have (or not with a numeric default)", name)
		}
	}
}

// runBad runs the binary with args and returns its output; it must refuse
// to start.
func runBad(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--web.listen-address=" + freeAddr(t)}, args...)...)
	cmd.Env = append(os.Environ(), "ODOO_EXPORTER_PG_DSN=", "ODOO_EXPORTER_WEB_URL=", "ODOO_EXPORTER_GEVENT_URL=")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v: the exporter started", args)
	}
	if err == nil {
		t.Fatalf("%v: exit status 0\n%s", args, out)
	}
	return string(out)
}

// TestBadFlagValuesRefuseToStart runs the binary with each bad value: the
// ones of issue 13, then for every flag of flagRanges one value just
// below its range and one just above. Each must refuse to start with a
// message naming the flag, the value and the valid range.
func TestBadFlagValuesRefuseToStart(t *testing.T) {
	bin := buildExporter(t)
	type tc struct {
		arg  string
		want []string
	}
	tests := []tc{
		{"--pg.statement-timeout=-5s", []string{"--pg.statement-timeout=-5s is out of range", "1ms to 596h31m23.647s", "statement_timeout"}},
		{"--pg.statement-timeout=0s", []string{"--pg.statement-timeout=0s is out of range", "0 would disable it"}},
		{"--pg.statement-timeout=1500us", []string{"--pg.statement-timeout=1.5ms is out of range", "whole milliseconds"}},
		{"--scrape.timeout=0s", []string{"--scrape.timeout=0s is out of range", "100ms to 10m0s"}},
		{"--scrape.timeout=-1s", []string{"--scrape.timeout=-1s is out of range"}},
		{"--pg.connect-timeout=-1s", []string{"--pg.connect-timeout=-1s is out of range"}},
		{"--pg.lock-timeout=1ns", []string{"--pg.lock-timeout=1ns is out of range", "lock_timeout"}},
		{"--collector.assets.concurrency=-5", []string{"--collector.assets.concurrency=-5 is out of range", "1 to 64"}},
		{"--pg.max-connections=0", []string{"--pg.max-connections=0 is out of range", "1 to 262143", "max_connections"}},
		{"--pg.max-connections=262144", []string{"--pg.max-connections=262144 is out of range"}},
		{"--odoo.database-refresh-interval=-1s", []string{"--odoo.database-refresh-interval=-1s is out of range", "0 (the database collectors run in every scrape) or 100ms to 24h0m0s"}},
		{"--web.max-requests=-1", []string{"--web.max-requests=-1 is out of range", "0 (no limit) or 1 to 10000"}},
	}
	flags := numericFlags(t, bin)
	var names []string
	for name := range flagRanges {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		r := flagRanges[name]
		format := func(n int64) string { return strconv.FormatInt(n, 10) }
		if flags[name] {
			format = func(n int64) string { return time.Duration(n).String() }
		}
		below := r.min - 1
		if r.zero && below == 0 {
			below = -1
		}
		for _, v := range []int64{below, r.max + 1} {
			arg := fmt.Sprintf("--%s=%s", name, format(v))
			tests = append(tests, tc{arg, []string{arg + " is out of range", "valid values are "}})
		}
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			out := runBad(t, bin, tt.arg)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("the message lacks %q:\n%s", w, out)
				}
			}
		})
	}
	// Probe URLs and origins are checked when the collectors are built.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--odoo.web-url=http://127.0.0.1:1", "--collector.assets.allowed-origin=ftp://cdn.example"}, "--collector.assets.allowed-origin"},
		{[]string{"--odoo.web-url=http://127.0.0.1:1", "--collector.assets.allowed-origin=https://cdn.example/static"}, "--collector.assets.allowed-origin"},
		{[]string{"--odoo.web-url=ftp://127.0.0.1:1"}, "not an absolute http(s) or ws(s) URL"},
	} {
		if out := runBad(t, bin, tt.args...); !strings.Contains(out, tt.want) {
			t.Errorf("%v: the message lacks %q:\n%s", tt.args, tt.want, out)
		}
	}
	// Several bad values: all are named at once.
	out := runBad(t, bin, "--scrape.timeout=0s", "--collector.assets.max-bundles=0")
	for _, w := range []string{"--scrape.timeout=0s", "--collector.assets.max-bundles=0"} {
		if !strings.Contains(out, w) {
			t.Errorf("the message lacks %q:\n%s", w, out)
		}
	}
}

// TestFlagRangeBoundsStart: the bounds themselves are valid; the exporter
// starts with every flag at its minimum, and at its maximum.
func TestFlagRangeBoundsStart(t *testing.T) {
	bin := buildExporter(t)
	flags := numericFlags(t, bin)
	for _, bound := range []string{"min", "max"} {
		t.Run(bound, func(t *testing.T) {
			var args []string
			for name, r := range flagRanges {
				v := r.min
				if bound == "max" {
					v = r.max
				}
				s := strconv.FormatInt(v, 10)
				if flags[name] {
					s = time.Duration(v).String()
				}
				args = append(args, fmt.Sprintf("--%s=%s", name, s))
			}
			addr := startExporter(t, bin, nil, args...)
			if code, _ := get(t, "http://"+addr+"/metrics"); code != 200 {
				t.Errorf("GET /metrics = %d", code)
			}
		})
	}
}

// TestMaxRequestsAcrossRequests: with --web.max-requests=2 and two scrapes
// in flight (held by an Odoo that does not answer yet), every further
// parallel scrape is answered 503 at once and Odoo receives no request
// for it; once the two end, scrapes are served again.
func TestMaxRequestsAcrossRequests(t *testing.T) {
	const limit, extra = 2, 8
	var logins atomic.Int64
	release := make(chan struct{})
	odoo := newHoldingOdoo(t, &logins, release)
	addr := startExporter(t, buildExporter(t), nil,
		"--odoo.web-url="+odoo, "--no-collector.assets", "--no-collector.longpoll",
		"--collector.http.timeout=10m", "--scrape.timeout=10m", fmt.Sprintf("--web.max-requests=%d", limit))

	held := make(chan int, limit)
	for range limit {
		go func() {
			resp, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				held <- 0
				return
			}
			resp.Body.Close()
			held <- resp.StatusCode
		}()
	}
	eventually(t, func() bool { return logins.Load() == limit })

	// Past the limit the answer is immediate; one held with the others
	// (not refused) would wait for release: the client gives up on it.
	client := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	codes := make(chan int, extra)
	for range extra {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get("http://" + addr + "/metrics")
			if err != nil {
				t.Errorf("a scrape past the limit was not refused: %v", err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusServiceUnavailable {
			t.Errorf("a scrape past the limit got %d, want 503", code)
		}
	}
	if n := logins.Load(); n != limit {
		t.Errorf("Odoo received %d login page requests, want %d (one per scrape served)", n, limit)
	}
	close(release)
	for range limit {
		if code := <-held; code != 200 {
			t.Errorf("a scrape within the limit got %d, want 200", code)
		}
	}
	if code, _ := get(t, "http://"+addr+"/metrics"); code != 200 {
		t.Errorf("a scrape after the others ended got %d, want 200", code)
	}
}

// newHoldingOdoo is an Odoo whose login page is held until release is
// closed; it counts the login page requests.
func newHoldingOdoo(t *testing.T, logins *atomic.Int64, release chan struct{}) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/web/login" {
			http.NotFound(w, r)
			return
		}
		logins.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.Write([]byte("<html></html>"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// eventually waits for cond (at most a minute, polling).
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
