package collector

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// odooLogSample is a log of every kind of record the collector counts, as
// Odoo 16, 17 and 18 write them (prefork: pid 1 is the master).
var odooLogSample = "garbage before Odoo starts\n" +
	"2026-12-02 10:00:00,000 101 INFO ? odoo.service.server: Worker WorkerCron (101) alive \n" +
	"2026-12-02 10:00:00,000 102 INFO ? odoo.service.server: Worker WorkerHTTP (102) alive \n" +
	// 17: Odoo's duration.
	"2026-12-02 10:00:01,000 101 INFO prod odoo.addons.base.models.ir_cron: Starting job `A`. \n" +
	"2026-12-02 10:00:01,250 101 INFO prod odoo.addons.base.models.ir_cron: Job done: `A` (0.250s). \n" +
	// 16: the duration between the records.
	"2026-12-02 10:00:02,000 101 INFO prod odoo.addons.base.models.ir_cron: Starting job `B`. \n" +
	"2026-12-02 10:00:04,000 101 INFO prod odoo.addons.base.models.ir_cron: Job `B` done. \n" +
	// 18: a failure with its traceback.
	"2026-12-02 10:00:05,000 101 INFO prod2 odoo.addons.base.models.ir_cron: Job 'C' (3) starting \n" +
	"2026-12-02 10:00:05,500 101 ERROR prod2 odoo.addons.base.models.ir_cron: Job 'C' (3) server action #5 failed \n" +
	"Traceback (most recent call last):\n  File \"x.py\", line 1, in f\nZeroDivisionError: division by zero\n" +
	// 17: killed by the master.
	"2026-12-02 10:01:00,000 101 INFO prod odoo.addons.base.models.ir_cron: Starting job `Slow`. \n" +
	"2026-12-02 10:03:01,000 1 ERROR ? odoo.service.server: WorkerCron (101) timeout after 120s \n" +
	// Memory: soft limit three times, then the hard one.
	"2026-12-02 10:04:00,000 102 INFO prod odoo.service.server: Worker (102) virtual memory limit (2214592512) reached. \n" +
	"2026-12-02 10:04:01,000 102 INFO prod odoo.service.server: Worker (102) virtual memory limit (2214592512) reached. \n" +
	"2026-12-02 10:04:02,000 102 INFO prod odoo.service.server: Worker (102) virtual memory limit (2214592512) reached. \n" +
	"2026-12-02 10:04:03,000 102 ERROR prod odoo.http: Exception during request handling. \n" +
	"Traceback (most recent call last):\n  File \"x.py\", line 1, in f\nMemoryError\n" +
	// Errors no entry knows.
	"2026-12-02 10:05:00,000 102 ERROR prod odoo.addons.custom: boom \n" +
	"Traceback (most recent call last):\n  File \"x.py\", line 1, in f\nKeyError: 'x'\n" +
	"2026-12-02 10:05:01,000 102 ERROR prod odoo.addons.custom: no traceback \n" +
	"2026-12-02 10:05:02,000 102 ERROR prod odoo.addons.custom: other class \n" +
	"Traceback (most recent call last):\n  File \"x.py\", line 1, in f\nTypeError: y\n" +
	// A 1 MiB line.
	"2026-12-02 10:06:00,000 102 WARNING prod odoo.addons.custom: " + strings.Repeat("z", 1<<20) + " \n" +
	"2026-12-02 10:07:00,000 102 INFO prod odoo.addons.base.models.ir_cron: Starting job `A`. \n"

