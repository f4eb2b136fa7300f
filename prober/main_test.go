package prober

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"testing"
	"time"

	"github.com/odoo-exporter/odoo_exporter/e2e/odoosim"
	"github.com/odoo-exporter/odoo_exporter/internal/pgtest"
)

// cluster is the PostgreSQL cluster shared by the tests of this package.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	c, err := pgtest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "prober tests need PostgreSQL:", err)
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	c.Close()
	os.Exit(code)
}

// startSim starts a stand-in of version on a fresh Odoo database.
func startSim(tb testing.TB, version string) *odoosim.Server {
	tb.Helper()
	db := cluster.OdooDB(tb, version)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := odoosim.Start(ctx, odoosim.Config{DSN: cluster.DSN(db, ""), Version: version, FilestoreDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

func busOptions(s *odoosim.Server, version string) BusOptions {
	jar, _ := cookiejar.New(nil)
	return BusOptions{GeventURL: s.GeventURL(), Version: version, Origin: s.WebURL(), Client: &http.Client{Jar: jar}}
}
