package collector

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/odoo-exporter/odoo_exporter/e2e/odoosim"
)

func TestAssetsBrokenBundle(t *testing.T) {
	s := probeSim(t, "17.0")
	c := NewAssetsCollector(AssetsOptions{BaseURL: s.WebURL(), Timeout: 10 * time.Second})
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
			w.Write([]byte(`<link rel="stylesheet" href="/web/assets/1/fast.min.css"/><script src="/web/assets/1/slow.min.js"></script>`))
		case "/web/assets/1/slow.min.js":
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
		wantSlow        []float64 // odoo_asset_bundle_up{bundle="slow.min.js"}, none when empty
		wantFailing     []float64
	}{
		{"probe timeout first", 300 * time.Millisecond, time.Minute, false, []float64{0}, []float64{1}},
		{"scrape deadline first", time.Hour, 300 * time.Millisecond, true, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewAssetsCollector(AssetsOptions{BaseURL: srv.URL, Timeout: tt.timeout})
			ctx, cancel := context.WithTimeout(context.Background(), tt.scrape)
			defer cancel()
			ms, err := probeGather(t, ctx, c)
			if (err != nil) != tt.wantErr {
				t.Errorf("error %v, want error: %v", err, tt.wantErr)
			}
			if got := ms.value(t, "odoo_asset_bundle_up", "bundle", "fast.min.css"); got != 1 {
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
			check("odoo_asset_bundle_up", tt.wantSlow, "bundle", "slow.min.js")
			check("odoo_asset_bundles_failing", tt.wantFailing)
		})
	}
}

func TestAssetsLoginPageDown(t *testing.T) {
	s := probeSim(t, "17.0")
	c := NewAssetsCollector(AssetsOptions{BaseURL: s.WebURL(), Timeout: 5 * time.Second})
	s.Stop()
	ms, err := probeGather(t, context.Background(), c)
	if err == nil {
		t.Error("no error when the login page cannot be fetched")
	}
	if ms.has("odoo_asset_bundle_up") {
		t.Error("bundles reported without a login page")
	}
}

func TestAssetAttachments(t *testing.T) {
	s := probeSim(t, "17.0")
	exp := newTestExporter(t, cluster.DSN(s.Database(), ""), s.Database(), "asset_attachments")
	if got := scrapeOnce(t, exp).value(t, "odoo_asset_attachments", "database", s.Database()); got != 0 {
		t.Errorf("before any bundle was built: %v", got)
	}
	c := NewAssetsCollector(AssetsOptions{BaseURL: s.WebURL()})
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
	c := NewAssetsCollector(AssetsOptions{BaseURL: s.WebURL()})
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
	c := NewHTTPCollector(HTTPOptions{DirectURL: s.WebURL()})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := probeGather(b, context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}
}
