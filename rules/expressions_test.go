package rules_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/odoo-exporter/odoo_exporter/collector"
	"github.com/odoo-exporter/odoo_exporter/dashboards"
	"github.com/odoo-exporter/odoo_exporter/heal"
	"github.com/odoo-exporter/odoo_exporter/postgres"
)

// catalog maps every metric name Prometheus can hold for this project to
// the labels its series may carry; a nil label set allows any label.
type catalog map[string]map[string]bool

// targetLabels are added by Prometheus to every scraped series.
var targetLabels = []string{"job", "instance"}

func (c catalog) add(name string, labels ...string) {
	if c[name] == nil {
		c[name] = map[string]bool{}
	}
	for _, l := range append(labels, targetLabels...) {
		c[name][l] = true
	}
}

func (c catalog) addAny(name string) { c[name] = nil }

// addFamily adds a metric by type: a histogram is stored as its _bucket,
// _sum and _count series, a summary as its _sum and _count and quantiles.
func (c catalog) addFamily(name string, typ dto.MetricType, labels ...string) {
	switch typ {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		c.add(name+"_bucket", append(labels, "le")...)
		c.add(name+"_sum", labels...)
		c.add(name+"_count", labels...)
	case dto.MetricType_SUMMARY:
		c.add(name, append(labels, "quantile")...)
		c.add(name+"_sum", labels...)
		c.add(name+"_count", labels...)
	default:
		c.add(name, labels...)
	}
}

var (
	descName        = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*")`)
	descConstLabels = regexp.MustCompile(`constLabels: \{(.*)\}, variableLabels: `)
	descConstName   = regexp.MustCompile(`(?:^|,)([a-zA-Z_][a-zA-Z0-9_]*)="`)
	descVarLabels   = regexp.MustCompile(`variableLabels: \{([^}]*)\}\}$`)
)

