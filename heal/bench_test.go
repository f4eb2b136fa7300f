package heal

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func BenchmarkDecodeWebhook(b *testing.B) {
	b.SetBytes(int64(len(amPayload)))
	for b.Loop() {
		if _, err := DecodeWebhook(strings.NewReader(amPayload), 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeHTTPDuplicate is the cost of answering a re-sent
// notification (decode, match, dedupe, answer): what a storm of
// Alertmanager retries costs the healer.
func BenchmarkServeHTTPDuplicate(b *testing.B) {
	cfg, err := ParseConfig([]byte("dry_run: true\nrules:\n  - name: a\n    match: {heal: end_blockers}\n    action: end_blockers\n    targets: [odoo]\n"))
	if err != nil {
		b.Fatal(err)
	}
	h := must(New(cfg, Options{Metrics: NewMetrics(prometheus.NewRegistry()), Audit: must(NewAuditLog("", io.Discard)), Env: &Env{}}))
	serve := func() int {
		req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(amPayload))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	serve() // the first delivery starts a (failing: no PostgreSQL) dry run
	h.Wait()
	for b.Loop() {
		if code := serve(); code != http.StatusOK {
			b.Fatal(code)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
