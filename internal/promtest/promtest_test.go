package promtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// require skips (or fails in CI) when a binary is missing.
func require(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if v := strings.ToLower(os.Getenv("CI")); v == "true" || v == "1" {
		t.Fatalf("promtest: required in CI: %v", err)
	}
	t.Skipf("promtest: skipping: %v", err)
}

// TestChain checks the harness: Prometheus scrapes itself, evaluates a
// rule that fires at once, sends the alert to Alertmanager, which delivers
// it to an authenticated webhook; the APIs show it on the way. A second
// alert is inhibited by the first (InhibitRules): listed as inhibited,
// never delivered.
func TestChain(t *testing.T) {
	_, err := PrometheusBinary()
	require(t, err)
	_, err = AlertmanagerBinary()
	require(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()

	var mu sync.Mutex
	var got []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer secret-token-0123456789" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		var msg struct {
			Status string `json:"status"`
			Alerts []struct {
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &msg); err == nil && len(msg.Alerts) > 0 {
			mu.Lock()
			got = append(got, msg.Status+":"+msg.Alerts[0].Labels["alertname"])
			mu.Unlock()
		}
	}))
	defer hook.Close()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("secret-token-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	amDir := filepath.Join(dir, "am")
	promDir := filepath.Join(dir, "prom")
	os.Mkdir(amDir, 0o755)
	os.Mkdir(promDir, 0o755)
	am, err := StartAlertmanager(AlertmanagerConfig{Dir: amDir, Webhooks: []Webhook{
		{Name: "hook", URL: hook.URL, BearerTokenFile: token, Matchers: []string{`heal=~".+"`}},
	}, InhibitRules: []any{map[string]any{
		"source_matchers": []string{`alertname="Always"`},
		"target_matchers": []string{`alertname="Symptom"`},
		"equal":           []string{"job"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	defer am.Stop()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	self := "127.0.0.1:" + itoa(port)
	prom, err := StartPrometheus(PrometheusConfig{
		Dir: promDir, Port: port, Alertmanagers: []string{am.Addr()},
		Scrape: []Target{{Job: "self", Targets: []string{self}}},
		Rules: map[string][]byte{"r.yml": []byte(`groups:
- name: t
  rules:
  - alert: Always
    expr: up{job="self"} == 1
    labels: {heal: test}
  - alert: Symptom
    expr: up{job="self"} == 1
    labels: {heal: test}
`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Stop()

	deadline := time.Now().Add(40 * time.Second)
	for {
		mu.Lock()
		delivered := len(got) > 0 && got[0] == "firing:Always"
		mu.Unlock()
		fired, _ := prom.Firing(ctx, "Always", map[string]string{"job": "self"})
		inAM, _ := am.Alerts(ctx, "Always")
		up, _ := prom.Query(ctx, `up{job="self"}`)
		inhibited, _ := am.Inhibited(ctx, "Symptom")
		if delivered && len(fired) == 1 && len(inAM) == 1 && len(up) == 1 && up[0].Value == 1 &&
			len(inhibited) == 1 && len(inhibited[0].Status.InhibitedBy) == 1 {
			active, err := am.Alerts(ctx, "Symptom")
			if err != nil || len(active) != 0 {
				t.Fatalf("inhibited alert listed active: %v %v", active, err)
			}
			time.Sleep(2 * time.Second) // a group_wait and an interval more
			mu.Lock()
			defer mu.Unlock()
			for _, g := range got {
				if strings.HasSuffix(g, ":Symptom") {
					t.Fatalf("inhibited alert delivered: %v", got)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("chain incomplete: webhook %v, prometheus firing %d, alertmanager %d, up %v", got, len(fired), len(inAM), up)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
