package e2e

import (
	"strings"
	"testing"

	"github.com/odoo-exporter/odoo_exporter/dashboards"
)

// TestPanelWatchEmpty checks the dashboard check itself: a panel is empty
// only when none of its queries ever returned data, and the failure names
// the dashboard and the panel's title.
func TestPanelWatchEmpty(t *testing.T) {
	w := &panelWatch{
		queries: []dashboards.Query{
			{Dashboard: "a.json", Panel: "Two queries", Expr: "x"},
			{Dashboard: "a.json", Panel: "Two queries", Expr: "y"},
			{Dashboard: "a.json", Panel: "Never data", Expr: "z"},
			{Dashboard: "b.json", Panel: "Data", Expr: "w"},
		},
		seen: map[int]bool{1: true, 3: true},
	}
	got := w.empty()
	if len(got) != 1 || !strings.Contains(got[0], `dashboard a.json: panel "Never data" stayed empty: z`) {
		t.Fatalf("empty() = %q; want only the panel \"Never data\" of a.json", got)
	}
	if got := (&panelWatch{}).empty(); len(got) != 1 {
		t.Fatalf("no queries: empty() = %q; want a failure", got)
	}
}
