package collector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/odoo-exporter/odoo_exporter/internal/pgtest"
	"github.com/odoo-exporter/odoo_exporter/postgres"
)

// TestPGLocksRowLockWait makes a session wait for another's row lock and
// checks that the waiting, blocking and longest-wait metrics move, and go
// back to 0 once the blocker ends.
func TestPGLocksRowLockWait(t *testing.T) {
	db := cluster.OdooDB(t, "17.0")
	cluster.Exec(t, db, `INSERT INTO ir_act_server (name) VALUES ('{"en_US": "x"}');
INSERT INTO ir_cron (ir_actions_server_id, cron_name, user_id, nextcall) VALUES (1, 'x', 1, now() AT TIME ZONE 'UTC' + interval '1 day')`)
	exp := newTestExporter(t, cluster.DSN(db, ""), "", "pg_locks", "pg_activity")

	m := scrapeOnce(t, exp)
	for _, name := range []string{"odoo_pg_lock_waiting_backends", "odoo_pg_blocking_backends", "odoo_pg_lock_wait_max_seconds"} {
		if got := m.value(t, name, "database", db); got != 0 {
			t.Errorf("before any lock: %s = %v, want 0", name, got)
		}
	}

	ctx := context.Background()
	blocker := cluster.Connect(t, db)
	waiter := cluster.Connect(t, db)
	mustExec(t, blocker, "BEGIN")
	mustExec(t, blocker, "UPDATE ir_cron SET priority = 1 WHERE id = 1")
	waitDone := make(chan error, 1)
	go func() {
		_, err := waiter.Exec(ctx, "UPDATE ir_cron SET priority = 2 WHERE id = 1")
		waitDone <- err
	}()

	eventually(t, 10*time.Second, "the waiter to show as waiting", func() bool {
		return scrapeOnce(t, exp).value(t, "odoo_pg_lock_waiting_backends", "database", db) == 1
	})
	time.Sleep(300 * time.Millisecond)
	m = scrapeOnce(t, exp)
	if got := m.value(t, "odoo_pg_blocking_backends", "database", db); got != 1 {
		t.Errorf("odoo_pg_blocking_backends = %v, want 1", got)
	}
	if got := m.value(t, "odoo_pg_lock_wait_max_seconds", "database", db); got < 0.2 || got > 30 {
		t.Errorf("odoo_pg_lock_wait_max_seconds = %v, want the wait so far (>= 0.2 s)", got)
	}
	if got := m.value(t, "odoo_pg_backends", "database", db, "state", "idle in transaction"); got != 1 {
		t.Errorf("odoo_pg_backends{state=idle in transaction} = %v, want 1 (the blocker)", got)
	}
	if got := m.value(t, "odoo_pg_transaction_max_seconds", "database", db, "state", "idle in transaction"); got < 0.2 {
		t.Errorf("odoo_pg_transaction_max_seconds{state=idle in transaction} = %v, want >= 0.2", got)
	}
	if got := m.value(t, "odoo_pg_query_max_seconds", "database", db); got < 0.2 {
		t.Errorf("odoo_pg_query_max_seconds = %v, want >= 0.2 (the waiting UPDATE)", got)
	}

	mustExec(t, blocker, "ROLLBACK")
	if err := <-waitDone; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	m = scrapeOnce(t, exp)
	for _, name := range []string{"odoo_pg_lock_waiting_backends", "odoo_pg_blocking_backends", "odoo_pg_lock_wait_max_seconds"} {
		if got := m.value(t, name, "database", db); got != 0 {
			t.Errorf("after the blocker ended: %s = %v, want 0", name, got)
		}
	}
}

