package heal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// testHealer serves a Healer with config cfg (a YAML text; %[1]s is
// replaced by db) over HTTP.
type testHealer struct {
	*Healer
	srv     *httptest.Server
	metrics *Metrics
	audit   *bytes.Buffer
	auditMu *sync.Mutex
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func newTestHealer(t *testing.T, cfgText string) *testHealer {
	t.Helper()
	return newTestHealerWith(t, cfgText, nil)
}

// newTestHealerWith is newTestHealer whose Options set changes (its Env,
// a state file).
func newTestHealerWith(t *testing.T, cfgText string, set func(*Options)) *testHealer {
	t.Helper()
	cfg, err := ParseConfig([]byte(cfgText))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, cfgText)
	}
	th := &testHealer{audit: &bytes.Buffer{}, auditMu: &sync.Mutex{}}
	audit, err := NewAuditLog("", lockedWriter{th.auditMu, th.audit})
	if err != nil {
		t.Fatal(err)
	}
	th.metrics = NewMetrics(prometheus.NewRegistry())
	opts := Options{Env: testEnv(t), Audit: audit, Metrics: th.metrics, Logger: testLogger()}
	if set != nil {
		set(&opts)
	}
	th.Healer, err = New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	th.srv = httptest.NewServer(th.Healer)
	t.Cleanup(th.srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = th.Shutdown(ctx)
	})
	return th
}

func (th *testHealer) auditRecords(t *testing.T) []AuditRecord {
	t.Helper()
	th.auditMu.Lock()
	defer th.auditMu.Unlock()
	var recs []AuditRecord
	dec := json.NewDecoder(bytes.NewReader(th.audit.Bytes()))
	for dec.More() {
		var r AuditRecord
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

// results lists the results of the audit lines of rule, in order.
func (th *testHealer) results(t *testing.T, rule string) []string {
	t.Helper()
	var out []string
	for _, r := range th.auditRecords(t) {
		if r.Rule == rule {
			out = append(out, r.Result)
		}
	}
	return out
}

func (th *testHealer) actions(action, result string) float64 {
	return counterValue(th.metrics.actions.WithLabelValues(action, result))
}

// post sends payload and returns the status and the decoded body.
func (th *testHealer) post(t *testing.T, payload string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(th.srv.URL, "application/json", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decoding the answer: %v", err)
	}
	return resp.StatusCode, body
}

// alert is one alert of a test payload.
type alert struct {
	status, name, fingerprint, database string
	startsAt                            time.Time
}

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func firing(name, fp, db string) alert { return alert{StatusFiring, name, fp, db, t0} }

func payload(alerts ...alert) string {
	type a struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
		Fingerprint string            `json:"fingerprint"`
	}
	m := map[string]any{
		"version": "4", "groupKey": "{}:{alertname=\"x\"}", "status": "firing", "receiver": "odoo-healer",
		"groupLabels": map[string]string{}, "commonLabels": map[string]string{}, "commonAnnotations": map[string]string{},
		"externalURL": "http://alertmanager:9093", "truncatedAlerts": 0, "notification_reason": "new", // unknown field
	}
	var as []a
	for _, x := range alerts {
		as = append(as, a{
			Status:      x.status,
			Labels:      map[string]string{"alertname": x.name, "heal": "clear_assets", "database": x.database, "severity": "critical"},
			Annotations: map[string]string{"summary": "Odoo assets are broken."},
			StartsAt:    x.startsAt,
			Fingerprint: x.fingerprint,
		})
	}
	m["alerts"] = as
	b, _ := json.Marshal(m)
	return string(b)
}

const assetsRule = `
verify_interval: 50ms
rules:
  - name: assets
    match: {heal: clear_assets}
    action: clear_assets
    targets: [%[1]s]
    cooldown: 1h
`

func assetCount(t *testing.T, db string) int {
	t.Helper()
	var n int
	conn := cluster.Connect(t, db)
	if err := conn.QueryRow(context.Background(), `SELECT count(*) `+assetRows).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHealerActsOnceOnReplays(t *testing.T) {
	t.Parallel()
	db := odooDB(t)
	cluster.Exec(t, db, assetFixture)
	th := newTestHealer(t, fmt.Sprintf(assetsRule, db))
	p := payload(firing("OdooAssetsBroken", "fp1", db))

	// Concurrent deliveries (HA Alertmanager pair) and a later replay.
	var wg sync.WaitGroup
	codes := make(chan int, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := th.post(t, p)
			codes <- code
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("status %d, want 200", c)
		}
	}
	th.Wait()
	code, body := th.post(t, p)
	th.Wait()
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(body), OutcomeDuplicate) {
		t.Errorf("replay: %d %v", code, body)
	}
	if n := assetCount(t, db); n != 0 {
		t.Errorf("%d asset rows left", n)
	}
	if got := th.actions("clear_assets", ResultSuccess); got != 1 {
		t.Errorf("successful actions = %v, want 1", got)
	}
	if got := counterValue(th.metrics.alerts.WithLabelValues(OutcomeDuplicate)); got != 8 {
		t.Errorf("duplicates = %v, want 8", got)
	}
	recs := th.auditRecords(t)
	if len(recs) != 1 || recs[0].Result != ResultSuccess || recs[0].Target != db || recs[0].Fingerprint != "fp1" ||
		recs[0].Alert != "OdooAssetsBroken" || len(recs[0].Steps) == 0 || recs[0].DurationSeconds <= 0 {
		t.Errorf("audit: %+v", recs)
	}

	// A new episode (another startsAt) of the same alert is within the
	// cooldown.
	again := firing("OdooAssetsBroken", "fp1", db)
	again.startsAt = t0.Add(time.Hour)
	cluster.Exec(t, db, assetFixture)
	th.post(t, payload(again))
	th.Wait()
	if got := th.actions("clear_assets", ResultSkippedCooldown); got != 1 {
		t.Errorf("skipped_cooldown = %v, want 1", got)
	}
	if n := assetCount(t, db); n != 3 {
		t.Errorf("cooldown: %d asset rows left, want 3", n)
	}
}

