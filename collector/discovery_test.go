package collector

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/internal/pgtest"
	"github.com/odoo-exporter/odoo_exporter/postgres"
)

// lockModules makes every query on ir_module_module of db wait until the
// returned function is called (as during a module upgrade).
func lockModules(t *testing.T, c *pgtest.Cluster, db string) func() {
	t.Helper()
	conn := c.Connect(t, db)
	mustExec(t, conn, "BEGIN")
	mustExec(t, conn, "LOCK TABLE ir_module_module IN ACCESS EXCLUSIVE MODE")
	return func() { mustExec(t, conn, "ROLLBACK") }
}

func allSource(t testing.TB, c *pgtest.Cluster, user string, cfg postgres.Config) *postgres.Source {
	t.Helper()
	cfg.DSN = c.DSN("postgres", user)
	cfg.Database = postgres.AllDatabases
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 4
	}
	if cfg.StatementTimeout == 0 {
		cfg.StatementTimeout = 5 * time.Second
	}
	if cfg.LockTimeout == 0 {
		cfg.LockTimeout = time.Minute
	}
	src, err := postgres.New(cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	return src
}

// TestDiscoveryShortDeadline: discovery does not run in the scrape's time;
// a scrape that ends before the first discovery shows no database count
// and fails the collectors that need the list (pg_up still answers), never
// a short list; once discovery ends every database is there, whatever the
// scrape's deadline.
func TestDiscoveryShortDeadline(t *testing.T) {
	c := newPrivateCluster(t)
	var dbs []string
	for range 3 {
		dbs = append(dbs, c.OdooDB(t, "17.0"))
	}
	c.Exec(t, "postgres", "CREATE DATABASE plain")
	unlock := lockModules(t, c, dbs[2]) // the first discovery cannot end
	src := allSource(t, c, "", postgres.Config{})
	exp, err := New(Deps{Logger: testLogger(), PG: src}, "pg", "pg_activity", "asset_attachments")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		m := scrapeWithin(t, exp, 300*time.Millisecond)
		if m.has("odoo_databases") {
			t.Errorf("odoo_databases = %v before the first discovery ended, want absent", m.value(t, "odoo_databases"))
		}
		if m.has("odoo_database_up") || m.has("odoo_pg_backends") {
			t.Errorf("per-database series before the first discovery ended:\n%s", m.names())
		}
		for coll, want := range map[string]float64{"pg": 1, "pg_activity": 0, "asset_attachments": 0} {
			if got := m.value(t, "odoo_exporter_collector_success", "collector", coll); got != want {
				t.Errorf("collector %s success = %v, want %v", coll, got, want)
			}
		}
		if got := m.value(t, "odoo_pg_up"); got != 1 {
			t.Errorf("odoo_pg_up = %v, want 1", got)
		}
	}
	unlock()
	eventually(t, 30*time.Second, "the first discovery", func() bool { return src.Discovery().Ran })
	m := scrapeWithin(t, exp, 300*time.Millisecond)
	if got := m.value(t, "odoo_databases"); got != 3 {
		t.Errorf("odoo_databases = %v, want 3", got)
	}
	if got := m.value(t, "odoo_exporter_discovery_success"); got != 1 {
		t.Errorf("odoo_exporter_discovery_success = %v, want 1", got)
	}
	for _, db := range dbs {
		if got := m.value(t, "odoo_database_up", "database", db); got != 1 {
			t.Errorf("odoo_database_up{%s} = %v", db, got)
		}
	}
}

