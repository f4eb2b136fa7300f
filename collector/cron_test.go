package collector

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// addCron inserts an active cron job named name due at nextcall (an SQL
// expression in UTC) and returns its id. The insert follows each series'
// columns: cron_name is jsonb in 16.0, numbercall exists up to 17.0.
func addCron(t *testing.T, db, version, name, nextcall string) int {
	t.Helper()
	conn := cluster.Connect(t, db)
	ctx := context.Background()
	var action int
	if err := conn.QueryRow(ctx, `INSERT INTO ir_act_server (name) VALUES (jsonb_build_object('en_US', $1::text)) RETURNING id`, name).Scan(&action); err != nil {
		t.Fatal(err)
	}
	nameValue := "$2::text"
	if version == "16.0" {
		nameValue = "jsonb_build_object('en_US', $2::text)"
	}
	var id int
	sql := fmt.Sprintf(`INSERT INTO ir_cron (ir_actions_server_id, cron_name, user_id, interval_number, interval_type, nextcall)
VALUES ($1, %s, 1, 1, 'hours', %s) RETURNING id`, nameValue, nextcall)
	if err := conn.QueryRow(ctx, sql, action, name).Scan(&id); err != nil {
		t.Fatalf("insert cron: %v", err)
	}
	return id
}

var monitorRole sync.Once

// monitorDSN returns the DSN of db for a role with the exporter's least
// privileges (pg_monitor, SELECT on the tables; README's grants).
func monitorDSN(t *testing.T, db string) string {
	t.Helper()
	monitorRole.Do(func() {
		cluster.Exec(t, "postgres", "CREATE ROLE monitor LOGIN; GRANT pg_monitor TO monitor")
	})
	cluster.Exec(t, db, "GRANT SELECT ON ir_cron, ir_cron_trigger, ir_module_module, ir_attachment TO monitor")
	{
		var progress bool
		if err := cluster.Connect(t, db).QueryRow(context.Background(), "SELECT to_regclass('ir_cron_progress') IS NOT NULL").Scan(&progress); err != nil {
			t.Fatal(err)
		}
		if progress {
			cluster.Exec(t, db, "GRANT SELECT ON ir_cron_progress TO monitor")
		}
	}
	return cluster.DSN(db, "monitor")
}

