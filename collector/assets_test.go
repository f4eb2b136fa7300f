package collector

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/odoo-exporter/odoo_exporter/e2e/odoosim"
	"github.com/odoo-exporter/odoo_exporter/internal/loopbacktest"
)

func TestAssetsBrokenBundle(t *testing.T) {
	s := probeSim(t, "17.0")
	c := newAssets(t, AssetsOptions{BaseURL: s.WebURL(), Timeout: 10 * time.Second})
	ctx := context.Background()
	check := func(step string, broken string) {
		t.Helper()
		ms, err := probeGather(t, ctx, c)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		failing := 0.0
		for _, b := range odoosim.Bundles() {
			want := 1.0
			if b == broken {
				want, failing = 0, 1
			}
			if got := ms.value(t, "odoo_asset_bundle_up", "bundle", b); got != want {
				t.Errorf("%s: odoo_asset_bundle_up{bundle=%q} = %v, want %v", step, b, got, want)
			}
		}
		if got := ms.value(t, "odoo_asset_bundles_failing"); got != failing {
			t.Errorf("%s: odoo_asset_bundles_failing = %v, want %v", step, got, failing)
		}
	}
	check("healthy", "")
	const broken = "web.assets_frontend_lazy.min.js" // the data-src lazy bundle
	if err := s.BreakBundle(ctx, broken); err != nil {
		t.Fatal(err)
	}
	check("file of a bundle deleted", broken)
	// The runbook's quick fix: Odoo rebuilds the deleted bundles.
	cluster.Exec(t, s.Database(), `DELETE FROM ir_attachment WHERE name LIKE 'web.assets_%' AND res_model = 'ir.ui.view'`)
	check("attachments deleted", "")
}

// TestAssetsSlowBundle: a bundle that answers after the probe's timeout is
// down; one still pending at the scrape's deadline is not judged (the
// collector fails instead), so a short scrape timeout never reads as a
// broken bundle.
func TestAssetsSlowBundle(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/web/login":
			w.Write([]byte(`<link rel="stylesheet" href="/web/assets/1/web.fast.min.css"/><script src="/web/assets/1/web.slow.min.js"></script>`))
		case "/web/assets/1/web.slow.min.js":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			w.Write([]byte("body{}"))
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	tests := []struct {
		name            string
		timeout, scrape time.Duration
		wantErr         bool
		wantSlow        []float64 // odoo_asset_bundle_up{bundle="web.slow.min.js"}, none when empty
		wantFailing     []float64
	}{
		{"probe timeout first", 300 * time.Millisecond, time.Minute, false, []float64{0}, []float64{1}},
		{"scrape deadline first", time.Hour, 300 * time.Millisecond, true, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newAssets(t, AssetsOptions{BaseURL: srv.URL, Timeout: tt.timeout})
			ctx, cancel := context.WithTimeout(context.Background(), tt.scrape)
			defer cancel()
			ms, err := probeGather(t, ctx, c)
			if (err != nil) != tt.wantErr {
				t.Errorf("error %v, want error: %v", err, tt.wantErr)
			}
			if got := ms.value(t, "odoo_asset_bundle_up", "bundle", "web.fast.min.css"); got != 1 {
				t.Errorf("fast bundle up = %v, want 1", got)
			}
			check := func(name string, want []float64, labels ...string) {
				found := ms.find(name, labels...)
				if len(found) != len(want) {
					t.Fatalf("%s: %d samples, want %d", name, len(found), len(want))
				}
				if len(want) == 1 && found[0].GetGauge().GetValue() != want[0] {
					t.Errorf("%s = %v, want %v", name, found[0].GetGauge().GetValue(), want[0])
				}
			}
			check("odoo_asset_bundle_up", tt.wantSlow, "bundle", "web.slow.min.js")
			check("odoo_asset_bundles_failing", tt.wantFailing)
		})
	}
}

