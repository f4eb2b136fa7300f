package collector

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/e2e/odoosim"
)

// probeSim starts an Odoo stand-in on a fresh database of the shared cluster.
func probeSim(t testing.TB, version string) *odoosim.Server {
	t.Helper()
	db := cluster.OdooDB(t, version)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := odoosim.Start(ctx, odoosim.Config{DSN: cluster.DSN(db, ""), Version: version, FilestoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// probeCollector adapts a Collector to prometheus.Collector for one scrape.
type probeCollector struct {
	c   Collector
	ctx context.Context
	err error
}

func (p *probeCollector) Describe(ch chan<- *prometheus.Desc) { p.c.Describe(ch) }
func (p *probeCollector) Collect(ch chan<- prometheus.Metric) { p.err = p.c.Update(p.ctx, ch) }

// probeGather runs one Update of c through a pedantic registry.
func probeGather(t testing.TB, ctx context.Context, c Collector) (metrics, error) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	pc := &probeCollector{c: c, ctx: ctx}
	if err := reg.Register(pc); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	return mfs, pc.err
}

func probeHistogram(t testing.TB, ms metrics, name string) (count uint64, sum float64) {
	t.Helper()
	found := ms.find(name)
	if len(found) != 1 || found[0].Histogram == nil {
		t.Fatalf("%s: no histogram; scrape has:\n%s", name, ms.names())
	}
	h := found[0].GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum()
}

func TestLongpollFaults(t *testing.T) {
	s := probeSim(t, "17.0")
	newC := func(mode string) *LongpollCollector {
		o := LongpollOptions{GeventURL: s.GeventURL(), WebURL: s.WebURL(), Origin: s.WebURL(), Mode: mode,
			Timeout: 2 * time.Second, Logger: testLogger()}
		if mode == LongpollRoundTrip {
			o.RoundTripDSN = cluster.DSN(s.Database(), "")
		}
		c, err := NewLongpollCollector(o)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	modes := []string{LongpollHealth, LongpollWebsocket, LongpollRoundTrip}
	cs := map[string]*LongpollCollector{}
	for _, m := range modes {
		cs[m] = newC(m)
		t.Cleanup(func() {
			if cs[m].publisher != nil {
				cs[m].publisher.Close()
			}
		})
	}
	ctx := context.Background()
	type want struct {
		up     float64
		reason string // failure counter that must have grown by one
	}
	steps := []struct {
		name  string
		setup func()
		want  map[string]want
	}{
		{"healthy", func() {}, map[string]want{
			LongpollHealth: {up: 1}, LongpollWebsocket: {up: 1}, LongpollRoundTrip: {up: 1}}},
		{"dispatcher dead", func() { s.SetFault(odoosim.FaultDispatcherDead, 0) }, map[string]want{
			LongpollHealth: {up: 1}, LongpollWebsocket: {up: 1}, LongpollRoundTrip: {up: 0, reason: "no_delivery"}}},
		{"stall", func() { s.SetFault(odoosim.FaultStall, 0) }, map[string]want{
			LongpollHealth: {up: 0, reason: "timeout"}, LongpollWebsocket: {up: 0, reason: "timeout"}, LongpollRoundTrip: {up: 0, reason: "timeout"}}},
		{"restarted", func() { s.Stop(); _ = s.Restart() }, map[string]want{
			LongpollHealth: {up: 1}, LongpollWebsocket: {up: 1}, LongpollRoundTrip: {up: 1}}},
		{"down", func() { s.Stop() }, map[string]want{
			LongpollHealth: {up: 0, reason: "connect"}, LongpollWebsocket: {up: 0, reason: "connect"}, LongpollRoundTrip: {up: 0, reason: "connect"}}},
	}
	for _, st := range steps {
		st.setup()
		for _, m := range modes {
			c := cs[m]
			before, _ := probeGather(t, ctx, c)
			countBefore, sumBefore := probeHistogram(t, before, "odoo_longpoll_latency_seconds")
			_ = c.Probe(ctx)
			after, err := probeGather(t, ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			w := st.want[m]
			if got := after.value(t, "odoo_longpoll_up"); got != w.up {
				t.Errorf("%s, mode %s: odoo_longpoll_up = %v, want %v", st.name, m, got, w.up)
			}
			if w.reason != "" {
				b := before.value(t, "odoo_longpoll_probe_failures_total", "reason", w.reason)
				a := after.value(t, "odoo_longpoll_probe_failures_total", "reason", w.reason)
				if a != b+1 {
					t.Errorf("%s, mode %s: failures{reason=%q} went %v -> %v, want +1", st.name, m, w.reason, b, a)
				}
			}
			count, sum := probeHistogram(t, after, "odoo_longpoll_latency_seconds")
			switch {
			case w.up == 1 || w.reason == "timeout" || w.reason == "no_delivery":
				if count != countBefore+1 {
					t.Errorf("%s, mode %s: histogram count %d -> %d, want +1", st.name, m, countBefore, count)
				}
				if w.reason == "timeout" && sum-sumBefore < 2 {
					t.Errorf("%s, mode %s: a stalled probe added %v s to the histogram, want its timeout (2 s)", st.name, m, sum-sumBefore)
				}
			default:
				if count != countBefore {
					t.Errorf("%s, mode %s: a refused probe was observed in the histogram", st.name, m)
				}
			}
		}
	}
}

// TestLongpollRunner: the background prober probes on its own, without
// scrapes, and stops with its context.
func TestLongpollRunner(t *testing.T) {
	s := probeSim(t, "17.0")
	c, err := NewLongpollCollector(LongpollOptions{GeventURL: s.GeventURL(), Origin: s.WebURL(),
		Mode: LongpollWebsocket, Interval: 50 * time.Millisecond, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	eventually(t, 10*time.Second, "three background probes", func() bool {
		ms, _ := probeGather(t, context.Background(), c)
		n, _ := probeHistogram(t, ms, "odoo_longpoll_latency_seconds")
		return n >= 3
	})
	ms, _ := probeGather(t, context.Background(), c)
	if ms.value(t, "odoo_longpoll_up") != 1 {
		t.Error("odoo_longpoll_up != 1")
	}
	cancel()
	<-done
	// A stopped prober has no verdict: its last up must not stick.
	if ms, _ := probeGather(t, context.Background(), c); ms.has("odoo_longpoll_up") {
		t.Error("odoo_longpoll_up still exported after the prober stopped")
	}
}

func TestLongpollOptions(t *testing.T) {
	if c, err := NewLongpollCollector(LongpollOptions{}); c != nil || err != nil {
		t.Errorf("no gevent URL: got %v, %v; want nil, nil", c, err)
	}
	if _, err := NewLongpollCollector(LongpollOptions{GeventURL: "http://x", Mode: LongpollRoundTrip}); err == nil {
		t.Error("round trip without a DSN: no error")
	}
	if _, err := NewLongpollCollector(LongpollOptions{GeventURL: "http://x", Mode: "poll"}); err == nil {
		t.Error("unknown mode: no error")
	}
}

// BenchmarkLongpollProbe measures one probe cycle of each mode against
// the stand-in (real PostgreSQL LISTEN/NOTIFY for the round trip).
func BenchmarkLongpollProbe(b *testing.B) {
	s := probeSim(b, "17.0")
	for _, mode := range []string{LongpollHealth, LongpollWebsocket, LongpollRoundTrip} {
		b.Run(mode, func(b *testing.B) {
			o := LongpollOptions{GeventURL: s.GeventURL(), WebURL: s.WebURL(), Origin: s.WebURL(), Mode: mode, Timeout: 5 * time.Second}
			if mode == LongpollRoundTrip {
				o.RoundTripDSN = cluster.DSN(s.Database(), "")
			}
			c, err := NewLongpollCollector(o)
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				if c.publisher != nil {
					c.publisher.Close()
				}
			}()
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Probe(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
