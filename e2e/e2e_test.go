package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/odoo-exporter/odoo_exporter/dashboards"
	"github.com/odoo-exporter/odoo_exporter/internal/dockertest"
	"github.com/odoo-exporter/odoo_exporter/internal/promtest"
)

// forDivisor and forMax shorten every alert's "for" and "keep_firing_for"
// (rules.Scale: divided by 8, at most 30 s): the shipped 2–30 minutes
// would make the suite last an hour. Their order is kept, so that a cause
// (OdooDown, 2m → 15s) fires before its symptoms (OdooLongpollDown, 3m →
// 22s) and Alertmanager inhibits them. The thresholds and range windows of
// the expressions are the shipped ones.
const (
	forDivisor = 8
	forMax     = 30 * time.Second
)

// seedQuery is the runbook's own p95 query, which must return a value.
const seedQuery = `histogram_quantile(0.95,sum(rate(odoo_longpoll_latency_seconds_bucket[5m]))by(le))`

// seedCronQuery is the cron runbook's query: the lateness of the runs of
// the last 10 minutes, which the jammed job's late run makes positive.
const seedCronQuery = `increase(odoo_cron_job_age_seconds_sum[10m])`

// TestChain runs the whole chain: each incident is injected into real
// parts and followed through Prometheus' and Alertmanager's HTTP APIs and
// the healer's audit log until the alert fires, the healer acts and the
// alert resolves. Scenarios that do not disturb each other run in
// parallel; the HTTP ones (proxy broken, Odoo down) run alone after them.
func TestChain(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: skipped with -short")
	}
	t.Parallel() // beside TestHealthySoak: each runs a stack of its own
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	started := time.Now()
	rec := newRecorder()
	defer rec.srv.Close()
	// E2E_ODOO_VERSION selects the Odoo series imitated (16.0, 17.0, 18.0).
	s := startStack(t, ctx, Options{ForMax: forMax, ForDivisor: forDivisor, Logf: t.Logf, Version: os.Getenv("E2E_ODOO_VERSION"),
		Webhooks: []promtest.Webhook{{Name: "recorder", URL: rec.srv.URL}}})
	t.Logf("stack: exporter %s, healer %s, prometheus %s, alertmanager %s, odoo %s, proxy %s",
		s.Exporter, s.Healer, s.Prom.URL(), s.AM.URL(), s.WebURL, s.Proxy.URL())

	panels := watchPanels(ctx, s)
	defer panels.stop()

	t.Run("incidents", func(t *testing.T) {
		t.Run("lock-contention", func(t *testing.T) {
			t.Parallel()
			must(t, s.LockContention(ctx))
			healed(t, ctx, s, rec, "OdooDbLockContention", map[string]string{"database": Database}, "end_blockers", Database, 3*time.Minute)
		})
		t.Run("cron-jam", func(t *testing.T) {
			t.Parallel()
			_, err := s.CronJam(ctx)
			must(t, err)
			healed(t, ctx, s, rec, "OdooCronStuck", map[string]string{"database": Database}, "unlock_cron", Database, 4*time.Minute)
		})
		t.Run("longpoll-stall", func(t *testing.T) {
			// The stall starts with the stack, before the parallel
			// scenarios wait their turn: OdooLongpollLatencyHigh judges the
			// share of slow probes over 5 minutes, which minutes of healthy
			// probes would dilute.
			since := time.Now()
			must(t, s.LongpollStall(ctx, 3*time.Second))
			t.Parallel()
			healedSince(t, ctx, s, rec, "OdooLongpollLatencyHigh", map[string]string{"job": "odoo"}, "restart_container", SimContainer, 4*time.Minute, since)
		})
		t.Run("assets-broken", func(t *testing.T) {
			t.Parallel()
			must(t, s.BreakAssets(ctx))
			healed(t, ctx, s, rec, "OdooAssetsBroken", map[string]string{"job": "odoo"}, "clear_assets", Database, 3*time.Minute)
		})
		t.Run("module-stuck", func(t *testing.T) {
			t.Parallel()
			must(t, s.ModuleStuck(ctx))
			healed(t, ctx, s, rec, "OdooModulesStuckInTransition", map[string]string{"database": Database}, "reset_module_states", Database, 3*time.Minute)
		})
		t.Run("log-cron-failure", func(t *testing.T) {
			t.Parallel()
			logCronFailure(t, ctx, s, rec)
		})
		t.Run("oom", func(t *testing.T) {
			t.Parallel()
			// Let a scrape see the worker healthy first (a dashboard panel).
			waitFor(t, ctx, time.Minute, "worker container seen healthy", func() (bool, string) {
				v, err := s.Prom.Query(ctx, `odoo_container_healthy{name="`+WorkerName+`"} == 1`)
				return err == nil && len(v) == 1, fmt.Sprint(v, err)
			})
			must(t, s.OOM(ctx))
			firing(t, ctx, s, rec, "OdooContainerOOMKilled", map[string]string{"name": WorkerName}, 2*time.Minute, "")
		})
	})

	// The seed query while the bus has been probed for minutes.
	v, err := s.Prom.Query(ctx, seedQuery)
	if err != nil || len(v) != 1 {
		t.Errorf("seed query %s: %v, %v; want one value", seedQuery, v, err)
	} else {
		t.Logf("seed query: p95 = %gs", v[0].Value)
	}
	v, err = s.Prom.Query(ctx, seedCronQuery)
	if err != nil || len(v) != 1 || !(v[0].Value > 0) {
		t.Errorf("seed query %s: %v, %v; want one positive value", seedCronQuery, v, err)
	} else {
		t.Logf("seed cron query: %gs of lateness in 10 minutes", v[0].Value)
	}

	t.Run("proxy-down", func(t *testing.T) {
		must(t, s.Proxy.Break())
		firing(t, ctx, s, rec, "OdooProxyDown", nil, 2*time.Minute, "OdooDown")
		must(t, s.Proxy.SetUpstream(hostPort(s.WebURL)))
		resolved(t, ctx, s, rec, "OdooProxyDown", nil, 2*time.Minute)
	})
	t.Run("odoo-down", func(t *testing.T) {
		// The previous phase's OdooProxyDown must be out of the window in
		// which this phase checks that it does not fire.
		waitFor(t, ctx, time.Minute, "OdooProxyDown quiet", func() (bool, string) {
			fired, err := firedSince(ctx, s, "OdooProxyDown", nil, time.Now().Add(-5*time.Second))
			return err == nil && !fired, fmt.Sprint(err)
		})
		down := time.Now()
		must(t, s.StopOdoo(ctx))
		firing(t, ctx, s, rec, "OdooDown", nil, 2*time.Minute, "OdooProxyDown")
		pagesOnce(t, ctx, s, rec, "OdooDown", down)
		must(t, s.StartOdoo(ctx))
		resolved(t, ctx, s, rec, "OdooDown", nil, 2*time.Minute)
	})

	t.Run("log-boot-loop", func(t *testing.T) { logBootLoop(t, ctx, s, rec) })

	panels.stop()
	for _, e := range panels.empty() {
		// odoo_cron_failing_jobs exists from Odoo 18 only, and the
		// panels say so.
		if v := os.Getenv("E2E_ODOO_VERSION"); v != "" && v < "18" && strings.Contains(e, "(Odoo 18+)") {
			t.Logf("expected before Odoo 18: %s", e)
			continue
		}
		// The stack's Odoo stand-in (odoosim) is one process, not a
		// prefork server, and the stack runs no odoo_process collector:
		// the processes dashboard is proved on real processes by the
		// collector's tests (TestOdooProcessHost, TestOdooProcessContainer).
		if strings.Contains(e, "dashboard odoo-processes.json:") {
			t.Logf("no prefork Odoo in the e2e stack: %s", e)
			continue
		}
		t.Error(e)
	}
	t.Logf("dashboards: %d queries, %d returned data", len(panels.queries), panels.withData())
	t.Logf("end to end in %v", time.Since(started).Round(time.Second))
}

