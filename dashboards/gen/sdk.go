//lint:file-ignore SA1019 the SDK's dashboard v1 model is deprecated in favour of v2, but Grafana's file provisioning and import read v1 (v2 needs Grafana 12 with a feature flag)

package main

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	dash "github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	statpanel "github.com/grafana/grafana-foundation-sdk/go/stat"
	tablepanel "github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// This file turns the declared dashboards into the Grafana Foundation SDK's
// dashboard model (dashboard v1, the JSON Grafana's file provisioning and
// import read), with the SDK's builders.

// gridWidth is the width of Grafana's grid.
const gridWidth = 24

// datasource is the reference every panel, query and annotation uses: the
// dashboard's datasource variable.
func datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr("${datasource}")}
}

func ptr[T any](v T) *T { return &v }

// build returns the SDK's model of d.
func (d *dashboard) build() (dash.Dashboard, error) {
	b := dash.NewDashboardBuilder(d.title).
		Uid(d.uid).
		Description(d.description).
		Tags(append([]string{"odoo"}, d.tags...)).
		Editable().
		Tooltip(dash.DashboardCursorSyncCrosshair).
		Refresh("1m").
		Time("now-6h", "now").
		Timezone("").
		FiscalYearStartMonth(0).
		LiveNow(false).
		WeekStart("").
		Version(1).
		Link(dash.NewDashboardLinkBuilder("Odoo dashboards").
			Type(dash.DashboardLinkTypeDashboards).
			Tags([]string{"odoo"}).
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true).
			Icon("external link").
			TargetBlank(false)).
		Link(dash.NewDashboardLinkBuilder("Runbooks").
			Type(dash.DashboardLinkTypeLink).
			Url(runbooks).
			Icon("doc").
			Tags([]string{}).
			AsDropdown(false).
			IncludeVars(false).
			KeepTime(false).
			TargetBlank(true)).
		Annotation(dash.NewAnnotationQueryBuilder().
			Name("Annotations & Alerts").
			BuiltIn(1).
			Datasource(common.DataSourceRef{Type: ptr("grafana"), Uid: ptr("-- Grafana --")}).
			Enable(true).
			Hide(true).
			IconColor("rgba(0, 211, 255, 1)").
			Type("dashboard")).
		Annotation(dash.NewAnnotationQueryBuilder().
			Name("Odoo alerts").
			Datasource(datasource()).
			Enable(true).
			Hide(false).
			IconColor("red").
			Expr(firingAlerts).
			Step("1m").
			TitleFormat("{{alertname}}").
			TextFormat("{{severity}} {{priority}} {{database}}{{name}}{{target}}").
			TagKeys("severity,priority").
			UseValueForTime(false)).
		WithVariable(dash.NewDatasourceVariableBuilder("datasource").
			Label("Data source").
			Type("prometheus").
			Hide(dash.VariableHideDontHide).
			Regex("").
			IncludeAll(false).
			Multi(false)).
		WithVariable(queryVar("job", "Job", "label_values(odoo_exporter_build_info, job)")).
		WithVariable(queryVar("instance", "Instance", `label_values(odoo_exporter_build_info{job=~"$job"}, instance)`))
	if d.database {
		b.WithVariable(queryVar("database", "Database", `label_values(odoo_database_up{job=~"$job",instance=~"$instance"}, database)`))
	}

	// The layout: panels fill the width left to right and wrap when the
	// next one does not fit; a row starts below everything before it.
	// Every position is given, so the SDK's own placement is not used.
	id, x, y, rowH := uint32(1), 0, 0, 0
	for _, p := range d.panels {
		if p.kind == "row" {
			if x > 0 {
				y += rowH
			}
			x, rowH = 0, 0
			b.WithRow(dash.NewRowBuilder(p.title).
				Id(id).
				Collapsed(false).
				GridPos(dash.GridPos{H: 1, W: gridWidth, X: 0, Y: uint32(y)}))
			id++
			y++
			continue
		}
		if x+p.w > gridWidth {
			x, y = 0, y+rowH
			rowH = 0
		}
		pb, err := p.builder(id, dash.GridPos{H: uint32(p.h), W: uint32(p.w), X: uint32(x), Y: uint32(y)})
		if err != nil {
			return dash.Dashboard{}, fmt.Errorf("panel %q: %w", p.title, err)
		}
		b.WithPanel(pb)
		id++
		x += p.w
		if p.h > rowH {
			rowH = p.h
		}
	}
	model, err := b.Build()
	if err != nil {
		return dash.Dashboard{}, err
	}
	keepInPlace(&model)
	return model, nil
}

// keepInPlace removes the placement the SDK gives every link and
// annotation by default ("inControlsMenu", the only value of the schema's
// enum): without it, Grafana shows the links above the panels and the
// annotation toggles in the variables bar, as before the SDK; with it,
// Grafana 12's dashboard controls menu would hide them.
func keepInPlace(d *dash.Dashboard) {
	for i := range d.Links {
		d.Links[i].Placement = nil
	}
	for i := range d.Annotations.List {
		d.Annotations.List[i].Placement = nil
	}
	for _, p := range d.Panels {
		if p.Panel == nil {
			continue
		}
		for i := range p.Panel.Links {
			p.Panel.Links[i].Placement = nil
		}
	}
}

// queryVar is a multi-value variable of label values with an "All" option
// matching every value (.+), selected by default.
func queryVar(name, label, query string) *dash.QueryVariableBuilder {
	return dash.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasource()).
		Query(dash.StringOrMap{Map: map[string]any{
			"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery",
		}}).
		Definition(query).
		Refresh(dash.VariableRefreshOnTimeRangeChanged).
		Sort(dash.VariableSortAlphabeticalAsc).
		Hide(dash.VariableHideDontHide).
		Regex("").
		IncludeAll(true).
		Multi(true).
		AllValue(".+").
		Current(dash.VariableOption{
			Selected: ptr(true),
			Text:     dash.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value:    dash.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
		}).
		Options([]dash.VariableOption{})
}

