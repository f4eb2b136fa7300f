package collector

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/odoo-exporter/odoo_exporter/postgres"
)

// TestDiscoverAllDatabases checks --odoo.database=all: every Odoo database
// of the cluster is collected, with its own series, and non-Odoo databases
// (no ir_module_module, or base not installed) are not.
func TestDiscoverAllDatabases(t *testing.T) {
	c := newPrivateCluster(t)
	a := c.OdooDB(t, "17.0")
	b := c.OdooDB(t, "18.0")
	c.Exec(t, "postgres", "CREATE DATABASE plain")
	half := c.OdooDB(t, "16.0")
	c.Exec(t, half, "UPDATE ir_module_module SET state = 'uninstalled' WHERE name = 'base'")

	exp := newTestExporter(t, c.DSN("postgres", ""), postgres.AllDatabases, "pg_locks", "pg_activity", "cron", "modules")
	m := scrapeOnce(t, exp)
	if got := m.value(t, "odoo_databases"); got != 2 {
		t.Fatalf("odoo_databases = %v, want 2", got)
	}
	for _, db := range []string{a, b} {
		for _, name := range []string{"odoo_database_up", "odoo_cron_jobs", "odoo_modules_in_transition", "odoo_pg_deadlocks_total", "odoo_pg_query_max_seconds"} {
			if !m.has(name, "database", db) {
				t.Errorf("%s{database=%q} missing", name, db)
			}
		}
	}
	for _, db := range []string{"plain", half, "postgres"} {
		if m.has("odoo_database_up", "database", db) || m.has("odoo_pg_deadlocks_total", "database", db) {
			t.Errorf("database %q is not an Odoo database but was collected", db)
		}
	}
	for _, coll := range []string{"pg_locks", "pg_activity", "cron", "modules"} {
		if got := m.value(t, "odoo_exporter_collector_success", "collector", coll); got != 1 {
			t.Errorf("collector %s failed", coll)
		}
	}
}

