package dashboards_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/odoo-exporter/odoo_exporter/dashboards"
)

type dashboard struct {
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	SchemaVersion int      `json:"schemaVersion"`
	Tags          []string `json:"tags"`
	Templating    struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
	Links  []struct{ URL string } `json:"links"`
	Panels []panel                `json:"panels"`
}

type panel struct {
	ID         *int                `json:"id"`
	Type       string              `json:"type"`
	Title      string              `json:"title"`
	Datasource *datasource         `json:"datasource"`
	GridPos    *struct{ W, H int } `json:"gridPos"`
	Targets    []struct {
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// wantUIDs are the dashboards' stable uids: links and bookmarks depend on them.
var wantUIDs = []string{"odoo-overview", "odoo-db-locks", "odoo-cron", "odoo-bus", "odoo-http", "odoo-containers", "odoo-logs", "odoo-processes"}

func TestDashboardStructure(t *testing.T) {
	files, err := dashboards.Files()
	if err != nil {
		t.Fatal(err)
	}
	uids := map[string]bool{}
	for name, b := range files {
		t.Run(name, func(t *testing.T) {
			var d dashboard
			if err := json.Unmarshal(b, &d); err != nil {
				t.Fatalf("invalid JSON: %v", err)
			}
			if d.UID == "" || d.UID+".json" != name {
				t.Errorf("uid %q does not match the file name", d.UID)
			}
			if uids[d.UID] {
				t.Errorf("duplicate uid %q", d.UID)
			}
			uids[d.UID] = true
			if d.Title == "" {
				t.Error("no title")
			}
			if d.SchemaVersion < 36 {
				t.Errorf("schemaVersion %d, want >= 36", d.SchemaVersion)
			}
			vars := map[string]string{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v.Type
			}
			for _, v := range []string{"datasource", "job", "instance"} {
				if vars[v] == "" {
					t.Errorf("no %s variable", v)
				}
			}
			if vars["datasource"] != "datasource" {
				t.Errorf("datasource variable has type %q", vars["datasource"])
			}
			if vars["database"] == "" && strings.Contains(string(b), "$database") {
				t.Error("queries use $database but there is no database variable")
			}
			alertsAnnotation := false
			for _, a := range d.Annotations.List {
				if strings.Contains(a.Expr, `ALERTS{alertstate="firing"`) {
					alertsAnnotation = true
				}
			}
			if !alertsAnnotation {
				t.Error(`no annotation query on ALERTS{alertstate="firing"}`)
			}
			runbookLink := false
			for _, l := range d.Links {
				if strings.Contains(l.URL, "docs/runbooks.md") {
					runbookLink = true
				}
			}
			if !runbookLink {
				t.Error("no link to the runbooks")
			}
			ids := map[int]bool{}
			for _, p := range d.Panels {
				if p.ID == nil {
					t.Errorf("panel %q has no id", p.Title)
					continue
				}
				if ids[*p.ID] {
					t.Errorf("duplicate panel id %d (%q)", *p.ID, p.Title)
				}
				ids[*p.ID] = true
				if p.Title == "" || p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
					t.Errorf("panel %d: title and gridPos required", *p.ID)
				}
				if p.Type == "row" {
					continue
				}
				if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: datasource %+v, want the ${datasource} variable", p.Title, p.Datasource)
				}
				if p.FieldConfig.Defaults.Unit == "" {
					t.Errorf("panel %q: no unit", p.Title)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q: no query", p.Title)
				}
				refs := map[string]bool{}
				for _, tg := range p.Targets {
					if strings.TrimSpace(tg.Expr) == "" {
						t.Errorf("panel %q: target %s has no expr", p.Title, tg.RefID)
					}
					if tg.RefID == "" || refs[tg.RefID] {
						t.Errorf("panel %q: missing or duplicate refId %q", p.Title, tg.RefID)
					}
					refs[tg.RefID] = true
					if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
						t.Errorf("panel %q: target %s datasource %+v", p.Title, tg.RefID, tg.Datasource)
					}
				}
			}
		})
	}
	for _, u := range wantUIDs {
		if !uids[u] {
			t.Errorf("dashboard %s missing", u)
		}
	}
}

// Sentinels substituted for the variables, recognisable in the parsed
// expressions.
const rateSentinel = 7*time.Minute + 13*time.Second

var sentinels = map[string]string{
	"__rate_interval": "7m13s",
	"datasource":      "DATASOURCE",
	"job":             "JOB",
	"instance":        "INSTANCE",
	"database":        "DATABASE",
}

// TestQueryConventions checks with Prometheus' parser that every selector is
// filtered by job and instance and every rate/irate uses $__rate_interval.
// (rules/expressions_test.go checks metric names and the database filter
// against the exporter's registry.)
func TestQueryConventions(t *testing.T) {
	qs, err := dashboards.Queries()
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) == 0 {
		t.Fatal("no queries")
	}
	p := parser.NewParser(parser.Options{})
	for _, q := range qs {
		expr, err := p.ParseExpr(dashboards.Expand(q.Expr, sentinels))
		if err != nil {
			t.Errorf("%s / %s: %v\n%s", q.Dashboard, q.Panel, err, q.Expr)
			continue
		}
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			switch n := n.(type) {
			case *parser.VectorSelector:
				filters := map[string]string{}
				for _, m := range n.LabelMatchers {
					filters[m.Name] = m.Value
				}
				if filters["job"] != "JOB" || filters["instance"] != "INSTANCE" {
					t.Errorf("%s / %s: selector %s not filtered by $job and $instance", q.Dashboard, q.Panel, n)
				}
			case *parser.Call:
				if n.Func.Name != "rate" && n.Func.Name != "irate" {
					break
				}
				if ms, ok := n.Args[0].(*parser.MatrixSelector); !ok || ms.Range != rateSentinel {
					t.Errorf("%s / %s: %s does not use $__rate_interval", q.Dashboard, q.Panel, n)
				}
			}
			return nil
		})
	}
}

func TestExpand(t *testing.T) {
	got := dashboards.Expand(`rate(x{a=~"$job",b="${instance}"}[$__rate_interval])`,
		map[string]string{"job": "j", "instance": "i", "__rate_interval": "1m", "__rate": "BAD"})
	if want := `rate(x{a=~"j",b="i"}[1m])`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestQueriesListsEveryTarget(t *testing.T) {
	qs, err := dashboards.Queries()
	if err != nil {
		t.Fatal(err)
	}
	files, err := dashboards.Files()
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, b := range files {
		want += strings.Count(string(b), `"expr":`)
	}
	if len(qs) != want {
		t.Errorf("Queries returned %d queries, the files have %d expr fields", len(qs), want)
	}
}