// TestPGLocksDeadlock makes a real deadlock between two transactions and
// checks that the counter increases.
func TestPGLocksDeadlock(t *testing.T) {
	db := cluster.OdooDB(t, "17.0")
	cluster.Exec(t, db, `INSERT INTO res_users (id, login) VALUES (10, 'a'), (11, 'b')`)
	exp := newTestExporter(t, cluster.DSN(db, ""), "", "pg_locks")
	before := scrapeOnce(t, exp).value(t, "odoo_pg_deadlocks_total", "database", db)

	a := cluster.Connect(t, db)
	b := cluster.Connect(t, db)
	mustExec(t, a, "BEGIN")
	mustExec(t, b, "BEGIN")
	mustExec(t, a, "UPDATE res_users SET login = 'a1' WHERE id = 10")
	mustExec(t, b, "UPDATE res_users SET login = 'b1' WHERE id = 11")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, errs[0] = a.Exec(context.Background(), "UPDATE res_users SET login = 'a2' WHERE id = 11")
	}()
	go func() {
		defer wg.Done()
		_, errs[1] = b.Exec(context.Background(), "UPDATE res_users SET login = 'b2' WHERE id = 10")
	}()
	wg.Wait()
	deadlocked := 0
	for _, err := range errs {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "40P01" {
			deadlocked++
		}
	}
	if deadlocked != 1 {
		t.Fatalf("want exactly one transaction ended by deadlock detection, got errors %v", errs)
	}
	mustExec(t, a, "ROLLBACK")
	mustExec(t, b, "ROLLBACK")

	// Statistics reach pg_stat_database when the backend reports them:
	// an idle backend waits up to 10 s, one that exits reports at once.
	a.Close(context.Background())
	b.Close(context.Background())
	eventually(t, 20*time.Second, "odoo_pg_deadlocks_total to increase", func() bool {
		return scrapeOnce(t, exp).value(t, "odoo_pg_deadlocks_total", "database", db) == before+1
	})
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestPGLocksRootBlockers: 4 sessions hold a row lock each and 5 waiters
// queue behind each row. pg_blocking_pids() of a waiter also names the
// waiters queued ahead of it; odoo_pg_blocking_backends counts only the 4
// root blockers (blocking, not waiting), the set the healer's end_blockers
// ends. The bus prober's session is not a backend of the database.
func TestPGLocksRootBlockers(t *testing.T) {
	db := cluster.OdooDB(t, "17.0")
	cluster.Exec(t, db, `INSERT INTO res_users (id, login) SELECT 100 + g, 'u' || g FROM generate_series(1, 4) g`)
	exp := newTestExporter(t, cluster.DSN(db, ""), "", "pg_locks", "pg_activity")
	ctx := context.Background()

	prober, err := pgx.Connect(ctx, cluster.DSN(db, "")+"&application_name="+postgres.ProberApplicationName)
	if err != nil {
		t.Fatal(err)
	}
	defer prober.Close(ctx)
	cluster.Connect(t, db) // an idle session of Odoo's

	var (
		holders []*pgx.Conn
		wg      sync.WaitGroup
	)
	for i := range 4 {
		h := cluster.Connect(t, db)
		mustExec(t, h, "BEGIN")
		mustExec(t, h, fmt.Sprintf("UPDATE res_users SET active = true WHERE id = %d", 101+i))
		holders = append(holders, h)
		for range 5 {
			w := cluster.Connect(t, db)
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = w.Exec(ctx, fmt.Sprintf("UPDATE res_users SET active = false WHERE id = %d", 101+i))
			}()
		}
	}
	eventually(t, 30*time.Second, "20 waiters", func() bool {
		return scrapeOnce(t, exp).value(t, "odoo_pg_lock_waiting_backends", "database", db) == 20
	})
	m := scrapeOnce(t, exp)
	if got := m.value(t, "odoo_pg_blocking_backends", "database", db); got != 4 {
		t.Errorf("odoo_pg_blocking_backends = %v, want the 4 root blockers", got)
	}
	if got := m.value(t, "odoo_pg_backends", "database", db, "state", "idle in transaction"); got != 4 {
		t.Errorf("odoo_pg_backends{idle in transaction} = %v, want 4", got)
	}
	if got := m.value(t, "odoo_pg_backends", "database", db, "state", "active"); got != 20 {
		t.Errorf("odoo_pg_backends{active} = %v, want 20", got)
	}
	if got := m.value(t, "odoo_pg_backends", "database", db, "state", "idle"); got != 1 {
		t.Errorf("odoo_pg_backends{idle} = %v, want 1 (Odoo's idle session; the prober's is the exporter's)", got)
	}
	for _, h := range holders {
		mustExec(t, h, "ROLLBACK")
	}
	wg.Wait()
}

