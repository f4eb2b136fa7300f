package collector

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestProbeSourceDown: when Odoo is down, the http, assets and longpoll
// collectors report it as their metric, keep
// odoo_exporter_collector_success at 1, and log one line when it goes
// down and one when it is back, not an error per scrape.
func TestProbeSourceDown(t *testing.T) {
	tests := []struct {
		name   string
		metric string   // the collector's "source down" metric
		labels []string // its labels
		build  func(t *testing.T, web, gevent string, logger *slog.Logger) Collector
		probe  func(c Collector) // a background probe, for longpoll
	}{
		{"http", "odoo_http_up", []string{"target", "direct"},
			func(t *testing.T, web, _ string, l *slog.Logger) Collector {
				return newHTTP(t, HTTPOptions{DirectURL: web, Timeout: 5 * time.Second, Logger: l})
			}, nil},
		{"assets", "odoo_asset_page_up", nil,
			func(t *testing.T, web, _ string, l *slog.Logger) Collector {
				return newAssets(t, AssetsOptions{BaseURL: web, Timeout: 5 * time.Second, Logger: l})
			}, nil},
		{"longpoll", "odoo_longpoll_up", nil,
			func(t *testing.T, _, gevent string, l *slog.Logger) Collector {
				c, err := NewLongpollCollector(LongpollOptions{GeventURL: gevent, Mode: LongpollHealth, Timeout: 5 * time.Second, Logger: l})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}, func(c Collector) { c.(*LongpollCollector).Probe(context.Background()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := probeSim(t, "17.0")
			logs := &bytes.Buffer{} // written by the scrapes, read after they ended
			logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := tt.build(t, s.WebURL(), s.GeventURL(), logger)
			exp := &Exporter{logger: logger, collectors: map[string]Collector{tt.name: c}}
			scrape := func(step string, want float64) {
				t.Helper()
				if tt.probe != nil {
					tt.probe(c)
				}
				ms := scrapeOnce(t, exp)
				if got := ms.value(t, tt.metric, tt.labels...); got != want {
					t.Errorf("%s: %s = %v, want %v", step, tt.metric, got, want)
				}
				if got := ms.value(t, "odoo_exporter_collector_success", "collector", tt.name); got != 1 {
					t.Errorf("%s: odoo_exporter_collector_success = %v, want 1", step, got)
				}
			}
			scrape("healthy", 1)
			s.Stop()
			for range 3 {
				scrape("odoo down", 0)
			}
			if err := s.Restart(); err != nil {
				t.Fatal(err)
			}
			scrape("odoo back", 1)
			scrape("odoo back", 1)
			out := logs.String()
			if n := strings.Count(out, "probe source is down"); n != 1 {
				t.Errorf("%d 'down' lines for one outage, want 1:\n%s", n, out)
			}
			if n := strings.Count(out, "probe source is back up"); n != 1 {
				t.Errorf("%d 'back up' lines, want 1:\n%s", n, out)
			}
			if strings.Contains(out, "level=ERROR") {
				t.Errorf("an error was logged for Odoo down:\n%s", out)
			}
		})
	}
}