// TestAssetsLoginPageDown: a login page that does not answer is the
// probe's finding (odoo_asset_page_up 0), not the collector's failure; no
// bundle is judged.
func TestAssetsLoginPageDown(t *testing.T) {
	s := probeSim(t, "17.0")
	c := newAssets(t, AssetsOptions{BaseURL: s.WebURL(), Timeout: 5 * time.Second})
	if ms, err := probeGather(t, context.Background(), c); err != nil || ms.value(t, "odoo_asset_page_up") != 1 {
		t.Fatalf("healthy: %v, odoo_asset_page_up %v", err, ms.value(t, "odoo_asset_page_up"))
	}
	s.Stop()
	ms, err := probeGather(t, context.Background(), c)
	if err != nil {
		t.Errorf("the collector failed because Odoo is down: %v", err)
	}
	if got := ms.value(t, "odoo_asset_page_up"); got != 0 {
		t.Errorf("odoo_asset_page_up = %v, want 0", got)
	}
	for _, name := range []string{"odoo_asset_bundle_up", "odoo_asset_bundles_failing", "odoo_asset_bundles_skipped"} {
		if ms.has(name) {
			t.Errorf("%s reported without a login page", name)
		}
	}
}

// TestAssetsStayOnOrigin: bundle links and redirects that leave the probed
// URL's origin are never requested (the other server sees nothing) and
// are counted as skipped, unless the origin is allowed.
func TestAssetsStayOnOrigin(t *testing.T) {
	other := loopbacktest.Start(t)
	otherHost := strings.TrimPrefix(other.URL, "http://")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/web/login":
			fmt.Fprintf(w, `<link rel="stylesheet" href="/web/assets/1/web.assets_frontend.min.css"/>
<script src="http://%[1]s/web/assets/1/evil.min.js"></script>
<script src="//%[1]s/web/assets/1/web.evil_relative.min.js"></script>
<link href="ftp://%[1]s/web/assets/1/web.evil_ftp.min.css"/>
<script src="/web/assets/1/web.assets_redirected.min.js"></script>`, otherHost)
		case "/web/assets/1/web.assets_redirected.min.js":
			http.Redirect(w, r, other.URL+"/internal/secret", http.StatusFound)
		default:
			w.Write([]byte("body{}"))
		}
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name        string
		allow       []string
		wantHits    bool
		wantSkipped float64
		wantUp      []string
	}{
		{"probed origin only", nil, false, 4, []string{"web.assets_frontend.min.css"}},
		{"other origin allowed", []string{other.URL}, true, 1, // ftp is never allowed
			[]string{"web.assets_frontend.min.css", "other", "web.evil_relative.min.js", "web.assets_redirected.min.js"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := other.Hits()
			c := newAssets(t, AssetsOptions{BaseURL: srv.URL, AllowedOrigins: tt.allow})
			ms, err := probeGather(t, context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if got := other.Hits() - before; (got > 0) != tt.wantHits {
				t.Errorf("the other server received %d requests", got)
			}
			if got := ms.value(t, "odoo_asset_bundles_skipped", "reason", "off_origin"); got != tt.wantSkipped {
				t.Errorf("skipped off_origin = %v, want %v", got, tt.wantSkipped)
			}
			if got := len(ms.find("odoo_asset_bundle_up")); got != len(tt.wantUp) {
				t.Errorf("%d odoo_asset_bundle_up series, want %d:\n%s", got, len(tt.wantUp), ms.names())
			}
			for _, b := range tt.wantUp {
				if got := ms.value(t, "odoo_asset_bundle_up", "bundle", b); got != 1 {
					t.Errorf("odoo_asset_bundle_up{bundle=%q} = %v", b, got)
				}
			}
			if got := ms.value(t, "odoo_asset_bundles_failing"); got != 0 {
				t.Errorf("odoo_asset_bundles_failing = %v, want 0", got)
			}
		})
	}
	if _, err := NewAssetsCollector(AssetsOptions{BaseURL: srv.URL, AllowedOrigins: []string{"ftp://" + otherHost}}); err == nil ||
		!strings.Contains(err.Error(), "--collector.assets.allowed-origin") {
		t.Errorf("a non-HTTP allowed origin: %v", err)
	}
}