// startStack starts the stack for a test, closed (after a dump on
// failure) when the test ends. A missing part fails the test in CI and
// skips it elsewhere.
func startStack(t *testing.T, ctx context.Context, opts Options) *Stack {
	t.Helper()
	s, err := Start(ctx, opts)
	if err != nil {
		var pe *PartError
		if errors.As(err, &pe) {
			if dockertest.InCI() {
				t.Fatalf("a part of the end-to-end stack is required in CI: %v", err)
			}
			t.Skipf("skipping: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dump(t, s)
		}
		s.Close()
	})
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every 500ms until it holds or timeout passes.
func waitFor(t *testing.T, ctx context.Context, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: not after %v; last state: %s", what, timeout, state)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// notification is one alert of a notification Alertmanager sent to the
// test's recording receiver.
type notification struct {
	Status string // firing | resolved
	Labels map[string]string
	At     time.Time // received
}

// recorder is a webhook receiver of Alertmanager that remembers every
// alert notified: the proof that Alertmanager routed an alert, even one the
// healer resolved before a poll of its API could see it.
type recorder struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []notification
}

func newRecorder() *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var msg struct {
			Alerts []struct {
				Status string            `json:"status"`
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		if err := json.NewDecoder(req.Body).Decode(&msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, a := range msg.Alerts {
			r.got = append(r.got, notification{a.Status, a.Labels, time.Now()})
		}
		r.mu.Unlock()
	}))
	return r
}