// TestDiscoveryKeepsLastKnownStatus: a database the discovery could not
// check within its time budget keeps its last known status, and the
// failure shows: odoo_exporter_discovery_success 0, the errors counter,
// the collectors' success 0; it does not vanish from the count.
func TestDiscoveryKeepsLastKnownStatus(t *testing.T) {
	c := newPrivateCluster(t)
	a := c.OdooDB(t, "17.0")
	b := c.OdooDB(t, "18.0")
	src := allSource(t, c, "", postgres.Config{DiscoveryInterval: 100 * time.Millisecond, DiscoveryTimeout: 2 * time.Second})
	exp, err := New(Deps{Logger: testLogger(), PG: src}, "pg_activity", "asset_attachments")
	if err != nil {
		t.Fatal(err)
	}
	m := scrapeOnce(t, exp)
	if got := m.value(t, "odoo_databases"); got != 2 {
		t.Fatalf("odoo_databases = %v, want 2", got)
	}
	errorsBefore := m.value(t, "odoo_exporter_discovery_errors_total")

	unlock := lockModules(t, c, b)
	defer unlock()
	eventually(t, 30*time.Second, "a discovery that cannot check "+b, func() bool {
		return scrapeOnce(t, exp).value(t, "odoo_exporter_discovery_success") == 0
	})
	m = scrapeOnce(t, exp)
	if got := m.value(t, "odoo_databases"); got != 2 {
		t.Errorf("odoo_databases = %v while %s could not be checked, want 2 (its last known status)", got, b)
	}
	for _, db := range []string{a, b} {
		if !m.has("odoo_asset_attachments", "database", db) || !m.has("odoo_pg_backends", "database", db) {
			t.Errorf("series of %s missing while discovery is incomplete", db)
		}
	}
	for _, coll := range []string{"pg_activity", "asset_attachments"} {
		if got := m.value(t, "odoo_exporter_collector_success", "collector", coll); got != 0 {
			t.Errorf("collector %s success = %v while discovery is incomplete, want 0", coll, got)
		}
	}
	if got := m.value(t, "odoo_exporter_discovery_errors_total"); got <= errorsBefore {
		t.Errorf("odoo_exporter_discovery_errors_total = %v, want above %v", got, errorsBefore)
	}
	if err := src.Discovery().Err; err == nil || !strings.Contains(err.Error(), "not checked within the discovery timeout") {
		t.Errorf("discovery error = %v, want one saying a database was not checked in time", err)
	}
	if ts := m.value(t, "odoo_exporter_discovery_last_success_timestamp_seconds"); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last success %v is not the first discovery's", ts)
	}
}

// TestDiscoveryMissingGrant: a role that cannot read ir_module_module of a
// database gets an error naming the grant, the database is not silently
// left out (the discovery and the collectors fail), and a per-database
// collector denied a table says which grant is missing too.
func TestDiscoveryMissingGrant(t *testing.T) {
	c := newPrivateCluster(t)
	granted := c.OdooDB(t, "17.0")
	denied := c.OdooDB(t, "17.0")
	c.Exec(t, "postgres", "CREATE ROLE monitor LOGIN; GRANT pg_monitor TO monitor")
	c.Exec(t, granted, "GRANT SELECT ON ir_module_module, ir_attachment, ir_cron, ir_cron_trigger TO monitor")
	c.Exec(t, denied, "GRANT SELECT ON ir_module_module TO monitor") // not ir_cron

	src := allSource(t, c, "monitor", postgres.Config{})
	exp, err := New(Deps{Logger: testLogger(), PG: src}, "asset_attachments")
	if err != nil {
		t.Fatal(err)
	}
	m := scrapeOnce(t, exp)
	if got := m.value(t, "odoo_databases"); got != 2 {
		t.Fatalf("odoo_databases = %v with SELECT on ir_module_module in both, want 2", got)
	}
	ctx := context.Background()
	results := exp.collectDatabases(ctx, make(chan prometheus.Metric, 100))
	if err := results["asset_attachments"].err; err == nil || !strings.Contains(err.Error(), "GRANT SELECT ON ir_attachment TO monitor") {
		t.Errorf("asset_attachments error = %v, want the missing grant named", err)
	}

	// Now the role loses ir_module_module in one database.
	c.Exec(t, denied, "REVOKE SELECT ON ir_module_module FROM monitor")
	src2 := allSource(t, c, "monitor", postgres.Config{})
	exp2, err := New(Deps{Logger: testLogger(), PG: src2}, "pg_activity")
	if err != nil {
		t.Fatal(err)
	}
	m = scrapeOnce(t, exp2)
	if got := m.value(t, "odoo_exporter_discovery_success"); got != 0 {
		t.Errorf("odoo_exporter_discovery_success = %v, want 0", got)
	}
	if got := m.value(t, "odoo_exporter_collector_success", "collector", "pg_activity"); got != 0 {
		t.Errorf("pg_activity success = %v while a database could not be checked, want 0", got)
	}
	err = src2.Discovery().Err
	if err == nil || !strings.Contains(err.Error(), "GRANT SELECT ON ir_module_module TO monitor") || !strings.Contains(err.Error(), denied) {
		t.Errorf("discovery error = %v, want the database and the missing grant named", err)
	}
}

