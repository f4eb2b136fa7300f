package collector

import (
	"testing"
)

func TestPGUpAndDown(t *testing.T) {
	c := newPrivateCluster(t)
	db := c.OdooDB(t, "17.0")
	exp := newTestExporter(t, c.DSN(db, ""), "", "pg")
	m := scrapeOnce(t, exp)
	if got := m.value(t, "odoo_pg_up"); got != 1 {
		t.Fatalf("odoo_pg_up = %v, want 1", got)
	}
	if got := m.value(t, "odoo_pg_connections_max"); got != 300 {
		t.Errorf("odoo_pg_connections_max = %v, want 300 (the test cluster's setting)", got)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	m = scrapeOnce(t, exp)
	if got := m.value(t, "odoo_pg_up"); got != 0 {
		t.Fatalf("with the server stopped odoo_pg_up = %v, want 0", got)
	}
	if m.has("odoo_pg_connections_max") {
		t.Errorf("odoo_pg_connections_max still exposed while the server is down")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	m = scrapeOnce(t, exp)
	if got := m.value(t, "odoo_pg_up"); got != 1 {
		t.Fatalf("after restart odoo_pg_up = %v, want 1", got)
	}
}
