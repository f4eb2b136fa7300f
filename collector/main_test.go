package collector

import (
	"fmt"
	"os"
	"testing"

	"github.com/alecthomas/kingpin/v2"

	"github.com/odoo-exporter/odoo_exporter/internal/pgtest"
)

// cluster is the PostgreSQL cluster shared by this package's tests; each
// test makes its own databases in it. Tests that stop the server start a
// cluster of their own.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	c, err := pgtest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "collector tests need PostgreSQL:", err)
		os.Exit(1)
	}
	cluster = c
	// Give the collectors' option flags their defaults.
	if _, err := kingpin.CommandLine.Parse(nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	c.Close()
	os.Exit(code)
}