// TestAssetsBundleLimit: a page naming 10,000 bundles costs at most the
// limit in requests and series per scrape, with names in Odoo's naming
// or not (those share the label "other").
func TestAssetsBundleLimit(t *testing.T) {
	const links, limit = 10000, 25
	tests := []struct {
		name       string
		format     string // of a bundle's file name, from its number
		wantSeries int
	}{
		{"Odoo's naming", "web.assets_%05d.min.js", limit},
		{"names of the page's choosing", "evil-%05d.js", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int64
			var page strings.Builder
			for i := range links {
				fmt.Fprintf(&page, `<script src="/web/assets/%d/`+tt.format+`"></script>`+"\n", i, i)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				if r.URL.Path == "/web/login" {
					w.Write([]byte(page.String()))
					return
				}
				w.Write([]byte("x"))
			}))
			t.Cleanup(srv.Close)
			c := newAssets(t, AssetsOptions{BaseURL: srv.URL, MaxBundles: limit})
			for scrape := 1; scrape <= 2; scrape++ {
				ms, err := probeGather(t, context.Background(), c)
				if err != nil {
					t.Fatal(err)
				}
				if got := requests.Load(); got != int64(scrape*(limit+1)) {
					t.Errorf("after %d scrapes: %d requests, want %d", scrape, got, scrape*(limit+1))
				}
				if got := len(ms.find("odoo_asset_bundle_up")); got != tt.wantSeries {
					t.Errorf("%d odoo_asset_bundle_up series, want %d", got, tt.wantSeries)
				}
				if got := ms.value(t, "odoo_asset_bundles_skipped", "reason", "over_limit"); got != links-limit {
					t.Errorf("skipped over_limit = %v, want %d", got, links-limit)
				}
			}
		})
	}
}

func TestAssetAttachments(t *testing.T) {
	s := probeSim(t, "17.0")
	exp := newTestExporter(t, cluster.DSN(s.Database(), ""), s.Database(), "asset_attachments")
	if got := scrapeOnce(t, exp).value(t, "odoo_asset_attachments", "database", s.Database()); got != 0 {
		t.Errorf("before any bundle was built: %v", got)
	}
	c := newAssets(t, AssetsOptions{BaseURL: s.WebURL()})
	if _, err := probeGather(t, context.Background(), c); err != nil { // builds the bundles
		t.Fatal(err)
	}
	if got := scrapeOnce(t, exp).value(t, "odoo_asset_attachments", "database", s.Database()); got != float64(len(odoosim.Bundles())) {
		t.Errorf("after the bundles were built: %v, want %d", got, len(odoosim.Bundles()))
	}
}

// BenchmarkAssetsProbe measures one asset probe (login page + every
// bundle) against the stand-in.
func BenchmarkAssetsProbe(b *testing.B) {
	s := probeSim(b, "17.0")
	c := newAssets(b, AssetsOptions{BaseURL: s.WebURL()})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := probeGather(b, context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHTTPProbe measures one HTTP probe (direct target + version_info).
func BenchmarkHTTPProbe(b *testing.B) {
	s := probeSim(b, "17.0")
	c := newHTTP(b, HTTPOptions{DirectURL: s.WebURL()})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := probeGather(b, context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
}

// newAssets builds an assets collector or fails the test.
func newAssets(tb testing.TB, o AssetsOptions) *AssetsCollector {
	tb.Helper()
	c, err := NewAssetsCollector(o)
	if err != nil || c == nil {
		tb.Fatalf("NewAssetsCollector: %v, %v", c, err)
	}
	return c
}

// newHTTP builds an HTTP collector or fails the test.
func newHTTP(tb testing.TB, o HTTPOptions) *HTTPCollector {
	tb.Helper()
	c, err := NewHTTPCollector(o)
	if err != nil || c == nil {
		tb.Fatalf("NewHTTPCollector: %v, %v", c, err)
	}
	return c
}
