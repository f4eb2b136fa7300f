package collector

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/odoo-exporter/odoo_exporter/internal/pgtest"
	"github.com/odoo-exporter/odoo_exporter/postgres"
)

// pgCollectors are the collectors benchmarked; BENCH_COLLECTORS="cron
// modules" narrows them to see what each costs.
var pgCollectors = benchCollectors()

func benchCollectors() []string {
	if s := os.Getenv("BENCH_COLLECTORS"); s != "" {
		return strings.Fields(s)
	}
	return []string{"pg", "pg_activity", "pg_locks", "cron", "modules"}
}

// oneDatabase makes an Odoo 17 database with 100 cron jobs (10 overdue,
// 1 running), 200 client backends and 20 of them waiting for a lock, and
// returns its name; the backends end with b.
func oneDatabase(b *testing.B, c *pgtest.Cluster) string {
	db := c.OdooDB(b, "17.0")
	ctx := context.Background()
	setup := c.Connect(b, db)
	if _, err := setup.Exec(ctx, `INSERT INTO ir_act_server (name) SELECT jsonb_build_object('en_US', 'job ' || g) FROM generate_series(1, 100) g;
INSERT INTO ir_cron (ir_actions_server_id, cron_name, user_id, nextcall)
SELECT g, 'job ' || g, 1, now() AT TIME ZONE 'UTC' + (CASE WHEN g <= 10 THEN -1 ELSE 1 END) * interval '1 hour' FROM generate_series(1, 100) g;
INSERT INTO res_users (id, login) SELECT 100 + g, 'u' || g FROM generate_series(1, 20) g`); err != nil {
		b.Fatal(err)
	}
	// 200 backends: a blocker holding 20 rows, 20 waiters, 179 idle.
	conns := make([]*pgx.Conn, 0, 200)
	for range 200 {
		conns = append(conns, c.Connect(b, db))
	}
	blocker := conns[0]
	mustExecTB(b, blocker, "BEGIN")
	mustExecTB(b, blocker, "UPDATE res_users SET active = true WHERE id > 100")
	for i := 1; i <= 20; i++ {
		go conns[i].Exec(ctx, fmt.Sprintf("UPDATE res_users SET active = false WHERE id = %d", 100+i))
	}
	cron := conns[21]
	mustExecTB(b, cron, "BEGIN")
	mustExecTB(b, cron, "SELECT * FROM ir_cron WHERE id in (5) FOR NO KEY UPDATE SKIP LOCKED")
	b.Cleanup(func() {
		mustExecTB(b, blocker, "ROLLBACK")
		mustExecTB(b, cron, "ROLLBACK")
	})
	return db
}

// checkOneDatabase fails b unless a scrape of exp sees what oneDatabase
// made.
func checkOneDatabase(b *testing.B, exp *Exporter, db string) {
	eventually(b, 10*time.Second, "20 waiters", func() bool {
		m := scrapeOnce(b, exp)
		return m.has("odoo_cron_jobs") && m.value(b, "odoo_pg_lock_waiting_backends", "database", db) == 20
	})
	m := scrapeOnce(b, exp)
	if got := m.value(b, "odoo_cron_jobs", "database", db); got != 100 {
		b.Fatalf("odoo_cron_jobs = %v", got)
	}
	if got := m.value(b, "odoo_cron_running_jobs", "database", db); got != 1 {
		b.Fatalf("odoo_cron_running_jobs = %v", got)
	}
}

// BenchmarkScrapeOneDatabase: one scrape of the PostgreSQL collectors on
// the database of oneDatabase, the DSN naming it.
func BenchmarkScrapeOneDatabase(b *testing.B) {
	db := oneDatabase(b, cluster)
	src := newSource(b, cluster.DSN(db, ""), "")
	exp, err := New(Deps{Logger: testLogger(), PG: src}, pgCollectors...)
	if err != nil {
		b.Fatal(err)
	}
	checkOneDatabase(b, exp, db)
	benchScrape(b, exp, src)
}

// BenchmarkScrapeREADMESetup: the README's setup, the DSN naming the
// postgres database and the default 4 connections, on the database of
// oneDatabase: --odoo.database=<name>, --odoo.database=all (background
// passes every minute, the default) and --odoo.database=all with
// --odoo.database-refresh-interval=0s. sessions/scrape is what a warm
// scrape opens (0 is the aim). The cluster holds that database only.
func BenchmarkScrapeREADMESetup(b *testing.B) {
	c := pgtest.New(b)
	db := oneDatabase(b, c)
	for _, tc := range []struct {
		name, database string
		refresh        time.Duration
	}{
		{"named", db, 0},
		{"all", postgres.AllDatabases, DefaultDatabaseRefresh},
		{"all-per-scrape", postgres.AllDatabases, 0},
	} {
		b.Run(tc.name, func(b *testing.B) {
			src := newSource(b, c.DSN("postgres", ""), tc.database)
			exp, err := New(Deps{Logger: testLogger(), PG: src, DatabaseRefresh: tc.refresh}, pgCollectors...)
			if err != nil {
				b.Fatal(err)
			}
			if tc.refresh > 0 {
				exp.runPass(context.Background())
			}
			checkOneDatabase(b, exp, db)
			benchScrape(b, exp, src)
		})
	}
}