func TestHealerResolvedNeverActs(t *testing.T) {
	t.Parallel()
	db := odooDB(t)
	cluster.Exec(t, db, assetFixture)
	th := newTestHealer(t, fmt.Sprintf(assetsRule, db))
	a := firing("OdooAssetsBroken", "fp1", db)
	a.status = StatusResolved
	code, _ := th.post(t, payload(a))
	th.Wait()
	if code != http.StatusOK {
		t.Errorf("status %d", code)
	}
	if n := assetCount(t, db); n != 3 {
		t.Errorf("resolved alert acted: %d asset rows left", n)
	}
	if recs := th.auditRecords(t); len(recs) != 0 {
		t.Errorf("audit: %+v", recs)
	}
}

func TestHealerDryRun(t *testing.T) {
	for _, cfg := range []string{"dry_run: true\n" + assetsRule, strings.Replace(assetsRule, "cooldown: 1h", "cooldown: 1h\n    dry_run: true", 1)} {
		db := odooDB(t)
		cluster.Exec(t, db, assetFixture)
		th := newTestHealer(t, fmt.Sprintf(cfg, db))
		th.post(t, payload(firing("OdooAssetsBroken", "fp1", db)))
		th.Wait()
		if n := assetCount(t, db); n != 3 {
			t.Errorf("dry run deleted: %d asset rows left", n)
		}
		recs := th.auditRecords(t)
		if len(recs) != 1 || recs[0].Result != ResultDryRun || !recs[0].DryRun || !strings.Contains(strings.Join(recs[0].Steps, ";"), "would delete 3") {
			t.Errorf("audit: %+v", recs)
		}
	}
}

