package collector

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stuckCollector sends one metric, then blocks until released, ignoring
// its context: a collector that would overshoot the scrape's deadline.
type stuckCollector struct {
	release chan struct{}
}

var stuckDesc = prometheus.NewDesc("test_stuck_partial", "Sent before the collector got stuck.", nil, nil)

func (c *stuckCollector) Describe(ch chan<- *prometheus.Desc) { ch <- stuckDesc }

func (c *stuckCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	ch <- prometheus.MustNewConstMetric(stuckDesc, prometheus.GaugeValue, 1)
	<-c.release
	return nil
}

// TestScrapeAnswersAtDeadline: a collector still running at the scrape's
// deadline does not hold the answer: the scrape returns with the other
// collectors' metrics, what the stuck one had sent, and its success 0;
// Close waits for it to end.
func TestScrapeAnswersAtDeadline(t *testing.T) {
	db := cluster.OdooDB(t, "17.0")
	exp := newTestExporter(t, cluster.DSN(db, ""), "", "pg", "pg_activity", "modules")
	stuck := &stuckCollector{release: make(chan struct{})}
	exp.collectors["stuck"] = stuck

	for range 3 {
		// Without the deadline handling this never returns (the test
		// binary's timeout fails it).
		m := scrapeWithin(t, exp, 500*time.Millisecond)
		if got := m.value(t, "odoo_exporter_collector_success", "collector", "stuck"); got != 0 {
			t.Errorf("stuck collector success = %v, want 0", got)
		}
		if got := m.value(t, "test_stuck_partial"); got != 1 {
			t.Errorf("the stuck collector's metric sent before the deadline = %v, want 1", got)
		}
		for _, coll := range []string{"pg", "pg_activity", "modules"} {
			if got := m.value(t, "odoo_exporter_collector_success", "collector", coll); got != 1 {
				t.Errorf("collector %s success = %v, want 1", coll, got)
			}
		}
		if got := m.value(t, "odoo_pg_up"); got != 1 {
			t.Errorf("odoo_pg_up = %v", got)
		}
	}
	closed := make(chan error)
	go func() { closed <- exp.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while a collector left by a scrape was still running")
	case <-time.After(200 * time.Millisecond):
	}
	close(stuck.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	delete(exp.collectors, "stuck")
	m := scrapeOnce(t, exp)
	if got := m.value(t, "odoo_exporter_collector_success", "collector", "pg"); got != 1 {
		t.Errorf("pg success = %v after the stuck collector ended", got)
	}
}

// TestDatabasesAtDeadline: database collectors cut by the deadline in a
// per-scrape collection fail, and the scrape still answers.
func TestDatabasesAtDeadline(t *testing.T) {
	c := newPrivateCluster(t)
	db := c.OdooDB(t, "17.0")
	src := newSource(t, c.DSN(db, ""), "")
	exp, err := New(Deps{Logger: testLogger(), PG: src}, "pg", "modules")
	if err != nil {
		t.Fatal(err)
	}
	scrapeOnce(t, exp)
	unlock := lockModules(t, c, db) // lock_timeout is 500 ms, past the deadline below
	defer unlock()
	m := scrapeWithin(t, exp, 200*time.Millisecond)
	if got := m.value(t, "odoo_exporter_collector_success", "collector", "modules"); got != 0 {
		t.Errorf("modules success = %v, want 0", got)
	}
	if got := m.value(t, "odoo_exporter_collector_success", "collector", "pg"); got != 1 {
		t.Errorf("pg success = %v, want 1", got)
	}
	if m.has("odoo_database_up", "database", db) && m.value(t, "odoo_database_up", "database", db) == 0 {
		t.Errorf("odoo_database_up{%s} = 0 for a database cut by the deadline", db)
	}
}