// parseDesc reads the name and label names of a descriptor: client_golang's
// Desc has no getters, only String().
func parseDesc(d *prometheus.Desc) (string, []string, error) {
	s := d.String()
	m := descName.FindStringSubmatch(s)
	if m == nil {
		return "", nil, fmt.Errorf("no fqName in %s", s)
	}
	name, err := strconv.Unquote(m[1])
	if err != nil {
		return "", nil, fmt.Errorf("fqName of %s: %w", s, err)
	}
	var labels []string
	if m := descConstLabels.FindStringSubmatch(s); m != nil {
		for _, l := range descConstName.FindAllStringSubmatch(m[1], -1) {
			labels = append(labels, l[1])
		}
	}
	if m := descVarLabels.FindStringSubmatch(s); m != nil && m[1] != "" {
		for _, l := range strings.Split(m[1], ",") {
			labels = append(labels, strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"))
		}
	}
	return name, labels, nil
}

func describe(c interface{ Describe(chan<- *prometheus.Desc) }) []*prometheus.Desc {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	var out []*prometheus.Desc
	for d := range ch {
		out = append(out, d)
	}
	return out
}

// recorder is a Registerer that keeps what is registered on it.
type recorder struct{ cs []prometheus.Collector }

func (r *recorder) Register(c prometheus.Collector) error   { r.cs = append(r.cs, c); return nil }
func (r *recorder) MustRegister(cs ...prometheus.Collector) { r.cs = append(r.cs, cs...) }
func (r *recorder) Unregister(prometheus.Collector) bool    { return false }

// deadHistograms are histograms of the exporter that a scrape on dead
// sources does not expose (they are per database), so that it cannot type
// them.
var deadHistograms = map[string]bool{"odoo_cron_job_age_seconds": true}

var (
	catalogOnce sync.Once
	catalogErr  error
	theCatalog  catalog
)

// exporterCatalog builds the exporter's collectors (all of them, on sources
// that do not answer), the process-wide collectors of cmd/odoo_exporter
// and the healer's metrics, and lists what they describe. One scrape on the
// dead sources gives the types (histograms) of what is always exposed.
func exporterCatalog(t *testing.T) catalog {
	t.Helper()
	catalogOnce.Do(func() { theCatalog, catalogErr = buildCatalog() })
	if catalogErr != nil {
		t.Fatal(catalogErr)
	}
	return theCatalog
}

func buildCatalog() (catalog, error) {
	const dead = "http://127.0.0.1:1"
	if _, err := kingpin.CommandLine.Parse([]string{
		"--odoo.web-url=" + dead, "--odoo.public-url=" + dead, "--odoo.gevent-url=" + dead,
		"--docker.host=tcp://127.0.0.1:1",
		"--collector.odoo_log.file=/nonexistent/odoo.log", "--collector.odoo_log.per-job",
	}); err != nil {
		return nil, fmt.Errorf("exporter flags: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	src, err := postgres.New(postgres.Config{
		DSN: "postgres://x@127.0.0.1:1/x", MaxConns: 1, ConnectTimeout: time.Second,
		StatementTimeout: time.Second, LockTimeout: time.Second, DiscoveryInterval: time.Minute,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("postgres source: %w", err)
	}
	defer src.Close()
	exp, err := collector.New(collector.Deps{Logger: logger, PG: src}, collector.Names()...)
	if err != nil {
		return nil, fmt.Errorf("building the collectors: %w", err)
	}
	if got, want := len(exp.Enabled()), len(collector.Names()); got != want {
		return nil, fmt.Errorf("only %v of the collectors %v were built: give the missing ones a source in buildCatalog", exp.Enabled(), collector.Names())
	}

	cat := catalog{}
	types := map[string]dto.MetricType{}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(exp.Scrape(ctx),
		versioncollector.NewCollector("odoo_exporter"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	fams, _ := reg.Gather() // errors are the dead sources'; the families gathered are kept
	for _, f := range fams {
		types[f.GetName()] = f.GetType()
	}
	// The process-wide collectors are what main registers beside the scrape.
	var described []*prometheus.Desc
	described = append(described, describe(exp)...)
	for _, c := range []prometheus.Collector{
		versioncollector.NewCollector("odoo_exporter"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		described = append(described, describe(c)...)
	}
	for _, d := range described {
		name, labels, err := parseDesc(d)
		if err != nil {
			return nil, err
		}
		typ, ok := types[name]
		if !ok && deadHistograms[name] {
			typ = dto.MetricType_HISTOGRAM
		}
		cat.addFamily(name, typ, labels...)
	}
	// The healer's metrics, typed by their collectors.
	var rec recorder
	heal.NewMetrics(&rec)
	for _, c := range rec.cs {
		typ := collectorType(c)
		for _, d := range describe(c) {
			name, labels, err := parseDesc(d)
			if err != nil {
				return nil, err
			}
			cat.addFamily(name, typ, labels...)
		}
	}
	// Prometheus' own series.
	cat.add("up")
	cat.addAny("ALERTS")
	cat.addAny("ALERTS_FOR_STATE")
	return cat, nil
}

// collectorType tells histograms and summaries from other metrics: a vec
// by its Go type (it has no series before its first use), a single metric
// by what it writes.
func collectorType(c prometheus.Collector) dto.MetricType {
	switch c.(type) {
	case *prometheus.HistogramVec:
		return dto.MetricType_HISTOGRAM
	case *prometheus.SummaryVec:
		return dto.MetricType_SUMMARY
	}
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	typ := dto.MetricType_UNTYPED
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			continue
		}
		switch {
		case pb.Histogram != nil:
			typ = dto.MetricType_HISTOGRAM
		case pb.Summary != nil:
			typ = dto.MetricType_SUMMARY
		}
	}
	return typ
}

// withRecordingRules returns the catalog plus the pack's recording rules.
func withRecordingRules(t *testing.T, c catalog) catalog {
	t.Helper()
	out := catalog{}
	for k, v := range c {
		out[k] = v
	}
	for _, r := range loadRules(t) {
		if r.Record != "" {
			out.addAny(r.Record)
		}
	}
	return out
}

// Values the dashboards' variables are replaced with before parsing.
var dashboardVars = map[string]string{
	"__rate_interval": "5m",
	"datasource":      "DATASOURCE",
	"job":             "JOB",
	"instance":        "INSTANCE",
	"database":        "DATABASE",
}

// checkExpr parses expr and checks that every selector names a metric of
// cat and matches only labels that metric has. With wantDatabaseFilter,
// selectors of metrics that have a database label must filter it by the
// dashboard's $database variable.
func checkExpr(cat catalog, expr string, wantDatabaseFilter bool) []error {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return []error{err}
	}
	var errs []error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == "__name__" && name == "" {
				name = m.Value
			}
		}
		labels, known := cat[name]
		if !known {
			errs = append(errs, fmt.Errorf("selector %s: metric %q is not exposed by the exporter, the healer or Prometheus, nor recorded by the pack", vs, name))
			return nil
		}
		if labels == nil {
			return nil
		}
		filtered := false
		for _, m := range vs.LabelMatchers {
			if m.Name == "__name__" {
				continue
			}
			if !labels[m.Name] {
				errs = append(errs, fmt.Errorf("selector %s: %s has no label %q", vs, name, m.Name))
			}
			if m.Name == "database" && m.Value == dashboardVars["database"] {
				filtered = true
			}
		}
		if wantDatabaseFilter && labels["database"] && !filtered {
			errs = append(errs, fmt.Errorf("selector %s: not filtered by $database", vs))
		}
		return nil
	})
	return errs
}

func TestRuleExpressions(t *testing.T) {
	cat := withRecordingRules(t, exporterCatalog(t))
	for _, r := range loadRules(t) {
		for _, err := range checkExpr(cat, r.Expr, false) {
			t.Errorf("%s%s: %v", r.Alert, r.Record, err)
		}
	}
}

