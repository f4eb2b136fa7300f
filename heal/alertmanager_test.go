package heal

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/odoo-exporter/odoo_exporter/internal/promtest"
)

// TestNoRuleNoResendStorm: a real Alertmanager sends the healer an alert
// whose heal label no rule matches. The healer answers 200 and audits it,
// so Alertmanager logs the notification as sent and does not send it
// again at every group_interval (a 4xx answer made it re-send the
// notification at each flush: 27 times in 35 minutes in production).
func TestNoRuleNoResendStorm(t *testing.T) {
	t.Parallel()
	th := newTestHealer(t, `
rules:
  - name: assets
    match: {heal: clear_assets}
    action: clear_assets
    targets: [odoo]
`)
	am, err := promtest.StartAlertmanager(promtest.AlertmanagerConfig{
		Dir:       t.TempDir(),
		GroupWait: 100 * time.Millisecond, GroupInterval: time.Second, RepeatInterval: time.Hour,
		GroupBy:  []string{"alertname"},
		Webhooks: []promtest.Webhook{{Name: "healer", URL: th.srv.URL, Matchers: []string{`heal=~".+"`}}},
	})
	if err != nil {
		t.Skipf("no Alertmanager: %v", err) // promtest names the missing package
	}
	t.Cleanup(am.Stop)
	body, _ := json.Marshal([]map[string]any{{
		"labels":   map[string]string{"alertname": "OdooSomethingNew", "heal": "no_such_action", "database": "odoo"},
		"startsAt": time.Now().Add(-time.Minute),
	}})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, am.URL()+"/api/v2/alerts", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("posting the alert: %s", resp.Status)
	}
	// Every answer counts, whatever its code.
	delivered := func() float64 {
		n := 0.0
		for _, code := range []string{"200", "400", "422", "500", "503"} {
			n += counterValue(th.metrics.webhooks.WithLabelValues(code))
		}
		return n
	}
	eventually(t, 30*time.Second, "the notification", func() bool { return delivered() >= 1 })
	// Five group intervals: a notification Alertmanager did not log as
	// sent would come back at each of them.
	time.Sleep(5 * time.Second)
	if n := delivered(); n != 1 || counterValue(th.metrics.webhooks.WithLabelValues("200")) != 1 {
		t.Errorf("the healer got the notification %v times, want 1", n)
	}
	recs := th.auditRecords(t)
	if len(recs) != 1 || recs[0].Result != ResultNoRule || recs[0].Alert != "OdooSomethingNew" {
		t.Errorf("audit: %+v", recs)
	}
	if th.actions("", ResultNoRule) != 1 {
		t.Error("not counted")
	}
}
