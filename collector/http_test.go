package collector

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/odoo-exporter/odoo_exporter/internal/nginxtest"
)

// TestHTTPDirectVersusPublic runs the 502 runbook's diagnosis against the
// stand-in behind a real nginx: a broken proxy fails only "public", a
// stopped Odoo fails both.
func TestHTTPDirectVersusPublic(t *testing.T) {
	s := probeSim(t, "17.0")
	web := strings.TrimPrefix(s.WebURL(), "http://")
	proxy := nginxtest.New(t, web, strings.TrimPrefix(s.GeventURL(), "http://"))
	c := newHTTP(t, HTTPOptions{DirectURL: s.WebURL(), PublicURL: proxy.URL(), Timeout: 5 * time.Second, Database: s.Database()})
	ctx := context.Background()
	type want struct{ up, status float64 }
	check := func(step string, direct, public want) {
		t.Helper()
		ms, err := probeGather(t, ctx, c)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		for target, w := range map[string]want{"direct": direct, "public": public} {
			if got := ms.value(t, "odoo_http_up", "target", target); got != w.up {
				t.Errorf("%s: odoo_http_up{target=%q} = %v, want %v", step, target, got, w.up)
			}
			if got := ms.value(t, "odoo_http_status_code", "target", target); got != w.status {
				t.Errorf("%s: odoo_http_status_code{target=%q} = %v, want %v", step, target, got, w.status)
			}
			if !ms.has("odoo_http_duration_seconds", "target", target) {
				t.Errorf("%s: no odoo_http_duration_seconds{target=%q}", step, target)
			}
		}
		if direct.up == 1 {
			if got := ms.value(t, "odoo_version_info", "version", "17.0", "source", "http", "database", s.Database()); got != 1 {
				t.Errorf("%s: odoo_version_info = %v", step, got)
			}
		}
	}
	check("healthy", want{1, 200}, want{1, 200})

	if err := proxy.Break(); err != nil {
		t.Fatal(err)
	}
	check("proxy upstream broken", want{1, 200}, want{0, 502})

	if err := proxy.SetUpstream(web); err != nil {
		t.Fatal(err)
	}
	check("proxy repaired", want{1, 200}, want{1, 200})

	s.Stop()
	check("odoo down", want{0, 0}, want{0, 502})
}

// TestHTTPVersions checks version_info parsing for every series.
func TestHTTPVersions(t *testing.T) {
	for _, v := range []string{"16.0", "18.0"} {
		s := probeSim(t, v)
		got, err := VersionInfo(context.Background(), http.DefaultClient, s.WebURL())
		if err != nil || got != v {
			t.Errorf("VersionInfo on %s: %q, %v", v, got, err)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"server_version":"17.0+e-20231208","server_version_info":[17,0,0,"final",0,"e"],"server_serie":"17.0","protocol_version":1}}`))
	}))
	defer srv.Close()
	if got, err := VersionInfo(context.Background(), http.DefaultClient, srv.URL); got != "17.0" || err != nil {
		t.Errorf("enterprise build: %q, %v", got, err)
	}
}

// hangingServer accepts requests and never answers until the test ends.
func probeHangingServer(t *testing.T) string {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv.URL
}

// TestProbesHonourScrapeDeadline: a server that never answers must not
// hold a scrape past the scrape's deadline, even with long probe timeouts.
func TestProbesHonourScrapeDeadline(t *testing.T) {
	url := probeHangingServer(t)
	collectors := map[string]Collector{
		"http":   newHTTP(t, HTTPOptions{DirectURL: url, PublicURL: url, Timeout: time.Hour}),
		"assets": newAssets(t, AssetsOptions{BaseURL: url, Timeout: time.Hour}),
	}
	for name, c := range collectors {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			done := make(chan metrics, 1)
			go func() {
				ms, _ := probeGather(t, ctx, c)
				done <- ms
			}()
			select {
			case ms := <-done:
				if name == "http" && ms.value(t, "odoo_http_up", "target", "direct") != 0 {
					t.Error("a hanging server counted as up")
				}
				if name == "assets" && ms.value(t, "odoo_asset_page_up") != 0 {
					t.Error("a hanging login page counted as up")
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the collector held the scrape far past its deadline")
			}
			if ctx.Err() == nil {
				t.Error("the collector returned before the deadline against a server that never answers")
			}
		})
	}
}