// TestDroppedDatabaseDisappears: a database dropped while the exporter
// runs disappears from the next collection, never reported down, and the
// collectors keep succeeding; in a scrape and in a background pass.
func TestDroppedDatabaseDisappears(t *testing.T) {
	for _, refresh := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprintf("refresh=%s", refresh), func(t *testing.T) {
			c := newPrivateCluster(t)
			keep := c.OdooDB(t, "17.0")
			drop := c.OdooDB(t, "17.0")
			src := allSource(t, c, "", postgres.Config{})
			exp, err := New(Deps{Logger: testLogger(), PG: src, DatabaseRefresh: refresh}, "pg_activity", "cron", "modules")
			if err != nil {
				t.Fatal(err)
			}
			collect := func() metrics {
				if refresh > 0 {
					exp.runPass(context.Background())
				}
				return scrapeOnce(t, exp)
			}
			if got := collect().value(t, "odoo_database_up", "database", drop); got != 1 {
				t.Fatalf("odoo_database_up{%s} = %v before the drop", drop, got)
			}
			// The exporter's idle session to it is ended by FORCE, as
			// Odoo's database manager ends every session before a drop.
			c.Exec(t, "postgres", "DROP DATABASE "+pgx.Identifier{drop}.Sanitize()+" WITH (FORCE)")
			for i := range 3 {
				m := collect()
				if m.has("odoo_database_up", "database", drop) {
					t.Errorf("collection %d after the drop: odoo_database_up{%s} = %v, want absent", i, drop, m.value(t, "odoo_database_up", "database", drop))
				}
				if got := m.value(t, "odoo_databases"); got != 1 {
					t.Errorf("collection %d after the drop: odoo_databases = %v, want 1", i, got)
				}
				for _, coll := range []string{"cron", "modules"} {
					if got := m.value(t, "odoo_exporter_collector_success", "collector", coll); got != 1 {
						t.Errorf("collection %d after the drop: %s success = %v, want 1", i, coll, got)
					}
				}
				if got := m.value(t, "odoo_database_up", "database", keep); got != 1 {
					t.Errorf("odoo_database_up{%s} = %v", keep, got)
				}
			}
		})
	}
}

// TestDiscovery200Databases: 200 Odoo databases are all found, with at
// most the configured connections, and a scrape never shows a part of
// them: before the first discovery ends the count is absent, after it is
// 200, whatever the scrape's deadline.
func TestDiscovery200Databases(t *testing.T) {
	c := newPrivateCluster(t)
	c.OdooDBs(t, "odoo", "17.0", 200, "")
	src := allSource(t, c, "", postgres.Config{})
	exp, err := New(Deps{Logger: testLogger(), PG: src, DatabaseRefresh: DefaultDatabaseRefresh}, "pg_activity", "modules")
	if err != nil {
		t.Fatal(err)
	}
	// While the first discovery runs: a count is 200 or absent, and a
	// collector that reports success has all 200 (one cut by the scrape's
	// deadline reports failure with what it had sent).
	for !src.Discovery().Ran {
		m := scrapeWithin(t, exp, 50*time.Millisecond)
		if m.has("odoo_databases") {
			if got := m.value(t, "odoo_databases"); got != 200 {
				t.Fatalf("odoo_databases = %v during the first discovery", got)
			}
		}
		if m.value(t, "odoo_exporter_collector_success", "collector", "pg_activity") == 1 {
			if n := len(m.find("odoo_pg_backends", "state", "active")); n != 200 {
				t.Fatalf("a successful scrape showed %d of the 200 databases", n)
			}
		}
	}
	exp.runPass(context.Background())
	for range 3 {
		m := scrapeWithin(t, exp, time.Second)
		if got := m.value(t, "odoo_databases"); got != 200 {
			t.Errorf("odoo_databases = %v, want 200", got)
		}
		if n := len(m.find("odoo_pg_backends", "state", "active")); n != 200 {
			t.Errorf("odoo_pg_backends for %d databases, want 200", n)
		}
		if got := m.value(t, "odoo_exporter_discovery_success"); got != 1 {
			t.Errorf("odoo_exporter_discovery_success = %v", got)
		}
		if got := m.value(t, "odoo_exporter_collector_success", "collector", "modules"); got != 1 {
			t.Errorf("modules success = %v", got)
		}
	}
	if n := src.OpenConns(); n > 4 {
		t.Errorf("%d connections open, want <= 4", n)
	}
}
