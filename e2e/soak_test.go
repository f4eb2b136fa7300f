package e2e

import (
	"context"
	"fmt"
	"net/url"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The healthy soak: how long the whole stack runs healthy under load,
// the bus blip, and the quiet time after it in which an alert the blip
// caused would fire.
const (
	soakHealthy = 120 * time.Second
	soakBlip    = 20 * time.Second
	soakAfter   = 75 * time.Second
	// soakForMax cuts every "for" to 15 s, as the run on a real Odoo that
	// found the false pages did; the exporter probes the bus at its
	// shipped interval and Prometheus scrapes every 5 s.
	soakForMax = 15 * time.Second
	soakScrape = 5 * time.Second
	// soakLoadCPU busy loops run beside the stack; in make test the
	// soak also runs beside TestChain (both parallel, each with its own
	// dockerd, PostgreSQL, Prometheus and Alertmanager), whose builds,
	// containers and incidents load the other core.
	soakLoadCPU = 1
)

// TestHealthySoak runs the whole stack healthy for minutes under CPU load
// (a busy loop, and TestChain beside it in make test) with the shortened
// "for" and the exporter's shipped bus probe interval, then stalls the
// bus for 20 s: no alert may fire, which Prometheus' ALERTS series tells
// over the whole run.
func TestHealthySoak(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped with -short")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s := startStack(t, ctx, Options{ForMax: soakForMax, ScrapeInterval: soakScrape,
		LongpollInterval: ShippedInterval, Logf: t.Logf})

	// Every part answers before the soak is judged.
	waitFor(t, ctx, 2*time.Minute, "the stack seen healthy by Prometheus", func() (bool, string) {
		var bad []string
		for _, q := range []string{`up{job="odoo"} == 1`, `odoo_pg_up == 1`, `odoo_http_up{target="direct"} == 1`,
			`odoo_http_up{target="public"} == 1`, `odoo_longpoll_up == 1`, `odoo_container_running{name="` + SimContainer + `"} == 1`} {
			if v, err := s.Prom.Query(ctx, q); err != nil || len(v) == 0 {
				bad = append(bad, q)
			}
		}
		return len(bad) == 0, fmt.Sprint("not yet: ", bad)
	})
	start := time.Now()
	t.Logf("healthy; soaking %v under %d busy loops, then a %v bus stall", soakHealthy, soakLoadCPU, soakBlip)

	load, stopLoad := context.WithTimeout(ctx, soakHealthy+soakBlip+soakAfter)
	defer stopLoad()
	var wg sync.WaitGroup
	for range soakLoadCPU {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for load.Err() == nil {
				for i := 0; i < 1_000_000; i++ {
				}
			}
		}()
	}
	defer wg.Wait()

	quiet(t, ctx, s, start, soakHealthy)
	must(t, s.fault(ctx, url.Values{"fault": {"stall"}}))
	t.Logf("bus stalled")
	time.Sleep(soakBlip)
	must(t, s.fault(ctx, url.Values{"fault": {"clear"}}))
	t.Logf("bus back")
	quiet(t, ctx, s, start, soakAfter)

	// The blip was seen: the probes failed (else the test proved nothing).
	v, err := s.Prom.Query(ctx, fmt.Sprintf(`min_over_time(odoo_longpoll_up[%ds]) == 0`, int(time.Since(start).Seconds())))
	if err != nil || len(v) == 0 {
		t.Errorf("no failed bus probe during the stall (%v, %v): the blip did not happen", v, err)
	}
}

// quiet waits d, checking every 15 s that no alert has fired since start
// (Prometheus' ALERTS series, so that an alert that fired and resolved in
// between is seen); pending alerts are logged.
func quiet(t *testing.T, ctx context.Context, s *Stack, start time.Time, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	pending := map[string]bool{}
	for {
		secs := max(int(time.Since(start).Seconds()), 1)
		v, err := s.Prom.Query(ctx, fmt.Sprintf(`max_over_time(ALERTS{alertstate="firing"}[%ds])`, secs))
		if err != nil {
			t.Fatal(err)
		}
		if len(v) > 0 {
			var names []string
			for _, a := range v {
				names = append(names, fmt.Sprintf("%s%v", a.Metric["alertname"], a.Metric))
			}
			sort.Strings(names)
			t.Fatalf("alerts fired on a healthy stack: %s", strings.Join(names, "; "))
		}
		if p, err := s.Prom.Query(ctx, `ALERTS{alertstate="pending"}`); err == nil {
			for _, a := range p {
				if !pending[a.Metric["alertname"]] {
					pending[a.Metric["alertname"]] = true
					t.Logf("pending (not firing): %v", a.Metric)
				}
			}
		}
		if time.Now().After(end) || ctx.Err() != nil {
			return
		}
		time.Sleep(min(15*time.Second, time.Until(end)+time.Second))
	}
}