func TestDashboardExpressions(t *testing.T) {
	cat := withRecordingRules(t, exporterCatalog(t))
	qs, err := dashboards.Queries()
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) == 0 {
		t.Fatal("no dashboard queries")
	}
	for _, q := range qs {
		for _, err := range checkExpr(cat, dashboards.Expand(q.Expr, dashboardVars), true) {
			t.Errorf("%s / %s: %v", q.Dashboard, q.Panel, err)
		}
	}
}

// TestCheckExprRejects proves the checker fails on what it must catch: a
// renamed metric, a histogram suffix on a gauge, a label the metric does
// not have, a missing $database filter, a parse error.
func TestCheckExprRejects(t *testing.T) {
	cat := withRecordingRules(t, exporterCatalog(t))
	for _, tc := range []struct {
		expr   string
		dbVar  bool
		reject bool
	}{
		{`odoo_pg_up == 0`, false, false},
		{`odoo_pg_upp == 0`, false, true},
		{`odoo_pg_up_bucket`, false, true},
		{`odoo_cron_lag_max_seconds{database="prod"} > 1800`, false, false},
		{`odoo_pg_up{database="prod"}`, false, true},
		{`{__name__="odoo_cron_lag_seconds"}`, false, true},
		{`odoo_cron_lag_max_seconds{job="x"}`, true, true},
		{`odoo_cron_lag_max_seconds{database=~"DATABASE"}`, true, false},
		{`histogram_quantile(0.95, sum by (le) (rate(odoo_longpoll_latency_seconds_bucket[5m])))`, false, false},
		{`rate(odoo_longpoll_latency_seconds_count[5m]) / rate(odoo_longpoll_latency_second_sum[5m])`, false, true},
		{`sum(rate(odoo_pg_deadlocks_total[5m])`, false, true},
		{`odoo:longpoll_latency_seconds:p95_5m > 1`, false, false},
		{`ALERTS{alertstate="firing",whatever="x"}`, false, false},
	} {
		errs := checkExpr(cat, tc.expr, tc.dbVar)
		if tc.reject && len(errs) == 0 {
			t.Errorf("%s: accepted, want an error", tc.expr)
		}
		if !tc.reject && len(errs) > 0 {
			t.Errorf("%s: %v", tc.expr, errs)
		}
	}
}

// TestCatalogFromRegistry checks a few names the catalog must have taken
// from the registries, whatever the rules use.
func TestCatalogFromRegistry(t *testing.T) {
	cat := exporterCatalog(t)
	for _, name := range []string{
		"odoo_exporter_collector_success", "odoo_exporter_build_info", "odoo_pg_up",
		"go_goroutines", "process_resident_memory_bytes", "odoo_healer_actions_total",
		"odoo_healer_action_duration_seconds_bucket", "odoo_longpoll_latency_seconds_bucket",
	} {
		if _, ok := cat[name]; !ok {
			t.Errorf("%s missing from the catalog", name)
		}
	}
	if _, ok := cat["odoo_longpoll_latency_seconds"]; ok {
		t.Error("the histogram's bare name must not be selectable")
	}
}

// dashboardPanel is the part of a panel read for the threshold check.
type dashboardPanel struct {
	Title string `json:"title"`
	Links []struct {
		URL string `json:"url"`
	} `json:"links"`
	FieldConfig struct {
		Defaults struct {
			Thresholds struct {
				Steps []struct {
					Value *float64 `json:"value"`
				} `json:"steps"`
			} `json:"thresholds"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

// TestDashboardThresholdsMatchAlerts checks that every panel linking to an
// alert's runbook resolves to a runbook section and that its thresholds are
// the alert's: the value appears in a comparison of the alert's expression
// (1 standing for "> 0" and "== 0" on counts and up/down values).
func TestDashboardThresholdsMatchAlerts(t *testing.T) {
	exprs := map[string]string{}
	for _, r := range alerts(loadRules(t)) {
		exprs[runbookPrefix+strings.ToLower(r.Alert)] = r.Expr
	}
	files, err := dashboards.Files()
	if err != nil {
		t.Fatal(err)
	}
	linked := 0
	for name, b := range files {
		var d struct{ Panels []dashboardPanel }
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		for _, p := range d.Panels {
			for _, l := range p.Links {
				expr, ok := exprs[l.URL]
				if !ok {
					t.Errorf("%s / %s: link %s is no alert's runbook_url", name, p.Title, l.URL)
					continue
				}
				linked++
				for _, s := range p.FieldConfig.Defaults.Thresholds.Steps {
					if s.Value == nil {
						continue
					}
					v := strconv.FormatFloat(*s.Value, 'g', -1, 64)
					cmp := regexp.MustCompile(`(>|>=|<|==)\s*` + regexp.QuoteMeta(v) + `\b`)
					zero := regexp.MustCompile(`(>|==)\s*0\b`)
					if !cmp.MatchString(expr) && !(v == "1" && zero.MatchString(expr)) {
						t.Errorf("%s / %s: threshold %s is not in the alert's expression %q", name, p.Title, v, expr)
					}
				}
			}
		}
	}
	if linked == 0 {
		t.Error("no panel links to a runbook")
	}
}