// TestCronLag checks lag, overdue count and per-job lag on every supported
// Odoo series, including a job made due by a trigger and inactive or
// exhausted jobs that do not count.
func TestCronLag(t *testing.T) {
	for _, version := range []string{"16.0", "17.0", "18.0"} {
		t.Run(version, func(t *testing.T) {
			db := cluster.OdooDB(t, version)
			addCron(t, db, version, "Mail: Email Queue Manager", "now() AT TIME ZONE 'UTC' - interval '1 hour'")
			addCron(t, db, version, "Base: Auto-vacuum", "now() AT TIME ZONE 'UTC' + interval '1 day'")
			trig := addCron(t, db, version, "Triggered job", "now() AT TIME ZONE 'UTC' + interval '1 day'")
			cluster.Exec(t, db, `INSERT INTO ir_cron_trigger (cron_id, call_at) VALUES ($1, now() AT TIME ZONE 'UTC' - interval '20 minutes'),
				($1, now() AT TIME ZONE 'UTC' + interval '1 hour')`, trig)
			inactive := addCron(t, db, version, "Inactive", "now() AT TIME ZONE 'UTC' - interval '5 hours'")
			cluster.Exec(t, db, `UPDATE ir_cron SET active = false WHERE id = $1`, inactive)
			if version != "18.0" {
				done := addCron(t, db, version, "Exhausted", "now() AT TIME ZONE 'UTC' - interval '5 hours'")
				cluster.Exec(t, db, `UPDATE ir_cron SET numbercall = 0 WHERE id = $1`, done)
			}

			exp := newTestExporter(t, cluster.DSN(db, ""), "", "cron")
			m := scrapeOnce(t, exp)
			if got := m.value(t, "odoo_exporter_collector_success", "collector", "cron"); got != 1 {
				t.Fatalf("cron collector failed")
			}
			if got := m.value(t, "odoo_cron_jobs", "database", db); got != 3 {
				t.Errorf("odoo_cron_jobs = %v, want 3 active jobs", got)
			}
			if got := m.value(t, "odoo_cron_lag_max_seconds", "database", db); got < 3590 || got > 3700 {
				t.Errorf("odoo_cron_lag_max_seconds = %v, want about 3600", got)
			}
			if got := m.value(t, "odoo_cron_overdue_jobs", "database", db); got != 2 {
				t.Errorf("odoo_cron_overdue_jobs = %v, want 2 (nextcall 1 h ago, trigger 20 min ago)", got)
			}
			if got := m.value(t, "odoo_cron_job_lag_seconds", "database", db, "cron", "Triggered job"); got < 1190 || got > 1300 {
				t.Errorf("lag of the triggered job = %v, want about 1200", got)
			}
			if got := m.value(t, "odoo_cron_job_lag_seconds", "database", db, "cron", "Base: Auto-vacuum"); got != 0 {
				t.Errorf("lag of a job not due = %v, want 0", got)
			}
			if m.has("odoo_cron_job_lag_seconds", "cron", "Inactive") || m.has("odoo_cron_job_lag_seconds", "cron", "Exhausted") {
				t.Errorf("inactive or exhausted jobs exposed")
			}
			if got := m.value(t, "odoo_cron_pending_triggers", "database", db); got != 1 {
				t.Errorf("odoo_cron_pending_triggers = %v, want 1", got)
			}
			if version == "18.0" {
				if got := m.value(t, "odoo_cron_failing_jobs", "database", db); got != 0 {
					t.Errorf("odoo_cron_failing_jobs = %v, want 0", got)
				}
				cluster.Exec(t, db, `UPDATE ir_cron SET failure_count = 2, first_failure_date = now() WHERE id = $1`, trig)
				if got := scrapeOnce(t, exp).value(t, "odoo_cron_failing_jobs", "database", db); got != 1 {
					t.Errorf("odoo_cron_failing_jobs = %v after a failure, want 1", got)
				}
			} else if m.has("odoo_cron_failing_jobs") {
				t.Errorf("odoo_cron_failing_jobs exposed for Odoo %s, which does not record failures", version)
			}
		})
	}
}

// TestCronPerJobOff checks the switch for large clusters.
func TestCronPerJobOff(t *testing.T) {
	db := cluster.OdooDB(t, "17.0")
	addCron(t, db, "17.0", "a", "now() AT TIME ZONE 'UTC' - interval '1 hour'")
	c := NewCronCollector(CronOptions{OverdueThreshold: time.Minute, PerJob: false})
	m := collectDatabase(t, c, db)
	if m.has("odoo_cron_job_lag_seconds") {
		t.Errorf("per-job lag exposed with PerJob off")
	}
	if got := m.value(t, "odoo_cron_overdue_jobs", "database", db); got != 1 {
		t.Errorf("odoo_cron_overdue_jobs = %v, want 1", got)
	}
}