func TestHealerSafetyChecks(t *testing.T) {
	t.Parallel()
	db, db2, db3 := odooDB(t), odooDB(t), odooDB(t)
	for _, d := range []string{db, db2, db3} {
		cluster.Exec(t, d, assetFixture)
	}
	other := odooDB(t)
	cluster.Exec(t, other, assetFixture)
	th := newTestHealer(t, fmt.Sprintf(`
verify_interval: 50ms
rules:
  - name: assets
    match: {alertname: OdooAssetsBroken}
    action: clear_assets
    targets: [%s, %s, %s]
    max_actions_per_hour: 2
`, db, db2, db3))

	// Not allow-listed.
	code, _ := th.post(t, payload(firing("OdooAssetsBroken", "fpx", other)))
	th.Wait()
	if code != http.StatusOK || th.actions("clear_assets", ResultRejectedTarget) != 1 || assetCount(t, other) != 3 {
		t.Errorf("target outside the allow-list: code %d, rejected %v, rows %d", code, th.actions("clear_assets", ResultRejectedTarget), assetCount(t, other))
	}
	// Unknown alert only: handled (200: Alertmanager does not re-send
	// it), audited.
	code, body := th.post(t, payload(firing("SomethingElse", "fpy", db)))
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(body), "no rule matches") || th.actions("", ResultNoRule) != 1 {
		t.Errorf("unknown alert: %d %v", code, body)
	}
	// Rate limit: the third target in the hour is skipped.
	th.post(t, payload(firing("OdooAssetsBroken", "fp1", db), firing("OdooAssetsBroken", "fp2", db2)))
	th.Wait()
	th.post(t, payload(firing("OdooAssetsBroken", "fp3", db3)))
	th.Wait()
	if got := th.actions("clear_assets", ResultSkippedRateLimit); got != 1 || assetCount(t, db3) != 3 || assetCount(t, db) != 0 || assetCount(t, db2) != 0 {
		t.Errorf("rate limit: skipped %v, rows %d %d %d", got, assetCount(t, db), assetCount(t, db2), assetCount(t, db3))
	}
}

// TestHealerBusy: two alerts for the same target in one notification:
// the second is skipped while the first runs.
func TestHealerBusy(t *testing.T) {
	t.Parallel()
	db := odooDB(t)
	s := newLockScene(t, db, odooRole)
	th := newTestHealer(t, fmt.Sprintf(`
verify_interval: 50ms
rules:
  - name: blockers
    match: {alertname: OdooDbLockContention}
    action: end_blockers
    targets: [%s]
    params: {min_wait: 1s}
  - name: assets
    match: {alertname: OdooAssetsBroken}
    action: clear_assets
    targets: [%s]
`, db, db))
	code, body := th.post(t, payload(firing("OdooDbLockContention", "fp1", db), firing("OdooAssetsBroken", "fp2", db)))
	th.Wait()
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(body), ResultSkippedBusy) {
		t.Errorf("%d %v", code, body)
	}
	if th.actions("end_blockers", ResultSuccess) != 1 || th.actions("clear_assets", ResultSkippedBusy) != 1 {
		t.Errorf("audit: %+v", th.auditRecords(t))
	}
	if s.blocker.alive() {
		t.Error("blocker survived")
	}
}

