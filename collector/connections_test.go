package collector

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/odoo-exporter/odoo_exporter/internal/pgtest"
	"github.com/odoo-exporter/odoo_exporter/postgres"
)

// exporterBackends lists the exporter's sessions as the server sees them
// (pid and backend_start).
func exporterBackends(t *testing.T, c *pgtest.Cluster) map[string]bool {
	t.Helper()
	conn := c.Connect(t, "postgres")
	rows, err := conn.Query(context.Background(),
		"SELECT pid || '@' || backend_start FROM pg_stat_activity WHERE application_name = $1", postgres.ApplicationName)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	set := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		set[s] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return set
}

// TestWarmScrapeOpensNoSession: in the README's setup (DSN to the
// postgres database, --odoo.database=all or a named database, the default
// 4 connections) and with the DSN naming the Odoo database, warm scrapes
// open no PostgreSQL session: counted by the Source and seen from the
// server (the exporter's backends keep their pid and backend_start).
func TestWarmScrapeOpensNoSession(t *testing.T) {
	c := newPrivateCluster(t)
	db := c.OdooDB(t, "17.0")
	cases := []struct {
		name, dsnDB, database string
		refresh               time.Duration
	}{
		{"named database", "postgres", db, 0},
		{"all, background passes (the default for all)", "postgres", postgres.AllDatabases, DefaultDatabaseRefresh},
		{"all, collected in the scrape", "postgres", postgres.AllDatabases, 0},
		{"DSN names the Odoo database", db, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := postgres.New(postgres.Config{
				DSN: c.DSN(tc.dsnDB, ""), Database: tc.database, MaxConns: 4,
				StatementTimeout: 5 * time.Second, LockTimeout: time.Second,
			}, testLogger())
			if err != nil {
				t.Fatal(err)
			}
			exp, err := New(Deps{Logger: testLogger(), PG: src, DatabaseRefresh: tc.refresh},
				"pg", "pg_activity", "pg_locks", "cron", "modules", "asset_attachments")
			if err != nil {
				t.Fatal(err)
			}
			if tc.refresh > 0 {
				exp.runPass(context.Background())
			}
			// Two cold scrapes open what the exporter keeps.
			scrapeOnce(t, exp)
			scrapeOnce(t, exp)
			opened := src.SessionsOpened()
			before := exporterBackends(t, c)
			if len(before) == 0 || len(before) > 4 {
				t.Fatalf("the exporter holds %d sessions, want 1..4", len(before))
			}
			for range 10 {
				m := scrapeOnce(t, exp)
				for _, coll := range []string{"pg", "pg_activity", "pg_locks", "cron", "modules", "asset_attachments"} {
					if got := m.value(t, "odoo_exporter_collector_success", "collector", coll); got != 1 {
						t.Fatalf("collector %s failed", coll)
					}
				}
				if got := m.value(t, "odoo_exporter_pg_sessions_opened_total"); got != float64(opened) {
					t.Errorf("odoo_exporter_pg_sessions_opened_total = %v, want %d", got, opened)
				}
			}
			if n := src.SessionsOpened() - opened; n != 0 {
				t.Errorf("10 warm scrapes opened %d sessions, want 0", n)
			}
			after := exporterBackends(t, c)
			for s := range after {
				if !before[s] {
					t.Errorf("new exporter session %s after the warm scrapes (before: %v)", s, before)
				}
			}
			src.Close()
		})
	}
}

// TestPassesDoNotStarveClusterCollectors: while a background pass holds
// every database connection (a database's query waits behind a lock), the
// scrape's cluster-wide collectors still answer on the reserved
// connection.
func TestPassesDoNotStarveClusterCollectors(t *testing.T) {
	c := newPrivateCluster(t)
	var dbs []string
	for range 3 {
		dbs = append(dbs, c.OdooDB(t, "17.0"))
	}
	src, err := postgres.New(postgres.Config{
		DSN: c.DSN("postgres", ""), Database: postgres.AllDatabases, MaxConns: 2,
		StatementTimeout: time.Minute, LockTimeout: time.Minute,
	}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	exp, err := New(Deps{Logger: testLogger(), PG: src, DatabaseRefresh: time.Hour}, "pg", "pg_activity", "modules")
	if err != nil {
		t.Fatal(err)
	}
	exp.runPass(context.Background()) // discovery done, connections warm
	// Every database connection of the pass waits behind an ACCESS
	// EXCLUSIVE lock.
	var lockers []*pgx.Conn
	for _, db := range dbs {
		locker := c.Connect(t, db)
		mustExec(t, locker, "BEGIN")
		mustExec(t, locker, "LOCK TABLE ir_module_module IN ACCESS EXCLUSIVE MODE")
		lockers = append(lockers, locker)
	}
	passCtx, cancelPass := context.WithCancel(context.Background())
	passDone := make(chan struct{})
	go func() { defer close(passDone); exp.runPass(passCtx) }()
	watcher := c.Connect(t, "postgres")
	eventually(t, 30*time.Second, "the pass to wait for the locks", func() bool {
		var n int
		err := watcher.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
WHERE application_name = $1 AND wait_event_type = 'Lock'`, postgres.ApplicationName).Scan(&n)
		return err == nil && n == src.DatabaseConns()
	})
	m := scrapeOnce(t, exp)
	for _, coll := range []string{"pg", "pg_activity"} {
		if got := m.value(t, "odoo_exporter_collector_success", "collector", coll); got != 1 {
			t.Errorf("collector %s failed during the pass", coll)
		}
	}
	for _, db := range dbs {
		if !m.has("odoo_pg_backends", "database", db, "state", "active") {
			t.Errorf("odoo_pg_backends{database=%s} missing during the pass", db)
		}
	}
	cancelPass()
	<-passDone
	for _, l := range lockers {
		mustExec(t, l, "ROLLBACK")
	}
	if n := src.OpenConns(); n > 2 {
		t.Errorf("%d connections open, want <= 2", n)
	}
}

// TestMaxConnsOneSharesTheConnection: with --pg.max-connections=1 nothing
// is reserved and the scrape still works on the one connection.
func TestMaxConnsOneSharesTheConnection(t *testing.T) {
	db := cluster.OdooDB(t, "17.0")
	src, err := postgres.New(postgres.Config{
		DSN: cluster.DSN("postgres", ""), Database: db, MaxConns: 1,
		StatementTimeout: 5 * time.Second, LockTimeout: time.Second,
	}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	exp, err := New(Deps{Logger: testLogger(), PG: src}, "pg", "pg_activity", "pg_locks", "cron", "modules")
	if err != nil {
		t.Fatal(err)
	}
	m := scrapeOnce(t, exp)
	for _, coll := range []string{"pg", "pg_activity", "pg_locks", "cron", "modules"} {
		if got := m.value(t, "odoo_exporter_collector_success", "collector", coll); got != 1 {
			t.Errorf("collector %s failed", coll)
		}
	}
	if n := src.OpenConns(); n != 1 {
		t.Errorf("%d connections open, want 1", n)
	}
}
