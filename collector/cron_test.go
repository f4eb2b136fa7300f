package collector

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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

// TestCronRunning holds a job's row the way Odoo's cron worker does
// (SELECT ... FOR NO KEY UPDATE SKIP LOCKED in an open transaction) and
// checks that the job is reported running, with its duration, and that the
// exporter's read did not stop the worker from holding it. The multixact
// case (a trigger's foreign key also share-locks the row) is found through
// the worker's session.
func TestCronRunning(t *testing.T) {
	cases := []struct {
		name, version, lockSQL string
		multixact              bool
	}{
		{"17.0", "17.0", `SELECT * FROM ir_cron WHERE active AND numbercall != 0 AND id in (%d) FOR NO KEY UPDATE SKIP LOCKED`, false},
		{"18.0", "18.0", `WITH last_cron_progress AS (SELECT id as progress_id, cron_id FROM ir_cron_progress WHERE cron_id = %[1]d ORDER BY id DESC LIMIT 1)
SELECT * FROM ir_cron LEFT JOIN last_cron_progress lcp ON lcp.cron_id = ir_cron.id WHERE id = %[1]d AND active IS TRUE FOR NO KEY UPDATE SKIP LOCKED`, false},
		{"16.0 with a trigger inserted meanwhile", "16.0", `SELECT * FROM ir_cron WHERE active AND numbercall != 0 AND id in (%d) FOR NO KEY UPDATE SKIP LOCKED`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := cluster.OdooDB(t, tc.version)
			id := addCron(t, db, tc.version, "Long job", "now() AT TIME ZONE 'UTC' - interval '2 minutes'")
			addCron(t, db, tc.version, "Other job", "now() AT TIME ZONE 'UTC' - interval '2 minutes'")
			exp := newTestExporter(t, cluster.DSN(db, ""), "", "cron")
			if got := scrapeOnce(t, exp).value(t, "odoo_cron_running_jobs", "database", db); got != 0 {
				t.Fatalf("odoo_cron_running_jobs = %v before any lock, want 0", got)
			}

			worker := cluster.Connect(t, db)
			mustExec(t, worker, "BEGIN")
			var locked int
			rows, err := worker.Query(context.Background(), fmt.Sprintf(tc.lockSQL, id))
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				locked++
			}
			rows.Close()
			if locked != 1 {
				t.Fatalf("worker locked %d rows, want 1", locked)
			}
			if tc.multixact {
				// Another transaction adds a trigger for the job: the FK check
				// takes a KEY SHARE lock on the same row, so xmax becomes a
				// multixact.
				other := cluster.Connect(t, db)
				mustExec(t, other, "BEGIN")
				mustExec(t, other, "INSERT INTO ir_cron_trigger (cron_id, call_at) VALUES ($1, now() AT TIME ZONE 'UTC')", id)
				t.Cleanup(func() { other.Exec(context.Background(), "ROLLBACK") })
			}
			time.Sleep(1100 * time.Millisecond)

			m := scrapeOnce(t, exp)
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

			// The exporter took no row lock: another worker still skips the
			// held job and can take the free one.
			second := cluster.Connect(t, db)
			mustExec(t, second, "BEGIN")
			var ids []int
			rows, err = second.Query(context.Background(), "SELECT id FROM ir_cron FOR NO KEY UPDATE SKIP LOCKED")
			if err != nil {
				t.Fatal(err)
			}
			ids, err = pgx.CollectRows(rows, pgx.RowTo[int])
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
		for _, sql := range []string{s.jobsSQL(), cronLockersSQL} {
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