// TestSessionSettings checks that every session of the exporter is
// read-only, named, and carries the configured timeouts.
func TestSessionSettings(t *testing.T) {
	db := cluster.OdooDB(t, "17.0")
	src := newSource(t, cluster.DSN(db, ""), "")
	err := src.WithConn(context.Background(), "", func(q postgres.Queryer) error {
		want := map[string]string{
			"transaction_read_only": "on",
			"application_name":      "odoo_exporter",
			"statement_timeout":     "5s",
			"lock_timeout":          "500ms",
		}
		for name, value := range want {
			var got string
			if err := q.QueryRow(context.Background(), "SELECT current_setting($1)", name).Scan(&got); err != nil {
				return err
			}
			if got != value {
				t.Errorf("%s = %q, want %q", name, got, value)
			}
		}
		_, err := q.Query(context.Background(), "CREATE TABLE exporter_wrote_this (id int)")
		if err == nil {
			t.Errorf("a write succeeded in the exporter's session")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStatementTimeout makes a collector's query slow for real (it waits
// behind an ACCESS EXCLUSIVE lock, as during a module upgrade) and checks
// that statement_timeout ends it: the collector reports failure, the others
// succeed, and the scrape returns.
func TestStatementTimeout(t *testing.T) {
	db := cluster.OdooDB(t, "17.0")
	src, err := postgres.New(postgres.Config{
		DSN: cluster.DSN(db, ""), MaxConns: 2,
		StatementTimeout: 300 * time.Millisecond, LockTimeout: 10 * time.Second,
	}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	exp, err := New(Deps{Logger: testLogger(), PG: src}, "cron", "pg")
	if err != nil {
		t.Fatal(err)
	}

	locker := cluster.Connect(t, db)
	mustExec(t, locker, "BEGIN")
	mustExec(t, locker, "LOCK TABLE ir_cron IN ACCESS EXCLUSIVE MODE")
	begin := time.Now()
	m := scrapeOnce(t, exp)
	took := time.Since(begin)
	mustExec(t, locker, "ROLLBACK")

	if got := m.value(t, "odoo_exporter_collector_success", "collector", "cron"); got != 0 {
		t.Errorf("cron collector success = %v while its query timed out, want 0", got)
	}
	if got := m.value(t, "odoo_exporter_collector_success", "collector", "pg"); got != 1 {
		t.Errorf("pg collector success = %v, want 1", got)
	}
	if took > 5*time.Second {
		t.Errorf("the scrape took %v: the statement was not ended by statement_timeout", took)
	}
	// And the lock held by Odoo was never taken from it: the collector works
	// again once the lock is gone.
	if got := scrapeOnce(t, exp).value(t, "odoo_exporter_collector_success", "collector", "cron"); got != 1 {
		t.Errorf("cron collector still failing after the lock was released")
	}
}

// TestLockTimeout: with a short lock_timeout, the collector gives up
// waiting for a lock Odoo holds.
func TestLockTimeout(t *testing.T) {
	db := cluster.OdooDB(t, "17.0")
	exp := newTestExporter(t, cluster.DSN(db, ""), "", "modules") // lock_timeout 500ms
	locker := cluster.Connect(t, db)
	mustExec(t, locker, "BEGIN")
	mustExec(t, locker, "LOCK TABLE ir_module_module IN ACCESS EXCLUSIVE MODE")
	m := scrapeOnce(t, exp)
	mustExec(t, locker, "ROLLBACK")
	if got := m.value(t, "odoo_exporter_collector_success", "collector", "modules"); got != 0 {
		t.Errorf("modules collector success = %v while ir_module_module was locked, want 0", got)
	}
}

// TestConnectionBound scrapes many databases at once and checks, from the
// server's side, that the exporter never has more sessions than its bound.
func TestConnectionBound(t *testing.T) {
	c := newPrivateCluster(t)
	for range 12 {
		c.OdooDB(t, "17.0")
	}
	src, err := postgres.New(postgres.Config{
		DSN: c.DSN("postgres", ""), Database: postgres.AllDatabases, MaxConns: 3,
		StatementTimeout: 5 * time.Second, LockTimeout: time.Second,
	}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	exp, err := New(Deps{Logger: testLogger(), PG: src}, "pg", "pg_locks", "pg_activity", "cron", "modules")
	if err != nil {
		t.Fatal(err)
	}

	watcher := c.Connect(t, "postgres")
	var (
		peak       atomic.Int64 // seen by the server
		clientPeak atomic.Int64 // open in the Source
		stop       = make(chan struct{})
		wg         sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := int64(src.OpenConns()); n > clientPeak.Load() {
				clientPeak.Store(n)
			}
			var n int64
			if err := watcher.QueryRow(context.Background(),
				"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'odoo_exporter'").Scan(&n); err == nil && n > peak.Load() {
				peak.Store(n)
			}
		}
	}()
	for range 3 {
		m := scrapeOnce(t, exp)
		if got := m.value(t, "odoo_databases"); got != 12 {
			t.Fatalf("odoo_databases = %v, want 12", got)
		}
	}
	close(stop)
	wg.Wait()
	if p := clientPeak.Load(); p > 3 || p == 0 {
		t.Errorf("peak open connections = %d, want 1..3", p)
	}
	// A closed session's backend leaves pg_stat_activity a moment after the
	// client hung up, so on a busy machine the server may still list a few
	// sessions the exporter already closed; without the bound it would see
	// all 12.
	if p := peak.Load(); p > 6 || p == 0 {
		t.Errorf("peak exporter sessions seen by the server = %d, want 1..6", p)
	}
	if n := src.OpenConns(); n > 3 {
		t.Errorf("open connections after the scrapes = %d, want <= 3", n)
	}
}

// TestRediscovery: a database created after the first scrape is collected
// once the discovery interval has passed, and a dropped one disappears.
func TestRediscovery(t *testing.T) {
	c := newPrivateCluster(t)
	first := c.OdooDB(t, "17.0")
	src, err := postgres.New(postgres.Config{
		DSN: c.DSN("postgres", ""), Database: postgres.AllDatabases, MaxConns: 2,
		StatementTimeout: 5 * time.Second, LockTimeout: time.Second,
		DiscoveryInterval: 500 * time.Millisecond,
	}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	exp, err := New(Deps{Logger: testLogger(), PG: src}, "modules")
	if err != nil {
		t.Fatal(err)
	}
	if got := scrapeOnce(t, exp).value(t, "odoo_databases"); got != 1 {
		t.Fatalf("odoo_databases = %v, want 1", got)
	}
	second := c.OdooDB(t, "18.0")
	eventually(t, 10*time.Second, "the new database to be discovered", func() bool {
		return scrapeOnce(t, exp).has("odoo_modules_in_transition", "database", second)
	})
	src.Close() // no idle session may keep the database from being dropped
	c.Exec(t, "postgres", "DROP DATABASE "+first+" WITH (FORCE)")
	eventually(t, 10*time.Second, "the dropped database to disappear", func() bool {
		m := scrapeOnce(t, exp)
		return !m.has("odoo_modules_in_transition", "database", first) && m.value(t, "odoo_databases") == 1
	})
}

// TestDatabaseRefresh checks --odoo.database-refresh-interval: the
// database collectors run in background passes and scrapes answer from
// the last pass, while cluster collectors still run in each
// scrape; the background work ends with Run.
func TestDatabaseRefresh(t *testing.T) {
	c := newPrivateCluster(t)
	a := c.OdooDB(t, "17.0")
	b := c.OdooDB(t, "18.0")
	start := func(refresh time.Duration) (*Exporter, func()) {
		t.Helper()
		exp, err := New(Deps{Logger: testLogger(), PG: newSource(t, c.DSN("postgres", ""), postgres.AllDatabases),
			DatabaseRefresh: refresh}, "pg", "modules")
		if err != nil {
			t.Fatal(err)
		}
		// Before the first pass: cluster metrics only.
		m := scrapeOnce(t, exp)
		if m.value(t, "odoo_pg_up") != 1 || m.has("odoo_modules_in_transition") || m.has("odoo_exporter_database_pass_timestamp_seconds") {
			t.Fatalf("before the first pass:\n%s", m.names())
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); exp.Run(ctx) }()
		return exp, func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after its context was cancelled")
			}
		}
	}
	transition := func(exp *Exporter, db string) float64 {
		t.Helper()
		m := scrapeOnce(t, exp)
		if !m.has("odoo_modules_in_transition", "database", db) {
			return -1
		}
		return m.value(t, "odoo_modules_in_transition", "database", db)
	}

	slow, stopSlow := start(time.Hour)
	defer stopSlow()
	eventually(t, 10*time.Second, "the first pass", func() bool { return transition(slow, a) == 0 && transition(slow, b) == 0 })
	m := scrapeOnce(t, slow)
	if got := m.value(t, "odoo_exporter_collector_success", "collector", "modules"); got != 1 {
		t.Errorf("modules success = %v, want 1", got)
	}
	if ts := m.value(t, "odoo_exporter_database_pass_timestamp_seconds"); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("pass timestamp %v is not recent", ts)
	}
	if d := m.value(t, "odoo_exporter_database_pass_duration_seconds"); d <= 0 || d > 10 {
		t.Errorf("pass duration %v, want a few milliseconds", d)
	}
	fast, stopFast := start(300 * time.Millisecond)
	defer stopFast()
	eventually(t, 10*time.Second, "the fast exporter's first pass", func() bool { return transition(fast, a) == 0 })

	c.Exec(t, a, "UPDATE ir_module_module SET state = 'to upgrade' WHERE name = 'web'")
	// The next pass is an hour away: scrapes still show the last one.
	for range 3 {
		if got := transition(slow, a); got != 0 {
			t.Fatalf("modules_in_transition = %v before the next pass, want the pass's 0", got)
		}
	}
	eventually(t, 10*time.Second, "a later pass to see the module in transition", func() bool { return transition(fast, a) == 1 })
}

// TestDeadlineIsNotDown: databases a scrape or pass did not reach before
// its deadline are absent from it, not reported down (OdooDatabaseDown
// fires on odoo_database_up == 0), and the collectors report failure.
func TestDeadlineIsNotDown(t *testing.T) {
	c := newPrivateCluster(t)
	c.OdooDB(t, "17.0")
	c.OdooDB(t, "18.0")
	exp := newTestExporter(t, c.DSN("postgres", ""), postgres.AllDatabases, "modules")
	if got := scrapeOnce(t, exp).value(t, "odoo_databases"); got != 2 { // discovery is now cached
		t.Fatalf("odoo_databases = %v, want 2", got)
	}
	for range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ch := make(chan prometheus.Metric, 64)
		results := exp.collectDatabases(ctx, ch)
		close(ch)
		for m := range ch {
			var pb dto.Metric
			if err := m.Write(&pb); err != nil {
				t.Fatal(err)
			}
			if m.Desc() == databaseUpDesc {
				t.Errorf("odoo_database_up %v sent for a database not reached before the deadline", pb.GetGauge().GetValue())
			}
		}
		if r := results["modules"]; r == nil || r.err == nil {
			t.Errorf("modules succeeded after the deadline, want a failure")
		}
	}
}
