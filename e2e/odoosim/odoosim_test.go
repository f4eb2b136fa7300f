package odoosim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/odoo-exporter/odoo_exporter/internal/pgtest"
)

func startTest(t *testing.T, version string) *Server {
	t.Helper()
	c := pgtest.New(t)
	db := c.OdooDB(t, version)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Start(ctx, Config{DSN: c.DSN(db, ""), Version: version, FilestoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, client *http.Client, u string) (int, string, error) {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestWebRoutes checks the web port's routes as seen on a real Odoo 17.
func TestWebRoutes(t *testing.T) {
	s := startTest(t, "17.0")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		path     string
		status   int
		contains string
	}{
		{"/web/login", 200, `"websocket_worker_version": "17.0-1"`},
		{"/web/login", 200, `data-src="/web/assets/`},
		{"/", 303, ""},
		{"/web", 303, ""},
		{"/web/health", 200, `{"status": "pass"}`},
		{"/websocket/health", 200, `{"status": "pass"}`},
		{"/websocket?version=17.0-1", 500, ""},
		{"/nope", 404, ""},
	}
	for _, tt := range tests {
		code, body, err := get(t, noRedirect, s.WebURL()+tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if code != tt.status || !strings.Contains(body, tt.contains) {
			t.Errorf("GET %s: %d, want %d containing %q; body:\n%s", tt.path, code, tt.status, tt.contains, body)
		}
	}
	resp, err := http.Post(s.WebURL()+"/web/webclient/version_info", "application/json",
		strings.NewReader(`{"jsonrpc":"2.0","method":"call","params":{},"id":1}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Result struct {
			ServerSerie string `json:"server_serie"`
			Info        []any  `json:"server_version_info"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Result.ServerSerie != "17.0" || len(r.Result.Info) != 6 {
		t.Errorf("version_info: %+v, %v", r, err)
	}
}

// TestAdminFaults drives the faults through the admin endpoint, as the
// end-to-end test does from outside the process.
func TestAdminFaults(t *testing.T) {
	s := startTest(t, "17.0")
	admin := func(form url.Values) {
		t.Helper()
		resp, err := http.PostForm(s.WebURL()+"/__odoosim/fault", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("admin %v: %d", form, resp.StatusCode)
		}
	}
	short := &http.Client{Timeout: 300 * time.Millisecond}
	health := s.GeventURL() + "/websocket/health"

	admin(url.Values{"fault": {"stall"}})
	if _, _, err := get(t, short, health); err == nil {
		t.Error("stalled gevent port answered")
	}
	if code, _, err := get(t, short, s.WebURL()+"/web/health"); err != nil || code != 200 {
		t.Errorf("web port during a gevent stall: %d %v", code, err)
	}
	admin(url.Values{"fault": {"clear"}})
	if code, _, err := get(t, short, health); err != nil || code != 200 {
		t.Errorf("after clear: %d %v", code, err)
	}
	admin(url.Values{"fault": {"stall_slow"}, "delay": {"1s"}})
	if _, _, err := get(t, short, health); err == nil {
		t.Error("slow gevent port answered within 300 ms")
	}
	if f, d := s.Fault(); f != FaultStallSlow || d != time.Second {
		t.Errorf("fault %q %v", f, d)
	}
	admin(url.Values{"fault": {"dispatcher_dead"}})
	if f, _ := s.Fault(); f != FaultDispatcherDead {
		t.Errorf("fault %q", f)
	}

	admin(url.Values{"fault": {"broken_bundle"}, "bundle": {"web.assets_frontend.min.css"}})
	_, page, _ := get(t, http.DefaultClient, s.WebURL()+"/web/login")
	i := strings.Index(page, "/web/assets/")
	ref := page[i : i+strings.Index(page[i:], `"`)]
	if code, _, _ := get(t, http.DefaultClient, s.WebURL()+ref); code != 500 {
		t.Errorf("broken bundle %s: %d, want 500", ref, code)
	}

	admin(url.Values{"fault": {"down"}, "duration": {"1s"}})
	deadline := time.Now().Add(10 * time.Second)
	sawDown := false
	for time.Now().Before(deadline) {
		_, _, err := get(t, short, s.WebURL()+"/web/health")
		if err != nil {
			sawDown = true
		} else if sawDown {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !sawDown {
		t.Fatal("down: the web port kept answering")
	}
	if code, _, err := get(t, short, s.WebURL()+"/web/health"); err != nil || code != 200 {
		t.Errorf("after down: %d %v", code, err)
	}
	if f, _ := s.Fault(); f != FaultNone {
		t.Errorf("a restart kept fault %q", f)
	}
}
