package heal

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/odoo-exporter/odoo_exporter/internal/dockertest"
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

// BenchmarkDockerActionOutage measures, on the test dockerd, the time
// from the start of each Docker action until Odoo's stand-in answers its
// health URL again and the action is verified (the outage it causes):
//
//	go test -run '^$' -bench DockerActionOutage -benchtime 5x ./heal/
func BenchmarkDockerActionOutage(b *testing.B) {
	dockerOnce.Do(func() { dockerDaemon, dockerErr = dockertest.Start() })
	dockertest.Require(b, dockerErr)
	d := dockerDaemon
	for _, bc := range []struct {
		name string
		app  dockertest.AppConfig
		act  func(url string) Action
	}{
		{"restart_container", dockertest.AppConfig{Name: "bench-restart"}, func(u string) Action {
			return &RestartContainer{RestartContainerParams{StopTimeout: model.Duration(10 * time.Second), HealthParams: HealthParams{HealthURL: u}}}
		}},
		{"recycle_workers_signal", dockertest.AppConfig{Name: "bench-recycle", Odoo: &dockertest.OdooConfig{ShellWrapper: true}}, func(u string) Action {
			return &RecycleWorkers{RecycleWorkersParams{Mode: "signal", Signal: "SIGHUP", HealthParams: HealthParams{HealthURL: u}}}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			app, err := d.RunApp(b.Context(), bc.app)
			if err != nil {
				b.Fatal(err)
			}
			a := bc.act("http://" + app.Addr + "/healthz")
			env := &Env{Docker: d.Client(), Logger: slog.New(slog.DiscardHandler)}
			for b.Loop() {
				ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
				verify, err := a.Run(ctx, env, app.Name, false, &Report{})
				if err == nil {
					err = pollUntil(ctx, 10*time.Millisecond, verify)
				}
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