func runOdooLog(t *testing.T, o OdooLogOptions, log string, records float64) metrics {
	t.Helper()
	path := filepath.Join(t.TempDir(), "odoo.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	o.Files = []string{path}
	o.FromStart = true
	o.FlushAfter = 50 * time.Millisecond
	o.Poll = 20 * time.Millisecond
	o.Logger = testLogger()
	c, err := NewOdooLogCollector(o)
	if err != nil {
		t.Fatal(err)
	}
	exp := &Exporter{logger: testLogger(), collectors: map[string]Collector{"odoo_log": c}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { exp.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; exp.Close() })
	var m metrics
	eventually(t, time.Minute, "every record read", func() bool {
		m = scrapeOnce(t, exp)
		var n float64
		for _, s := range m.find("odoo_log_records_total") {
			n += s.GetCounter().GetValue()
		}
		return n == records
	})
	return m
}

func histogram(t *testing.T, m metrics, name string, labels ...string) *dto.Histogram {
	t.Helper()
	found := m.find(name, labels...)
	if len(found) != 1 {
		t.Fatalf("%s%v: %d samples", name, labels, len(found))
	}
	return found[0].GetHistogram()
}

func TestOdooLogCollector(t *testing.T) {
	m := runOdooLog(t, OdooLogOptions{MaxClasses: 1}, odooLogSample, 19)
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"odoo_log_records_total", []string{"level", "INFO"}, 12},
		{"odoo_log_records_total", []string{"level", "ERROR"}, 6},
		{"odoo_log_records_total", []string{"level", "WARNING"}, 1},
		{"odoo_log_matches_total", []string{"id", "cron_started", "incident", "cron", "severity", "info"}, 4},
		{"odoo_log_matches_total", []string{"id", "cron_failed_18", "incident", "cron_failing", "severity", "warning"}, 1},
		{"odoo_log_matches_total", []string{"id", "worker_memory_soft"}, 3},
		{"odoo_log_matches_total", []string{"id", "bus_loop_error"}, 0},
		{"odoo_log_cron_runs_total", []string{"database", "prod", "result", "done"}, 2},
		{"odoo_log_cron_runs_total", []string{"database", "prod", "result", "killed"}, 1},
		{"odoo_log_cron_runs_total", []string{"database", "prod2", "result", "failed"}, 1},
		// Exported from the database's first record, before any run.
		{"odoo_log_cron_runs_total", []string{"database", "prod2", "result", "killed"}, 0},
		{"odoo_log_cron_runs_total", []string{"database", "prod2", "result", "done"}, 0},
		{"odoo_log_worker_limit_events_total", []string{"limit", "time_real", "worker", "cron"}, 1},
		{"odoo_log_worker_limit_events_total", []string{"limit", "memory_soft", "worker", "http"}, 3},
		{"odoo_log_worker_limit_events_total", []string{"limit", "memory_hard", "worker", "http"}, 1},
		{"odoo_log_worker_limit_events_total", []string{"limit", "memory_soft", "worker", "unknown"}, 0},
		// MaxClasses 1: KeyError is kept, TypeError is "other".
		{"odoo_log_unknown_errors_total", []string{"level", "ERROR", "class", "KeyError"}, 1},
		{"odoo_log_unknown_errors_total", []string{"level", "ERROR", "class", "none"}, 1},
		{"odoo_log_unknown_errors_total", []string{"level", "ERROR", "class", "other"}, 1},
		{"odoo_log_truncated_records_total", nil, 1},
		{"odoo_log_foreign_lines_total", nil, 1},
		{"odoo_log_source_up", nil, 1},
	}
	for _, tt := range tests {
		if got := m.value(t, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	// prod: A 0.25 s (Odoo's figure), B 2 s (between the records), Slow
	// 121 s (start to kill).
	h := histogram(t, m, "odoo_log_cron_run_duration_seconds", "database", "prod")
	if h.GetSampleCount() != 3 || h.GetSampleSum() != 123.25 {
		t.Errorf("prod durations: count %d sum %v, want 3 and 123.25", h.GetSampleCount(), h.GetSampleSum())
	}
	if m.has("odoo_log_cron_job_runs_total") {
		t.Error("per-job metrics without --collector.odoo_log.per-job")
	}
}

func TestOdooLogCollectorPerJob(t *testing.T) {
	m := runOdooLog(t, OdooLogOptions{PerJob: true, MaxJobs: 1}, odooLogSample, 19)
	if got := m.value(t, "odoo_log_cron_job_runs_total", "database", "prod", "cron", "A", "result", "done"); got != 1 {
		t.Errorf("job A done = %v, want 1", got)
	}
	// MaxJobs 1: B and Slow are "other".
	if got := m.value(t, "odoo_log_cron_job_runs_total", "database", "prod", "cron", "other", "result", "killed"); got != 1 {
		t.Errorf("other killed = %v, want 1", got)
	}
	if h := histogram(t, m, "odoo_log_cron_job_run_duration_seconds", "database", "prod", "cron", "other"); h.GetSampleCount() != 2 {
		t.Errorf("other durations: %d, want 2", h.GetSampleCount())
	}
}

func TestOdooLogCollectorOptions(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("entries:\n  - {id: x, message: '(', incident: a, severity: info}\n"), 0o644)
	good := filepath.Join(dir, "good.yml")
	os.WriteFile(good, []byte("entries:\n  - {id: x, message: 'a', incident: a, severity: info}\n"), 0o644)
	tests := []struct {
		name string
		o    OdooLogOptions
		want string // error; "" is success; "nil" no collector
	}{
		{"no source", OdooLogOptions{}, "nil"},
		{"catalog missing", OdooLogOptions{Files: []string{"/x"}, CatalogFile: filepath.Join(dir, "none.yml")}, "--collector.odoo_log.catalog"},
		{"catalog invalid", OdooLogOptions{Files: []string{"/x"}, CatalogFile: bad}, "--collector.odoo_log.catalog"},
		{"catalog extends", OdooLogOptions{Files: []string{"/x"}, CatalogFile: good}, ""},
		{"empty file name", OdooLogOptions{Files: []string{""}}, "--collector.odoo_log.file"},
		{"empty container name", OdooLogOptions{Containers: []string{""}}, "--collector.odoo_log.container"},
		{"negative bound", OdooLogOptions{Files: []string{"/x"}, MaxLine: -1}, "max-line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewOdooLogCollector(tt.o)
			switch {
			case tt.want == "nil":
				if c != nil || err != nil {
					t.Fatalf("got %v, %v; want no collector", c, err)
				}
			case tt.want == "":
				if err != nil || c == nil {
					t.Fatalf("err = %v", err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want it to name %s", err, tt.want)
				}
			}
		})
	}
}