// lockJob runs the lock statement sql (a format with the job id) in an
// open transaction of a new session, as a cron worker taking job id, and
// returns the session.
func lockJob(t *testing.T, db, sql string, id int) *pgx.Conn {
	t.Helper()
	worker := cluster.Connect(t, db)
	mustExec(t, worker, "BEGIN")
	rows, err := worker.Query(context.Background(), fmt.Sprintf(sql, id))
	if err != nil {
		t.Fatal(err)
	}
	locked := 0
	for rows.Next() {
		locked++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if locked != 1 {
		t.Fatalf("worker locked %d rows, want 1", locked)
	}
	return worker
}

const (
	// lock17 is Odoo 15-17's _acquire_one_job (shortened).
	lock17 = `SELECT * FROM ir_cron WHERE active AND numbercall != 0 AND id in (%d) FOR NO KEY UPDATE SKIP LOCKED`
	// lock18 is Odoo 18's.
	lock18 = `WITH last_cron_progress AS (SELECT id as progress_id, cron_id FROM ir_cron_progress WHERE cron_id = %[1]d ORDER BY id DESC LIMIT 1)
SELECT * FROM ir_cron LEFT JOIN last_cron_progress lcp ON lcp.cron_id = ir_cron.id WHERE id = %[1]d AND active IS TRUE FOR NO KEY UPDATE SKIP LOCKED`
	// lockManual is "Run Manually" (method_direct_trigger's _try_lock),
	// in a web worker whose request then runs the job.
	lockManual = `SELECT id FROM ir_cron WHERE id IN (%d) FOR NO KEY UPDATE NOWAIT`
)

// TestCronRunning holds a job's row the way Odoo's cron worker does
// (SELECT ... FOR NO KEY UPDATE SKIP LOCKED in an open transaction) and
// checks that the job is reported running, with its duration, that its
// lag does not count while it runs, and that the exporter's read did not
// stop the worker from holding it. The multixact cases (a trigger's
// foreign key, or the job's own cursor inserting ir_cron_progress in 18.0,
// also share-locks the row) are found from the multixact's members. The
// worker's session runs another statement after the lock in every case:
// the query text plays no part.
func TestCronRunning(t *testing.T) {
	cases := []struct {
		name, version, lockSQL string
		// share: another transaction share-locks the row meanwhile.
		share string
	}{
		{"17.0", "17.0", lock17, ""},
		{"18.0", "18.0", lock18, ""},
		{"16.0 with a trigger inserted meanwhile", "16.0", lock17, "INSERT INTO ir_cron_trigger (cron_id, call_at) VALUES ($1, now() AT TIME ZONE 'UTC')"},
		{"18.0 with the job's cursor adding progress", "18.0", lock18, "INSERT INTO ir_cron_progress (cron_id, timed_out_counter) VALUES ($1, 1)"},
		{"18.0 Run Manually", "18.0", lockManual, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := cluster.OdooDB(t, tc.version)
			id := addCron(t, db, tc.version, "Long job", "now() AT TIME ZONE 'UTC' - interval '2 hours'")
			addCron(t, db, tc.version, "Other job", "now() AT TIME ZONE 'UTC' - interval '2 minutes'")
			exp := newTestExporter(t, monitorDSN(t, db), "", "cron")
			m := scrapeOnce(t, exp)
			if got := m.value(t, "odoo_cron_running_jobs", "database", db); got != 0 {
				t.Fatalf("odoo_cron_running_jobs = %v before any lock, want 0", got)
			}
			if got := m.value(t, "odoo_cron_lag_max_seconds", "database", db); got < 7190 {
				t.Fatalf("odoo_cron_lag_max_seconds = %v before the run, want about 7200", got)
			}

			worker := lockJob(t, db, tc.lockSQL, id)
			mustExec(t, worker, "SELECT 1") // the lock is no longer the session's last statement
			if tc.share != "" {
				other := cluster.Connect(t, db)
				mustExec(t, other, "BEGIN")
				mustExec(t, other, tc.share, id)
				t.Cleanup(func() { other.Exec(context.Background(), "ROLLBACK") })
			}
			time.Sleep(1100 * time.Millisecond)

			m = scrapeOnce(t, exp)
			if got := m.value(t, "odoo_cron_running_jobs", "database", db); got != 1 {
				t.Fatalf("odoo_cron_running_jobs = %v, want 1", got)
			}
			if got := m.value(t, "odoo_cron_job_running_seconds", "database", db, "cron", "Long job"); got < 1 || got > 60 {
				t.Errorf("odoo_cron_job_running_seconds = %v, want >= 1", got)
			}
			if got := m.value(t, "odoo_cron_running_max_seconds", "database", db); got < 1 {
				t.Errorf("odoo_cron_running_max_seconds = %v, want >= 1", got)
			}
			if m.has("odoo_cron_job_running_seconds", "cron", "Other job") {
				t.Errorf("a job nobody holds is reported running")
			}
			// A running job is not late: its lag is the other job's.
			if got := m.value(t, "odoo_cron_job_lag_seconds", "database", db, "cron", "Long job"); got != 0 {
				t.Errorf("lag of the running job = %v, want 0", got)
			}
			if got := m.value(t, "odoo_cron_lag_max_seconds", "database", db); got < 110 || got > 400 {
				t.Errorf("odoo_cron_lag_max_seconds = %v while the late job runs, want the other job's ~120", got)
			}

			// The exporter took no row lock: another worker still skips the
			// held job and can take the free one.
			second := cluster.Connect(t, db)
			mustExec(t, second, "BEGIN")
			rows, err := second.Query(context.Background(), "SELECT id FROM ir_cron FOR NO KEY UPDATE SKIP LOCKED")
			if err != nil {
				t.Fatal(err)
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
			if err != nil {
				t.Fatal(err)
			}
			mustExec(t, second, "ROLLBACK")
			if len(ids) != 1 || ids[0] == id {
				t.Errorf("a second worker locked %v, want only the other job", ids)
			}

			mustExec(t, worker, "COMMIT")
			if got := scrapeOnce(t, exp).value(t, "odoo_cron_running_jobs", "database", db); got != 0 {
				t.Errorf("odoo_cron_running_jobs = %v after the worker committed, want 0", got)
			}
		})
	}
}

// closeSession closes conn and waits until its backend is gone.
func closeSession(t *testing.T, db string, conn *pgx.Conn) {
	t.Helper()
	pid := conn.PgConn().PID()
	conn.Close(context.Background())
	admin := cluster.Connect(t, db)
	eventually(t, 10*time.Second, "backend gone", func() bool {
		var n int
		err := admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n)
		return err == nil && n == 0
	})
}