// thresholdSteps returns the panel's steps: green, then red from each
// threshold on (the reverse for lowIsBad).
func (p *panel) thresholdSteps() []dash.Threshold {
	base, above := "green", "red"
	if p.lowIsBad {
		base, above = "red", "green"
	}
	steps := []dash.Threshold{{Color: base, Value: nil}}
	for _, v := range p.thresholds {
		steps = append(steps, dash.Threshold{Color: above, Value: ptr(v)})
	}
	return steps
}

func (p *panel) mappings() []dash.ValueMapping {
	if !p.upMapping {
		return []dash.ValueMapping{}
	}
	return []dash.ValueMapping{{ValueMap: &dash.ValueMap{
		Type: dash.MappingTypeValueToText,
		Options: map[string]dash.ValueMappingResult{
			"0": {Text: ptr("DOWN"), Color: ptr("red")},
			"1": {Text: ptr("UP"), Color: ptr("green")},
		},
	}}}
}

// runbookLinks is the panel's link to the runbook of its alert (none
// without an alert).
func (p *panel) runbookLinks() []cog.Builder[dash.DashboardLink] {
	if p.alert == "" {
		return nil
	}
	return []cog.Builder[dash.DashboardLink]{
		dash.NewDashboardLinkBuilder("Runbook: " + p.alert).
			Type(dash.DashboardLinkTypeLink).
			Url(runbook(p.alert)).
			TargetBlank(true),
	}
}

func (p *panel) description() string {
	if p.alert == "" {
		return ""
	}
	return fmt.Sprintf("Alert %s; the red threshold is the alert's. See the runbook link.", p.alert)
}

// queries returns the panel's Prometheus queries, refIds A, B, ...: range
// queries on graphs, instant ones on stats and tables.
func (p *panel) queries() []cog.Builder[variants.Dataquery] {
	var out []cog.Builder[variants.Dataquery]
	for i, tg := range p.targets {
		qb := prometheus.NewDataqueryBuilder().
			RefId(string(rune('A' + i))).
			Datasource(datasource()).
			Expr(tg.expr).
			LegendFormat(tg.legend).
			EditorMode(prometheus.QueryEditorModeCode)
		if p.kind == "timeseries" {
			qb.Range()
		} else {
			qb.Instant()
		}
		if p.kind == "table" {
			qb.Format(prometheus.PromQueryFormatTable)
		}
		out = append(out, qb)
	}
	return out
}

// builder returns the SDK's builder of the panel, with its id and position.
func (p *panel) builder(id uint32, pos dash.GridPos) (cog.Builder[dash.Panel], error) {
	thresholds := dash.NewThresholdsConfigBuilder().Mode(dash.ThresholdsModeAbsolute).Steps(p.thresholdSteps())
	switch p.kind {
	case "timeseries":
		style := common.GraphThresholdsStyleModeOff
		if len(p.thresholds) > 0 {
			style = common.GraphThresholdsStyleModeLineAndArea
		}
		b := timeseries.NewPanelBuilder().
			Id(id).Title(p.title).Datasource(datasource()).GridPos(pos).
			Targets(p.queries()).
			Unit(p.unit).Thresholds(thresholds).Mappings(p.mappings()).
			ColorScheme(dash.NewFieldColorBuilder().Mode(dash.FieldColorModeIdPaletteClassic)).
			DrawStyle(common.GraphDrawStyleLine).LineWidth(1).FillOpacity(10).
			ShowPoints(common.VisibilityModeNever).SpanNulls(common.BoolOrFloat64{Bool: ptr(false)}).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(style)).
			Legend(common.NewVizLegendOptionsBuilder().
				DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom).ShowLegend(true)).
			Tooltip(common.NewVizTooltipOptionsBuilder().
				Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
		if s := p.description(); s != "" {
			b.Description(s).Links(p.runbookLinks())
		}
		return b, nil
	case "stat":
		b := statpanel.NewPanelBuilder().
			Id(id).Title(p.title).Datasource(datasource()).GridPos(pos).
			Targets(p.queries()).
			Unit(p.unit).Thresholds(thresholds).Mappings(p.mappings()).
			ColorScheme(dash.NewFieldColorBuilder().Mode(dash.FieldColorModeIdThresholds)).
			ReduceOptions(common.NewReduceDataOptionsBuilder().
				Calcs([]string{"lastNotNull"}).Fields("").Values(false)).
			ColorMode(common.BigValueColorModeBackground).
			GraphMode(common.BigValueGraphModeArea).
			JustifyMode(common.BigValueJustifyModeAuto).
			Orientation(common.VizOrientationAuto).
			TextMode(common.BigValueTextModeAuto)
		if s := p.description(); s != "" {
			b.Description(s).Links(p.runbookLinks())
		}
		return b, nil
	case "table":
		b := tablepanel.NewPanelBuilder().
			Id(id).Title(p.title).Datasource(datasource()).GridPos(pos).
			Targets(p.queries()).
			Unit(p.unit).Thresholds(thresholds).Mappings(p.mappings()).
			ColorScheme(dash.NewFieldColorBuilder().Mode(dash.FieldColorModeIdThresholds)).
			ShowHeader(true).
			CellHeight(common.TableCellHeightSm).
			Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{}).CountRows(false))
		if s := p.description(); s != "" {
			b.Description(s).Links(p.runbookLinks())
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown panel kind %q", p.kind)
}
