package postgres

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestExplain(t *testing.T) {
	cases := []struct {
		user string
		err  error
		want string
	}{
		{"odoo_exporter", fmt.Errorf("reading ir_cron: %w", &pgconn.PgError{Severity: "ERROR", Code: "42501", Message: "permission denied for table ir_cron"}),
			"reading ir_cron: ERROR: permission denied for table ir_cron (SQLSTATE 42501) (missing grant: GRANT SELECT ON ir_cron TO odoo_exporter)"},
		{"Monitor", &pgconn.PgError{Severity: "ERROR", Code: "42501", Message: "permission denied for table ir_module_module"},
			`ERROR: permission denied for table ir_module_module (SQLSTATE 42501) (missing grant: GRANT SELECT ON ir_module_module TO "Monitor")`},
		{"odoo_exporter", &pgconn.PgError{Severity: "ERROR", Code: "42501", Message: "permission denied for schema odoo"},
			"ERROR: permission denied for schema odoo (SQLSTATE 42501) (the role odoo_exporter lacks a privilege: see the README's Least privilege)"},
		{"odoo_exporter", &pgconn.PgError{Severity: "ERROR", Code: "57014", Message: "canceling statement due to statement timeout"},
			"ERROR: canceling statement due to statement timeout (SQLSTATE 57014)"},
		{"odoo_exporter", errors.New("conn closed"), "conn closed"},
	}
	for _, tc := range cases {
		src, err := New(Config{DSN: "postgres://" + tc.user + "@127.0.0.1:1/postgres", MaxConns: 2}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if got := src.Explain(tc.err).Error(); got != tc.want {
			t.Errorf("Explain(%v) as %s =\n %s\nwant\n %s", tc.err, tc.user, got, tc.want)
		}
		src.Close()
	}
}

func TestIsDatabaseMissing(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&ConnectError{Database: "gone", Err: &pgconn.PgError{Code: "3D000"}}, true},
		{&ConnectError{Database: "x", Err: &pgconn.PgError{Code: "28P01"}}, false},
		{errors.New("database does not exist"), false},
	} {
		if got := IsDatabaseMissing(tc.err); got != tc.want {
			t.Errorf("IsDatabaseMissing(%v) = %v", tc.err, got)
		}
	}
}