// histogram returns the sample count and sum of the histogram name with
// the given label pairs.
func (ms metrics) histogram(t *testing.T, name string, labels ...string) (uint64, float64) {
	t.Helper()
	found := ms.find(name, labels...)
	if len(found) != 1 || found[0].Histogram == nil {
		t.Fatalf("%s%v: found %d histograms, want 1; scrape has:\n%s", name, labels, len(found), ms.names())
	}
	h := found[0].GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum()
}

// TestCronRuns follows runs across scrapes: a run that completes (lastcall
// advances) is observed in odoo_cron_job_age_seconds with how late it
// started; a run seen running that goes away while lastcall stays is
// interrupted (a cron worker killed at limit_time_real_cron, again and
// again: the timeout loop); in 18.0 a run that returned "partially done"
// (its progress row's timed_out_counter reset) is not.
func TestCronRuns(t *testing.T) {
	for _, version := range []string{"16.0", "17.0", "18.0"} {
		t.Run(version, func(t *testing.T) {
			db := cluster.OdooDB(t, version)
			lock := lock17
			if version == "18.0" {
				lock = lock18
			}
			id := addCron(t, db, version, "Loop job", "now() AT TIME ZONE 'UTC' - interval '10 minutes'")
			exp := newTestExporter(t, monitorDSN(t, db), "", "cron")
			m := scrapeOnce(t, exp)
			if got := m.value(t, "odoo_cron_interrupted_runs_total", "database", db); got != 0 {
				t.Fatalf("odoo_cron_interrupted_runs_total = %v at start, want 0", got)
			}
			if n, _ := m.histogram(t, "odoo_cron_job_age_seconds", "database", db); n != 0 {
				t.Fatalf("odoo_cron_job_age_seconds has %d runs at start, want 0", n)
			}

			// Killed twice in the middle of the run: the worker's session
			// ends (rolls back), lastcall stays.
			for i := 1; i <= 2; i++ {
				worker := lockJob(t, db, lock, id)
				if version == "18.0" {
					// The job's own cursor: a progress row counting this
					// run as timed out until it returns.
					cluster.Exec(t, db, "INSERT INTO ir_cron_progress (cron_id, timed_out_counter) VALUES ($1, $2)", id, i)
				}
				if got := scrapeOnce(t, exp).value(t, "odoo_cron_running_jobs", "database", db); got != 1 {
					t.Fatalf("run %d: odoo_cron_running_jobs = %v, want 1", i, got)
				}
				closeSession(t, db, worker)
				m = scrapeOnce(t, exp)
				if got := m.value(t, "odoo_cron_interrupted_runs_total", "database", db); got != float64(i) {
					t.Fatalf("odoo_cron_interrupted_runs_total = %v after %d killed runs", got, i)
				}
				if got := m.value(t, "odoo_cron_job_interrupted_runs_total", "database", db, "cron", "Loop job"); got != float64(i) {
					t.Fatalf("odoo_cron_job_interrupted_runs_total = %v after %d killed runs", got, i)
				}
				// While it is not running its lag counts again.
				if got := m.value(t, "odoo_cron_lag_max_seconds", "database", db); got < 590 {
					t.Errorf("odoo_cron_lag_max_seconds = %v between runs, want about 600", got)
				}
			}

			if version == "18.0" {
				// A batch that returned "partially done": the progress row
				// is reset, the job stays ready, lastcall stays.
				worker := lockJob(t, db, lock, id)
				cluster.Exec(t, db, "INSERT INTO ir_cron_progress (cron_id, timed_out_counter) VALUES ($1, 3)", id)
				scrapeOnce(t, exp)
				cluster.Exec(t, db, "UPDATE ir_cron_progress SET timed_out_counter = 0 WHERE cron_id = $1", id)
				mustExec(t, worker, "COMMIT")
				worker.Close(context.Background())
				if got := scrapeOnce(t, exp).value(t, "odoo_cron_interrupted_runs_total", "database", db); got != 2 {
					t.Errorf("odoo_cron_interrupted_runs_total = %v after a partially done run, want still 2", got)
				}
			}

			// A run that completes: the worker moves lastcall and nextcall
			// on and commits. It started about 10 minutes late.
			worker := lockJob(t, db, lock, id)
			scrapeOnce(t, exp)
			mustExec(t, worker, `UPDATE ir_cron SET lastcall = now() AT TIME ZONE 'UTC', nextcall = now() AT TIME ZONE 'UTC' + interval '1 hour' WHERE id = $1`, id)
			mustExec(t, worker, "COMMIT")
			m = scrapeOnce(t, exp)
			if got := m.value(t, "odoo_cron_interrupted_runs_total", "database", db); got != 2 {
				t.Errorf("odoo_cron_interrupted_runs_total = %v after a completed run, want still 2", got)
			}
			n, sum := m.histogram(t, "odoo_cron_job_age_seconds", "database", db)
			if n != 1 || sum < 595 || sum > 700 {
				t.Errorf("odoo_cron_job_age_seconds: %d runs, sum %v; want 1 run about 600 s late", n, sum)
			}

			// A run not seen running (shorter than the scrape interval), on
			// time: observed from lastcall, 0 late.
			cluster.Exec(t, db, `UPDATE ir_cron SET nextcall = now() AT TIME ZONE 'UTC' + interval '1 second' WHERE id = $1`, id)
			scrapeOnce(t, exp)
			time.Sleep(1100 * time.Millisecond)
			cluster.Exec(t, db, `UPDATE ir_cron SET lastcall = now() AT TIME ZONE 'UTC', nextcall = now() AT TIME ZONE 'UTC' + interval '1 hour' WHERE id = $1`, id)
			n, sum2 := scrapeOnce(t, exp).histogram(t, "odoo_cron_job_age_seconds", "database", db)
			if n != 2 || sum2-sum > 5 {
				t.Errorf("odoo_cron_job_age_seconds: %d runs, last %v s late; want 2 runs, the last on time", n, sum2-sum)
			}
		})
	}
}