// TestSnapshotShared: the collectors of one scrape share one snapshot; a
// call outside a scrape reads its own.
func TestSnapshotShared(t *testing.T) {
	db := cluster.OdooDB(t, "17.0")
	src := newSource(t, cluster.DSN(db, ""), "")
	ctx := withSnapshot(context.Background(), src)
	a, err := ClusterSnapshot(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ClusterSnapshot(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("two reads in one scrape gave two snapshots")
	}
	c, err := ClusterSnapshot(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if c == a {
		t.Errorf("a read outside the scrape shared its snapshot")
	}
	if !a.Covers(db) || a.ServerVersionNum < 90000 || a.Taken.IsZero() {
		t.Errorf("snapshot %+v", a)
	}
}

// TestSnapshotAge: ages are never negative (a transaction that began after
// the snapshot's clock, as happens between now() and the view's reading).
func TestSnapshotAge(t *testing.T) {
	taken := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	s := &PGSnapshot{Taken: taken}
	for _, tc := range []struct {
		t    time.Time
		want float64
	}{
		{time.Time{}, 0},
		{taken.Add(-1500 * time.Millisecond), 1.5},
		{taken, 0},
		{taken.Add(30 * time.Millisecond), 0},
	} {
		if got := s.Age(tc.t); got != tc.want {
			t.Errorf("Age(%v) = %v, want %v", tc.t, got, tc.want)
		}
	}
}

// TestOneSnapshotPerScrape counts, with pg_stat_statements, the statements
// a warm scrape of the collectors that use the cluster-wide views (activity,
// locks, cron's running jobs) sends to the server: pg_locks is read once and
// pg_stat_activity only by the snapshot's batch (one transaction), however
// many databases and collectors use them.
func TestOneSnapshotPerScrape(t *testing.T) {
	c := pgtest.New(t, "shared_preload_libraries = 'pg_stat_statements'")
	c.Exec(t, "postgres", "CREATE EXTENSION pg_stat_statements")
	for range 3 {
		c.OdooDB(t, "17.0")
	}
	exp := newTestExporter(t, c.DSN("postgres", ""), "all", "pg_activity", "pg_locks", "cron")
	for _, name := range []string{"pg_activity", "pg_locks", "cron"} {
		if got := scrapeOnce(t, exp).value(t, "odoo_exporter_collector_success", "collector", name); got != 1 {
			t.Fatalf("warm-up scrape: collector %s failed", name)
		}
	}
	c.Exec(t, "postgres", "SELECT pg_stat_statements_reset()")
	m := scrapeOnce(t, exp)
	if got := m.value(t, "odoo_cron_running_jobs", "database", "odoo17_3"); got != 0 {
		t.Fatalf("odoo_cron_running_jobs = %v, want 0 (the cron collector saw the snapshot)", got)
	}

	conn := c.Connect(t, "postgres")
	rows, err := conn.Query(context.Background(), `SELECT query, calls FROM pg_stat_statements
WHERE query NOT LIKE '%pg_stat_statements%' AND (query LIKE '%pg_stat_activity%' OR query LIKE '%pg_locks%')`)
	if err != nil {
		t.Fatal(err)
	}
	var activity, locks int64
	var seen []string
	for rows.Next() {
		var (
			q     string
			calls int64
		)
		if err := rows.Scan(&q, &calls); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, fmt.Sprintf("%d× %.80q", calls, q))
		if strings.Contains(q, "pg_locks") {
			locks += calls
		}
		if strings.Contains(q, "pg_stat_activity") {
			activity += calls
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// The snapshot's batch: pgIdleSQL and pgBackendsSQL read
	// pg_stat_activity (one transaction: one reading of the backends'
	// status), pgBackendsSQL alone reads pg_locks.
	if locks != 1 || activity != 2 {
		t.Errorf("one scrape read pg_locks %d times and pg_stat_activity %d times, want 1 and 2 (the snapshot's batch):\n%s",
			locks, activity, strings.Join(seen, "\n"))
	}
}