// has reports whether an alert named alert, with labels match, was
// notified with status since t.
func (r *recorder) has(status, alert string, match map[string]string, since time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.got {
		if n.Status == status && n.Labels["alertname"] == alert && includes(n.Labels, match) && !n.At.Before(since) {
			return true
		}
	}
	return false
}

// selector is the PromQL selector of the firing series of ALERTS for
// alert with labels match.
func selector(alert string, match map[string]string) string {
	parts := []string{fmt.Sprintf("alertname=%q", alert), `alertstate="firing"`}
	keys := make([]string, 0, len(match))
	for k := range match {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%q", k, match[k]))
	}
	return "ALERTS{" + strings.Join(parts, ",") + "}"
}

// firedSince asks Prometheus whether alert fired at some evaluation since
// t (its ALERTS series), so that an alert healed within seconds is seen.
func firedSince(ctx context.Context, s *Stack, alert string, match map[string]string, t time.Time) (bool, error) {
	secs := max(int(time.Since(t).Seconds()), 1)
	v, err := s.Prom.Query(ctx, fmt.Sprintf("max_over_time(%s[%ds])", selector(alert, match), secs))
	return len(v) > 0, err
}

// firing waits until Prometheus has fired alert (with labels match) since
// the scenario started and Alertmanager has notified it; exclusive, when
// set, is an alert that must not have fired in the meantime.
func firing(t *testing.T, ctx context.Context, s *Stack, rec *recorder, alert string, match map[string]string, timeout time.Duration, exclusive string) {
	t.Helper()
	firingSince(t, ctx, s, rec, alert, match, timeout, exclusive, time.Now())
}

// firingSince is firing for a scenario that started at start.
func firingSince(t *testing.T, ctx context.Context, s *Stack, rec *recorder, alert string, match map[string]string, timeout time.Duration, exclusive string, start time.Time) {
	t.Helper()
	waitFor(t, ctx, timeout, alert+" fired in Prometheus", func() (bool, string) {
		ok, err := firedSince(ctx, s, alert, match, start)
		return ok, fmt.Sprint(err)
	})
	waitFor(t, ctx, 30*time.Second, alert+" notified by Alertmanager", func() (bool, string) {
		return rec.has("firing", alert, match, start), ""
	})
	if exclusive != "" {
		if other, err := firedSince(ctx, s, exclusive, nil, start); err != nil || other {
			t.Fatalf("%s fired while %s was expected alone (err %v)", exclusive, alert, err)
		}
	}
	t.Logf("%s fired and notified after %v", alert, time.Since(start).Round(time.Second))
}

// resolved waits until Prometheus no longer has alert pending or firing
// and Alertmanager has notified it resolved.
func resolved(t *testing.T, ctx context.Context, s *Stack, rec *recorder, alert string, match map[string]string, timeout time.Duration) {
	t.Helper()
	resolvedSince(t, ctx, s, rec, alert, match, timeout, time.Now())
}