// TestModulesInTransition puts a module in 'to upgrade' and checks the
// metric, and the version read from the base module.
func TestModulesInTransition(t *testing.T) {
	db := cluster.OdooDB(t, "18.0")
	exp := newTestExporter(t, cluster.DSN(db, ""), "", "modules")
	m := scrapeOnce(t, exp)
	if got := m.value(t, "odoo_modules_in_transition", "database", db); got != 0 {
		t.Errorf("odoo_modules_in_transition = %v, want 0", got)
	}
	if got := m.value(t, "odoo_version_info", "database", db, "version", "18.0.1.3", "source", "database"); got != 1 {
		t.Errorf("odoo_version_info = %v, want 1", got)
	}
	cluster.Exec(t, db, `UPDATE ir_module_module SET state = 'to upgrade' WHERE name = 'mail';
UPDATE ir_module_module SET state = 'to install' WHERE name = 'sale'`)
	if got := scrapeOnce(t, exp).value(t, "odoo_modules_in_transition", "database", db); got != 2 {
		t.Errorf("odoo_modules_in_transition = %v, want 2", got)
	}
}

// collectDatabase runs one DatabaseCollector on db.
func collectDatabase(t *testing.T, c DatabaseCollector, db string) metrics {
	t.Helper()
	exp := &Exporter{logger: testLogger(), pg: newSource(t, cluster.DSN(db, ""), ""),
		collectors: map[string]Collector{}, dbs: map[string]DatabaseCollector{"test": c}, dbNames: []string{"test"}}
	m := scrapeOnce(t, exp)
	if got := m.value(t, "odoo_exporter_collector_success", "collector", "test"); got != 1 {
		t.Fatalf("collector failed")
	}
	return m
}

