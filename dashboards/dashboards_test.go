//lint:file-ignore SA1019 the SDK's dashboard v1 model is deprecated in favour of v2, but Grafana's file provisioning and import read v1 (v2 needs Grafana 12 with a feature flag)

package dashboards_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	sdkdashboard "github.com/grafana/grafana-foundation-sdk/go/dashboard"
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

// TestDashboardsAreSDKModels validates every dashboard (the files Grafana's
// provisioning loads) against the Grafana Foundation SDK's dashboard model:
// strict unmarshalling fails on unknown fields, missing required ones and
// wrong types, in the dashboard, its panels' options and field config
// (panel plugins) and its queries (datasource plugins); marshalling the
// result again must give the file back, so nothing in it lies outside the
// model. Broken copies of a dashboard check that the validation fails.
func TestDashboardsAreSDKModels(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	files, err := dashboards.Files()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		t.Run(name, func(t *testing.T) {
			if err := unmarshalStrict(b, new(sdkdashboard.Dashboard)); err != nil {
				t.Fatalf("not the SDK's dashboard model: %v", err)
			}
			// The strict unmarshalling of v0.0.22 validates but leaves the
			// panels out of its result; the ordinary one keeps them.
			var d sdkdashboard.Dashboard
			if err := json.Unmarshal(b, &d); err != nil {
				t.Fatal(err)
			}
			if d.SchemaVersion != sdkdashboard.NewDashboard().SchemaVersion {
				t.Errorf("schemaVersion %d, the SDK's is %d", d.SchemaVersion, sdkdashboard.NewDashboard().SchemaVersion)
			}
			again, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			var want, got any
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(again, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(want, got) {
				t.Errorf("the SDK's model of the file differs from the file:\n%s", again)
			}
		})
	}

	overview, ok := files["odoo-overview.json"]
	if !ok {
		t.Fatal("no odoo-overview.json")
	}
	for _, tc := range []struct {
		name   string
		change func(d map[string]any)
		want   string // in the error
	}{
		{"unknown dashboard field", func(d map[string]any) { d["panelz"] = []any{} }, "panelz"},
		{"title of the wrong type", func(d map[string]any) { d["title"] = 42 }, "title"},
		{"unknown stat option", func(d map[string]any) {
			firstPanel(d, "stat")["options"].(map[string]any)["colourMode"] = "background"
		}, "colourMode"},
		{"stat option of the wrong type", func(d map[string]any) {
			firstPanel(d, "stat")["options"].(map[string]any)["reduceOptions"] = "lastNotNull"
		}, "reduceOptions"},
		{"query without its expr", func(d map[string]any) {
			delete(firstPanel(d, "stat")["targets"].([]any)[0].(map[string]any), "expr")
		}, "expr"},
		{"unknown query field", func(d map[string]any) {
			firstPanel(d, "stat")["targets"].([]any)[0].(map[string]any)["expression"] = "up"
		}, "expression"},
		{"thresholds of the wrong type", func(d map[string]any) {
			defaults := firstPanel(d, "stat")["fieldConfig"].(map[string]any)["defaults"].(map[string]any)
			defaults["thresholds"].(map[string]any)["steps"] = "red"
		}, "steps"},
		{"unknown variable field", func(d map[string]any) {
			d["templating"].(map[string]any)["list"].([]any)[1].(map[string]any)["quer"] = "up"
		}, "quer"},
	} {
		t.Run("broken/"+tc.name, func(t *testing.T) {
			var d map[string]any
			if err := json.Unmarshal(overview, &d); err != nil {
				t.Fatal(err)
			}
			tc.change(d)
			b, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			err = unmarshalStrict(b, new(sdkdashboard.Dashboard))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("SDK's strict unmarshalling: %v; want an error about %s", err, tc.want)
			}
		})
	}
}

// unmarshalStrict is the SDK's strict unmarshalling, whose success is an
// empty (typed nil) cog.BuildErrors rather than a nil error.
func unmarshalStrict(b []byte, d *sdkdashboard.Dashboard) error {
	err := d.UnmarshalJSONStrict(b)
	var errs cog.BuildErrors
	if errors.As(err, &errs) && len(errs) == 0 {
		return nil
	}
	return err
}

// firstPanel returns the first panel of type typ of the dashboard d.
func firstPanel(d map[string]any, typ string) map[string]any {
	for _, p := range d["panels"].([]any) {
		if p := p.(map[string]any); p["type"] == typ {
			return p
		}
	}
	panic("no " + typ + " panel")
}