// resolvedSince is resolved for a resolution notified since start.
func resolvedSince(t *testing.T, ctx context.Context, s *Stack, rec *recorder, alert string, match map[string]string, timeout time.Duration, start time.Time) {
	t.Helper()
	waitFor(t, ctx, timeout, alert+" resolved", func() (bool, string) {
		all, err := s.Prom.Alerts(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, a := range all {
			if a.Labels["alertname"] == alert && includes(a.Labels, match) {
				return false, fmt.Sprintf("%s %v value %s", a.State, a.Labels, a.Value)
			}
		}
		if !rec.has("resolved", alert, match, start) {
			return false, "inactive in Prometheus, resolution not notified by Alertmanager yet"
		}
		return true, ""
	})
	t.Logf("%s resolved after %v", alert, time.Since(start).Round(time.Second))
}

func includes(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// healed follows one incident: alert fired (Prometheus) and notified
// (Alertmanager), the healer's audit line for action on target with
// result success, then the alert resolved. match are labels the alert
// must carry.
func healed(t *testing.T, ctx context.Context, s *Stack, rec *recorder, alert string, match map[string]string, action, target string, timeout time.Duration) {
	t.Helper()
	healedSince(t, ctx, s, rec, alert, match, action, target, timeout, time.Now())
}

// healedSince is healed for an incident injected at since.
func healedSince(t *testing.T, ctx context.Context, s *Stack, rec *recorder, alert string, match map[string]string, action, target string, timeout time.Duration, since time.Time) {
	t.Helper()
	deadline := since.Add(timeout)
	firingSince(t, ctx, s, rec, alert, match, time.Until(deadline), "", since)
	start := time.Now()
	waitFor(t, ctx, time.Until(deadline), fmt.Sprintf("audit line %s %s on %s: success", alert, action, target), func() (bool, string) {
		lines, err := s.Audit()
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, l := range lines {
			if l.Alert != alert {
				continue
			}
			if l.Action == action && l.Target == target && l.Result == "success" && !l.DryRun {
				t.Logf("healer: %s %s on %s: %s %v", alert, action, target, l.Result, l.Steps)
				return true, ""
			}
			seen = append(seen, l.Result+" "+l.Error)
		}
		return false, fmt.Sprintf("audit lines of %s: %v", alert, seen)
	})
	t.Logf("%s healed (%s) after %v", alert, action, time.Since(start).Round(time.Second))
	resolvedSince(t, ctx, s, rec, alert, match, time.Until(deadline), since)
}

// panelWatch runs every dashboard query against Prometheus every few
// seconds while the scenarios run and remembers which panels showed data.
type panelWatch struct {
	queries []dashboards.Query
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	seen    map[int]bool // query index → returned data once
	err     error
}

func watchPanels(ctx context.Context, s *Stack) *panelWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &panelWatch{cancel: cancel, done: make(chan struct{}), seen: map[int]bool{}}
	w.queries, w.err = dashboards.Queries()
	go func() {
		defer close(w.done)
		vars := dashboards.AllVars()
		for {
			for i, q := range w.queries {
				w.mu.Lock()
				done := w.seen[i]
				w.mu.Unlock()
				if done {
					continue
				}
				v, err := s.Prom.Query(ctx, dashboards.Expand(q.Expr, vars))
				if ctx.Err() != nil {
					return
				}
				w.mu.Lock()
				if err != nil && w.err == nil {
					w.err = fmt.Errorf("%s panel %q: %w", q.Dashboard, q.Panel, err)
				}
				if len(v) > 0 {
					w.seen[i] = true
				}
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(3 * time.Second):
			}
		}
	}()
	return w
}

func (w *panelWatch) stop() {
	w.once.Do(func() { w.cancel(); <-w.done })
}

// withData counts the queries that returned data at least once.
func (w *panelWatch) withData() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen)
}

// empty lists the panels none of whose queries ever returned data, with
// the dashboard and title, and query errors.
func (w *panelWatch) empty() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	if w.err != nil {
		out = append(out, w.err.Error())
	}
	if len(w.queries) == 0 {
		return append(out, "no dashboard queries found")
	}
	type key struct{ dash, panel string }
	hasData := map[key]bool{}
	var order []key
	for i, q := range w.queries {
		k := key{q.Dashboard, q.Panel}
		if _, ok := hasData[k]; !ok {
			order = append(order, k)
		}
		hasData[k] = hasData[k] || w.seen[i]
	}
	for _, k := range order {
		if !hasData[k] {
			var exprs []string
			for _, q := range w.queries {
				if q.Dashboard == k.dash && q.Panel == k.panel {
					exprs = append(exprs, q.Expr)
				}
			}
			out = append(out, fmt.Sprintf("dashboard %s: panel %q stayed empty: %s", k.dash, k.panel, strings.Join(exprs, " | ")))
		}
	}
	return out
}

// dump logs what helps to understand a failure.
func dump(t *testing.T, s *Stack) {
	for _, c := range []string{SimContainer, ExporterName, HealerName} {
		t.Logf("--- container %s:\n%s", c, s.Logs(c))
	}
	if b, err := os.ReadFile(s.AuditFile); err == nil {
		t.Logf("--- audit log:\n%s", b)
	}
	if s.Prom != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if a, err := s.Prom.Alerts(ctx); err == nil {
			var names []string
			for _, x := range a {
				names = append(names, x.Labels["alertname"]+"/"+x.State)
			}
			sort.Strings(names)
			t.Logf("--- prometheus alerts: %v", names)
		}
	}
}
