package rules_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/odoo-exporter/odoo_exporter/odoolog"
)

// TestCatalogRunbooks checks that the runbook of every entry of Odoo's log
// catalog (odoolog/catalog.yaml) is a section of docs/runbooks.md.
func TestCatalogRunbooks(t *testing.T) {
	md, err := os.ReadFile(filepath.Join("..", "docs", "runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	have := anchors(md)
	cat, err := odoolog.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cat.Entries() {
		if e.Runbook != "" && !have[e.Runbook] {
			t.Errorf("catalog entry %s: runbook %q is no heading of docs/runbooks.md", e.ID, e.Runbook)
		}
	}
}
