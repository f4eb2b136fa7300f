// Command gen writes the Grafana dashboards of odoo_exporter (one JSON file
// per dashboard) into a directory:
//
//	go run ./dashboards/gen -out dashboards
//
// The dashboards are generated rather than written by hand so that every
// query gets the same variable filters and rate interval, every panel a
// datasource, a unit and stable ids, and thresholds come from one table that
// mirrors the alert rules. The JSON files are committed; a test checks that
// they equal this program's output.
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
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(d.json()); err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", d.uid, err)
		}
		files[d.uid+".json"] = buf.Bytes()
	}
	return files, nil
}

const (
	schemaVersion = 39
	runbooks      = "https://github.com/odoo-exporter/odoo_exporter/blob/main/docs/runbooks.md"
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
	mappings   []any
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
	p.mappings = upMappings
	return p
}
func (p *panel) size(w, h int) *panel { p.w, p.h = w, h; return p }

var upMappings = []any{
	map[string]any{"type": "value", "options": map[string]any{
		"0": map[string]any{"text": "DOWN", "color": "red"},
		"1": map[string]any{"text": "UP", "color": "green"},
	}},
}

var datasource = map[string]any{"type": "prometheus", "uid": "${datasource}"}

func (d *dashboard) json() map[string]any {
	var panels []any
	id, x, y, rowH := 1, 0, 0, 0
	for _, p := range d.panels {
		if p.kind == "row" {
			if x > 0 {
				y += rowH
			}
			x, rowH = 0, 0
			panels = append(panels, map[string]any{
				"type": "row", "id": id, "title": p.title, "collapsed": false, "panels": []any{},
				"gridPos": map[string]any{"h": 1, "w": 24, "x": 0, "y": y},
			})
			id++
			y++
			continue
		}
		if x+p.w > 24 {
			x, y = 0, y+rowH
			rowH = 0
		}
		panels = append(panels, p.json(id, x, y))
		id++
		x += p.w
		if p.h > rowH {
			rowH = p.h
		}
	}
	vars := []any{
		map[string]any{
			"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
			"current": map[string]any{}, "hide": 0, "refresh": 1, "regex": "", "includeAll": false, "multi": false,
		},
		queryVar("job", "Job", "label_values(odoo_exporter_build_info, job)"),
		queryVar("instance", "Instance", `label_values(odoo_exporter_build_info{job=~"$job"}, instance)`),
	}
	if d.database {
		vars = append(vars, queryVar("database", "Database", `label_values(odoo_database_up{job=~"$job",instance=~"$instance"}, database)`))
	}
	return map[string]any{
		"uid":                  d.uid,
		"title":                d.title,
		"description":          d.description,
		"tags":                 append([]string{"odoo"}, d.tags...),
		"schemaVersion":        schemaVersion,
		"version":              1,
		"editable":             true,
		"graphTooltip":         1,
		"refresh":              "1m",
		"time":                 map[string]any{"from": "now-6h", "to": "now"},
		"timepicker":           map[string]any{},
		"timezone":             "",
		"fiscalYearStartMonth": 0,
		"liveNow":              false,
		"weekStart":            "",
		"links": []any{
			map[string]any{"title": "Odoo dashboards", "type": "dashboards", "tags": []string{"odoo"},
				"asDropdown": true, "includeVars": true, "keepTime": true, "icon": "external link", "targetBlank": false},
			map[string]any{"title": "Runbooks", "type": "link", "url": runbooks, "icon": "doc",
				"targetBlank": true, "tags": []string{}, "asDropdown": false, "includeVars": false, "keepTime": false},
		},
		"annotations": map[string]any{"list": []any{
			map[string]any{
				"builtIn": 1, "datasource": map[string]any{"type": "grafana", "uid": "-- Grafana --"},
				"enable": true, "hide": true, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
				"type": "dashboard",
			},
			map[string]any{
				"name": "Odoo alerts", "datasource": datasource, "enable": true, "hide": false,
				"iconColor": "red",
				"expr":      `ALERTS{alertstate="firing",alertname=~"Odoo.*",` + byTarget + `}`,
				"step":      "1m", "titleFormat": "{{alertname}}",
				"textFormat": "{{severity}} {{priority}} {{database}}{{name}}{{target}}",
				"tagKeys":    "severity,priority", "useValueForTime": false,
			},
		}},
		"templating": map[string]any{"list": vars},
		"panels":     panels,
	}
}

func queryVar(name, label, query string) map[string]any {
	return map[string]any{
		"name": name, "label": label, "type": "query", "datasource": datasource,
		"query":      map[string]any{"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
		"definition": query, "refresh": 2, "sort": 1, "hide": 0, "regex": "",
		"includeAll": true, "multi": true, "allValue": ".+",
		"current": map[string]any{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}},
		"options": []any{},
	}
}

func (p *panel) json(id, x, y int) map[string]any {
	var targets []any
	for i, tg := range p.targets {
		m := map[string]any{
			"refId": string(rune('A' + i)), "datasource": datasource, "expr": tg.expr,
			"legendFormat": tg.legend, "range": p.kind == "timeseries",
			"instant": p.kind != "timeseries", "editorMode": "code",
		}
		if p.kind == "table" {
			m["format"] = "table"
		}
		targets = append(targets, m)
	}
	steps := []any{map[string]any{"color": "green", "value": nil}}
	if p.lowIsBad {
		steps = []any{map[string]any{"color": "red", "value": nil}}
		for _, v := range p.thresholds {
			steps = append(steps, map[string]any{"color": "green", "value": v})
		}
	} else {
		for _, v := range p.thresholds {
			steps = append(steps, map[string]any{"color": "red", "value": v})
		}
	}
	defaults := map[string]any{
		"unit":       p.unit,
		"thresholds": map[string]any{"mode": "absolute", "steps": steps},
		"color":      map[string]any{"mode": "thresholds"},
		"mappings":   nonNil(p.mappings),
	}
	var links []any
	description := ""
	if p.alert != "" {
		description = fmt.Sprintf("Alert %s; the red threshold is the alert's. See the runbook link.", p.alert)
		links = append(links, map[string]any{"title": "Runbook: " + p.alert, "url": runbook(p.alert), "targetBlank": true})
	}
	options := map[string]any{}
	switch p.kind {
	case "timeseries":
		defaults["color"] = map[string]any{"mode": "palette-classic"}
		style := "off"
		if len(p.thresholds) > 0 {
			style = "line+area"
		}
		defaults["custom"] = map[string]any{
			"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
			"spanNulls": false, "thresholdsStyle": map[string]any{"mode": style},
		}
		options = map[string]any{
			"legend":  map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
		}
	case "stat":
		options = map[string]any{
			"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"colorMode":     "background", "graphMode": "area", "justifyMode": "auto",
			"orientation": "auto", "textMode": "auto",
		}
	case "table":
		options = map[string]any{"showHeader": true, "cellHeight": "sm"}
	}
	return map[string]any{
		"id": id, "type": p.kind, "title": p.title, "description": description,
		"datasource":  datasource,
		"gridPos":     map[string]any{"h": p.h, "w": p.w, "x": x, "y": y},
		"targets":     targets,
		"fieldConfig": map[string]any{"defaults": defaults, "overrides": []any{}},
		"options":     options,
		"links":       nonNil(links),
	}
}

func nonNil(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}
