package e2e

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

// logCronFailure has the stand-in log a failing cron run (Odoo's format,
// its traceback included) and follows OdooLogCronFailing: the exporter
// reads the container's log through the Docker API.
func logCronFailure(t *testing.T, ctx context.Context, s *Stack, rec *recorder) {
	t.Helper()
	// Let the exporter see the job's good runs first (the stand-in logs
	// one every 10 s).
	waitFor(t, ctx, 2*time.Minute, "cron runs read from the container's log", func() (bool, string) {
		v, err := s.Prom.Query(ctx, `odoo_log_cron_runs_total{database="`+Database+`",result="done"} > 0`)
		return err == nil && len(v) == 1, fmt.Sprint(v, err)
	})
	must(t, s.fault(ctx, url.Values{"fault": {"cron_failure"}}))
	firing(t, ctx, s, rec, "OdooLogCronFailing", map[string]string{"database": Database, "result": "failed"}, 2*time.Minute, "")
	v, err := s.Prom.Query(ctx, `odoo_log_cron_job_runs_total{database="`+Database+`",cron="Mail: Email Queue Manager",result="failed"}`)
	if err != nil || len(v) != 1 || v[0].Value < 1 {
		t.Errorf("per-job failed runs: %v, %v; want 1", v, err)
	}
}

// logBootLoop has the stand-in log a boot error (an addon that cannot be
// imported) and exit, then fail its next two starts the same way, the
// container being started again each time (as a restart policy does),
// and follows OdooLogBootLoop; the log stream is re-attached at each start.
func logBootLoop(t *testing.T, ctx context.Context, s *Stack, rec *recorder) {
	t.Helper()
	start := time.Now()
	must(t, s.fault(ctx, url.Values{"fault": {"boot_error"}, "starts": {"2"}}))
	cli := s.Docker.Client()
	for starts := 0; ; starts++ {
		waitFor(t, ctx, time.Minute, "the stand-in exited", func() (bool, string) {
			c, err := cli.ContainerInspect(ctx, SimContainer)
			return err == nil && !c.State.Running, fmt.Sprint(err)
		})
		if starts == 2 {
			break
		}
		must(t, cli.ContainerStart(ctx, SimContainer, container.StartOptions{}))
		// Let a scrape see this start (the docker collector's StartedAt).
		c, err := cli.ContainerInspect(ctx, SimContainer)
		must(t, err)
		started, err := time.Parse(time.RFC3339Nano, c.State.StartedAt)
		must(t, err)
		waitFor(t, ctx, time.Minute, "the start seen by Prometheus", func() (bool, string) {
			v, err := s.Prom.Query(ctx, fmt.Sprintf(`odoo_container_started_timestamp_seconds{name=%q} >= %d`, SimContainer, started.Unix()))
			return err == nil && len(v) == 1, fmt.Sprint(v, err)
		})
	}
	firing(t, ctx, s, rec, "OdooLogBootLoop", map[string]string{"job": "odoo"}, 3*time.Minute, "")
	v, err := s.Prom.Query(ctx, fmt.Sprintf(`increase(odoo_log_matches_total{id="boot_import_error"}[%ds])`, int(time.Since(start).Seconds())+30))
	if err != nil || len(v) != 1 || v[0].Value < 1 {
		t.Errorf("boot errors read: %v, %v", v, err)
	}
	// The third start boots.
	must(t, s.StartOdoo(ctx))
}
