package collector

import (
	"context"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/odoo-exporter/odoo_exporter/internal/pgtest"
	"github.com/odoo-exporter/odoo_exporter/postgres"
)

func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// newPrivateCluster starts a cluster for one test, for tests that stop it.
func newPrivateCluster(t *testing.T) *pgtest.Cluster {
	t.Helper()
	return pgtest.New(t)
}

// newSource returns a Source on dsn for database (see postgres.Config).
func newSource(t testing.TB, dsn, database string) *postgres.Source {
	t.Helper()
	src, err := postgres.New(postgres.Config{
		DSN:              dsn,
		Database:         database,
		MaxConns:         4,
		StatementTimeout: 5 * time.Second,
		LockTimeout:      500 * time.Millisecond,
		ConnectTimeout:   2 * time.Second,
	}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	return src
}

// newTestExporter builds an Exporter with only the named collectors.
func newTestExporter(t testing.TB, dsn, database string, collectors ...string) *Exporter {
	t.Helper()
	exp, err := New(Deps{Logger: testLogger(), PG: newSource(t, dsn, database)}, collectors...)
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// metrics is one scrape's result.
type metrics []*dto.MetricFamily

// scrapeOnce runs one scrape of exp through a checked registry, as the
// exporter's handler does.
func scrapeOnce(t testing.TB, exp *Exporter) metrics {
	t.Helper()
	return scrapeWithin(t, exp, 15*time.Second)
}

// scrapeWithin runs one scrape bounded by d, as the handler does with
// Prometheus' timeout.
func scrapeWithin(t testing.TB, exp *Exporter, d time.Duration) metrics {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(exp.Scrape(ctx)); err != nil {
		t.Fatalf("register: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	return mfs
}

func labelsMatch(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// find returns the samples of name whose labels include the given pairs.
func (ms metrics) find(name string, labels ...string) []*dto.Metric {
	var out []*dto.Metric
	for _, mf := range ms {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m, labels) {
				out = append(out, m)
			}
		}
	}
	return out
}

func (ms metrics) has(name string, labels ...string) bool { return len(ms.find(name, labels...)) > 0 }

// value returns the one sample of name with the given label pairs.
func (ms metrics) value(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	found := ms.find(name, labels...)
	if len(found) != 1 {
		t.Fatalf("%s%v: found %d samples, want 1; scrape has:\n%s", name, labels, len(found), ms.names())
	}
	m := found[0]
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	t.Fatalf("%s is not a gauge, counter or untyped", name)
	return 0
}

func (ms metrics) names() string {
	var lines []string
	for _, mf := range ms {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			lines = append(lines, mf.GetName()+"{"+strings.Join(ls, ",")+"}")
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// eventually retries cond until it holds or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