// BenchmarkScrape200Databases: one scrape of 200 Odoo databases of one
// cluster (each with 20 cron jobs) with --odoo.database=all and at most 4
// connections, collected in the scrape (per-scrape) or answered from a
// background pass (background, --odoo.database-refresh-interval).
func BenchmarkScrape200Databases(b *testing.B) {
	c := pgtest.New(b)
	c.OdooDBs(b, "odoo", "17.0", 200, `INSERT INTO ir_act_server (name) SELECT jsonb_build_object('en_US', 'job ' || g) FROM generate_series(1, 20) g;
INSERT INTO ir_cron (ir_actions_server_id, cron_name, user_id, nextcall)
SELECT g, 'job ' || g, 1, now() AT TIME ZONE 'UTC' - interval '1 minute' FROM generate_series(1, 20) g`)
	b.Run("per-scrape", func(b *testing.B) {
		exp, src := bench200Exporter(b, c, 0)
		benchScrape(b, exp, src)
		if n := src.OpenConns(); n > 4 {
			b.Fatalf("%d connections open, want <= 4", n)
		}
	})
	// --odoo.database-refresh-interval: the scrape answers from the last
	// background pass, while no pass runs (idle) and while one runs
	// (during-pass: the scrape's cluster collectors then share the 4
	// connections with it); pass-s is what one pass over the 200 takes.
	b.Run("background-idle", func(b *testing.B) {
		exp, src := bench200Exporter(b, c, time.Hour)
		begin := time.Now()
		exp.runPass(context.Background())
		pass := time.Since(begin)
		benchScrape(b, exp, src)
		b.ReportMetric(pass.Seconds(), "pass-s")
		if n := src.OpenConns(); n > 4 {
			b.Fatalf("%d connections open, want <= 4", n)
		}
	})
	b.Run("background-during-pass", func(b *testing.B) {
		exp, src := bench200Exporter(b, c, time.Hour)
		done := make(chan time.Duration)
		go func() {
			begin := time.Now()
			exp.runPass(context.Background())
			done <- time.Since(begin)
		}()
		benchScrape(b, exp, src)
		select {
		case pass := <-done:
			b.Fatalf("the pass (%s) ended before the scrapes: they were not measured during a pass", pass)
		default:
		}
		b.ReportMetric((<-done).Seconds(), "pass-s")
		if n := src.OpenConns(); n > 4 {
			b.Fatalf("%d connections open, want <= 4", n)
		}
	})
}

// bench200Exporter returns an exporter of the benchmarked collectors over
// every database of c, at most 4 connections, that has scraped once and
// seen the 200 databases (in a background pass when refresh > 0).
func bench200Exporter(b *testing.B, c *pgtest.Cluster, refresh time.Duration) (*Exporter, *postgres.Source) {
	src, err := postgres.New(postgres.Config{
		DSN: c.DSN("postgres", ""), Database: postgres.AllDatabases, MaxConns: 4,
		StatementTimeout: 5 * time.Second, LockTimeout: time.Second,
	}, testLogger())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(src.Close)
	exp, err := New(Deps{Logger: testLogger(), PG: src, DatabaseRefresh: refresh}, pgCollectors...)
	if err != nil {
		b.Fatal(err)
	}
	if refresh > 0 {
		exp.runPass(context.Background())
	}
	if got := scrapeWithin(b, exp, time.Minute).value(b, "odoo_databases"); got != 200 {
		b.Fatalf("odoo_databases = %v, want 200", got)
	}
	return exp, src
}

// benchScrape times scrapes and reports the median and the 90th
// percentile besides Go's mean, and the sessions src opened per scrape.
func benchScrape(b *testing.B, exp *Exporter, src *postgres.Source) {
	var durations []time.Duration
	opened := src.SessionsOpened()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		begin := time.Now()
		m := scrapeWithin(b, exp, time.Minute) // 200 databases per scrape take seconds
		durations = append(durations, time.Since(begin))
		for _, mf := range m {
			if mf.GetName() == "odoo_exporter_collector_success" {
				for _, s := range mf.GetMetric() {
					if s.GetGauge().GetValue() != 1 {
						b.Fatalf("a collector failed during the benchmark:\n%s", m.names())
					}
				}
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(src.SessionsOpened()-opened)/float64(len(durations)), "sessions/scrape")
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(durations[len(durations)*9/10].Microseconds())/1000, "p90-ms")
}

func mustExecTB(tb testing.TB, conn *pgx.Conn, sql string) {
	tb.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}