// TestCronRunningSQLReadsOnly guards the promise that no query of the
// collector locks rows.
func TestCronRunningSQLReadsOnly(t *testing.T) {
	for _, s := range []cronSchema{{hasName: true}, {hasName: true, nameJSON: true, hasNumbercall: true, hasTriggers: true}, {hasFailures: true, hasTriggers: true}} {
		for _, sql := range []string{s.jobsSQL(), pgBackendsSQL} {
			upper := strings.ToUpper(sql)
			for _, bad := range []string{"FOR UPDATE", "FOR SHARE", "FOR NO KEY UPDATE", "FOR KEY SHARE"} {
				if strings.Contains(upper, bad) {
					t.Errorf("query locks rows (%s):\n%s", bad, sql)
				}
			}
		}
	}
}

// TestCronTriggerInsertIsNotRunning: a long transaction that only inserted
// a trigger for a job (an import, an upgrade) has its transaction id in the
// job row's xmax (the foreign key's KEY SHARE lock) and a lock on ir_cron,
// like a cron worker; the job is not running for all that.
func TestCronTriggerInsertIsNotRunning(t *testing.T) {
	db := cluster.OdooDB(t, "17.0")
	id := addCron(t, db, "17.0", "Triggered job", "now() AT TIME ZONE 'UTC' + interval '1 hour'")
	exp := newTestExporter(t, cluster.DSN(db, ""), "", "cron")
	other := cluster.Connect(t, db)
	mustExec(t, other, "BEGIN")
	mustExec(t, other, "INSERT INTO ir_cron_trigger (cron_id, call_at) VALUES ($1, now() AT TIME ZONE 'UTC' + interval '1 hour')", id)
	t.Cleanup(func() { other.Exec(context.Background(), "ROLLBACK") })
	m := scrapeOnce(t, exp)
	if got := m.value(t, "odoo_cron_running_jobs", "database", db); got != 0 {
		t.Errorf("odoo_cron_running_jobs = %v with only a trigger insert open, want 0", got)
	}
}

// TestCronRememberOrder feeds the collector's memory views out of order,
// as two concurrent scrapes may: an older view remembered after a newer
// one observes nothing and counts nothing.
func TestCronRememberOrder(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	t0 := time.Unix(1_000_000, 0)
	job := func(lastcall float64) []cronJob {
		return []cronJob{{id: 1, name: "job", active: true, due: f(float64(t0.Unix()) - 600), lastcall: f(lastcall)}}
	}
	drain := func(c *CronCollector, jobs []cronJob, running map[int64]time.Time, now time.Time) {
		ch := make(chan prometheus.Metric, 16)
		c.remember("db", jobs, running, false, now, ch)
		close(ch)
		for range ch {
		}
	}
	for _, tc := range []struct {
		name                 string
		late                 bool // the older view comes last
		wantRuns, wantKilled uint64
	}{
		{"in order", false, 1, 0},
		{"older view last", true, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCronCollector(CronOptions{PerJob: true})
			start := t0.Add(-30 * time.Second)
			// Seen running, then completed (lastcall advanced).
			drain(c, job(1), map[int64]time.Time{1: start}, t0)
			drain(c, job(2), map[int64]time.Time{}, t0.Add(10*time.Second))
			if tc.late {
				// A scrape that read the database at t0+5s, running still.
				drain(c, job(1), map[int64]time.Time{1: start}, t0.Add(5*time.Second))
			}
			drain(c, job(2), map[int64]time.Time{}, t0.Add(20*time.Second))
			var m dto.Metric
			if err := c.lateness.WithLabelValues("db").(prometheus.Histogram).Write(&m); err != nil {
				t.Fatal(err)
			}
			if got := m.GetHistogram().GetSampleCount(); got != tc.wantRuns {
				t.Errorf("runs observed: %d, want %d", got, tc.wantRuns)
			}
			if got := c.runs["db"].interrupted; got != float64(tc.wantKilled) {
				t.Errorf("interrupted: %v, want %d", got, tc.wantKilled)
			}
		})
	}
}
