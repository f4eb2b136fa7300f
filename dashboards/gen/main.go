// Command gen writes the Grafana dashboards of odoo_exporter (one JSON file
// per dashboard) into a directory:
//
//	go run ./dashboards/gen -out dashboards
//
// The dashboards are generated rather than written by hand so that every
// query gets the same variable filters and rate interval, every panel a
// datasource, a unit and stable ids, and thresholds come from one table that
// mirrors the alert rules. The panels are declared in a small table (this
// file, panels.go, logs.go, processes.go); the dashboard model itself (JSON
// field names, defaults, schemaVersion) is the Grafana Foundation SDK's
// (github.com/grafana/grafana-foundation-sdk/go, see sdk.go). The JSON files
// are committed; a test checks that they equal this program's output.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	out := flag.String("out", ".", "directory the dashboard JSON files are written to")
	flag.Parse()
	files, err := generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(*out, n), files[n], 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}

// generate returns every dashboard as indented JSON, by file name.
func generate() (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, d := range []*dashboard{overview(), dbLocks(), cron(), bus(), httpAssets(), containers(), logs(), processes()} {
		model, err := d.build()
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", d.uid, err)
		}
		// json.MarshalIndent but for HTML escaping: PromQL's >, < and &
		// stay readable in the committed files.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(model); err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", d.uid, err)
		}
		files[d.uid+".json"] = buf.Bytes()
	}
	return files, nil
}

const (
	runbooks = "https://github.com/odoo-exporter/odoo_exporter/blob/main/docs/runbooks.md"
	// rate is the range of every rate/increase on a graph.
	rate = "$__rate_interval"
)

// Alert thresholds, as in rules/alerts_odoo.yml (a test in rules checks
// that each panel's threshold appears in the expression of the alert its
// runbook link names).
const (
	longpollP95Max   = 1    // the seed's objective (p95 < 1 s); not an alert's threshold
	longpollSlowMax  = 0.25 // OdooLongpollLatencyHigh: share of probes slower than 2.5 s
	cronInterrupted  = 3    // OdooCronJobTimeoutLoop, interrupted runs per 30 minutes
	cronLagMax       = 1800 // OdooCronStuck
	cronRunningMax   = 3600 // OdooCronJobRunningTooLong
	lockWaitMax      = 30   // OdooDbLockContention
	queryMax         = 300  // OdooLongRunningQuery
	idleInTxMax      = 600  // OdooIdleInTransaction
	deadlocksMax     = 2    // OdooDbDeadlock, per 10 minutes
	memoryRatioMax   = 0.8  // OdooMemoryLeak
	restartsMax      = 3    // OdooContainerRestarting, starts per 15 minutes
	failingBundleMax = 1    // OdooAssetsBroken (> 0)
)

// Label filters: every metric carries job and instance; per-database
// metrics carry database too.
const (
	byTarget = `job=~"$job",instance=~"$instance"`
	byDB     = byTarget + `,database=~"$database"`
)

// sel returns a selector of metric filtered by the dashboard variables and
// the extra matchers.
func sel(metric, filter string, extra ...string) string {
	m := append([]string{filter}, extra...)
	return metric + "{" + strings.Join(m, ",") + "}"
}

func t(metric string, extra ...string) string  { return sel(metric, byTarget, extra...) }
func db(metric string, extra ...string) string { return sel(metric, byDB, extra...) }

func runbook(alert string) string { return runbooks + "#" + strings.ToLower(alert) }

type dashboard struct {
	uid, title, description string
	tags                    []string
	database                bool // has the database variable
	panels                  []*panel
}

type panel struct {
	kind       string // timeseries, stat, table, row
	title      string
	unit       string
	targets    []target
	thresholds []float64 // red from each value on; nil = none
	lowIsBad   bool      // thresholds mark values below (e.g. up == 0)
	alert      string    // alert whose runbook the panel links to
	w, h       int
	upMapping  bool // values 0 and 1 read DOWN and UP
}

type target struct {
	expr, legend string
}

func q(expr, legend string) target { return target{expr: expr, legend: legend} }

func row(title string) *panel { return &panel{kind: "row", title: title} }

func ts(title, unit string, targets ...target) *panel {
	return &panel{kind: "timeseries", title: title, unit: unit, targets: targets, w: 12, h: 8}
}

func stat(title, unit string, targets ...target) *panel {
	return &panel{kind: "stat", title: title, unit: unit, targets: targets, w: 4, h: 4}
}

func (p *panel) red(v ...float64) *panel  { p.thresholds = v; return p }
func (p *panel) link(alert string) *panel { p.alert = alert; return p }
func (p *panel) width(w int) *panel       { p.w = w; return p }
func (p *panel) upDown() *panel {
	p.lowIsBad = true
	p.thresholds = []float64{1}
	p.upMapping = true
	return p
}
func (p *panel) size(w, h int) *panel { p.w, p.h = w, h; return p }