func TestHealerBadRequests(t *testing.T) {
	t.Parallel()
	th := newTestHealer(t, fmt.Sprintf(assetsRule, "db"))
	th.opts.MaxBodyBytes = 4096
	for _, tc := range []struct {
		name, method, ctype, body string
		code                      int
		reason                    string
	}{
		{"GET", http.MethodGet, "", "", 405, "POST"},
		{"not JSON content", http.MethodPost, "text/plain", "x", 415, "content type"},
		{"syntax", http.MethodPost, "application/json", `{"version":`, 400, "invalid JSON"},
		{"wrong type", http.MethodPost, "application/json", `{"version":4}`, 400, "version"},
		{"version 3", http.MethodPost, "application/json", `{"version":"3","alerts":[]}`, 400, "unsupported payload version"},
		{"no alerts", http.MethodPost, "application/json", `{"version":"4","alerts":[]}`, 400, "no alerts"},
		{"bad status", http.MethodPost, "application/json", `{"version":"4","alerts":[{"status":"pending","labels":{"alertname":"a"},"fingerprint":"f","startsAt":"2025-01-01T00:00:00Z"}]}`, 400, "status"},
		{"no fingerprint", http.MethodPost, "application/json", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"a"},"startsAt":"2025-01-01T00:00:00Z"}]}`, 400, "fingerprint"},
		{"no startsAt", http.MethodPost, "application/json", `{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"a"},"fingerprint":"f"}]}`, 400, "startsAt"},
		{"no alertname", http.MethodPost, "application/json", `{"version":"4","alerts":[{"status":"firing","labels":{},"fingerprint":"f","startsAt":"2025-01-01T00:00:00Z"}]}`, 400, "alertname"},
		{"too large", http.MethodPost, "application/json", `{"version":"4","x":"` + strings.Repeat("a", 5000) + `"}`, 413, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, th.srv.URL, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b errorBody
			_ = json.NewDecoder(resp.Body).Decode(&b)
			if resp.StatusCode != tc.code || !strings.Contains(b.Error, tc.reason) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, b.Error, tc.code, tc.reason)
			}
		})
	}
	if n := counterValue(th.metrics.webhooks.WithLabelValues("400")); n != 8 {
		t.Errorf("odoo_healer_webhooks_total{code=\"400\"} = %v, want 8", n)
	}
}

func TestHealerShutdownWaits(t *testing.T) {
	t.Parallel()
	db := odooDB(t)
	s := newLockScene(t, db, odooRole)
	th := newTestHealer(t, fmt.Sprintf(`
rules:
  - name: blockers
    match: {alertname: OdooDbLockContention}
    action: end_blockers
    targets: [%s]
    params: {min_wait: 1s}
`, db))
	th.post(t, payload(firing("OdooDbLockContention", "fp1", db)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := th.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// Shutdown returned: the action has ended, with its audit line.
	if recs := th.auditRecords(t); len(recs) != 1 || recs[0].Result != ResultSuccess {
		t.Errorf("audit after shutdown: %+v", recs)
	}
	if s.blocker.alive() {
		t.Error("blocker survived")
	}
	code, _ := th.post(t, payload(firing("OdooDbLockContention", "fp2", db)))
	if code != http.StatusServiceUnavailable {
		t.Errorf("after shutdown: %d, want 503", code)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// TestHealerFollowUp: a rule's follow_up runs after it succeeded, on the
// follow-up rule's fixed target; the follow_up of a dry-run rule is a dry
// run too, even when the follow-up rule itself is not dry.
func TestHealerFollowUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		dry  bool
	}{{"acting", false}, {"dry run", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db, db2 := odooDB(t), odooDB(t)
			cluster.Exec(t, db, assetFixture)
			cluster.Exec(t, db2, assetFixture)
			want, want2, result := 0, 0, ResultSuccess
			if tc.dry {
				want, want2, result = assetCount(t, db), assetCount(t, db2), ResultDryRun
			}
			th := newTestHealer(t, fmt.Sprintf(`
verify_interval: 50ms
rules:
  - name: assets
    match: {heal: clear_assets}
    action: clear_assets
    dry_run: %t
    targets: [%s]
    follow_up: then
  - name: then
    action: clear_assets
    target: %s
`, tc.dry, db, db2))
			th.post(t, payload(firing("OdooAssetsBroken", "fp1", db)))
			th.Wait()
			if assetCount(t, db) != want || assetCount(t, db2) != want2 || th.actions("clear_assets", result) != 2 {
				t.Errorf("rows %d %d (want %d %d), audit %+v", assetCount(t, db), assetCount(t, db2), want, want2, th.auditRecords(t))
			}
		})
	}
}
