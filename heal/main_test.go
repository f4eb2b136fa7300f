package heal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/odoo-exporter/odoo_exporter/internal/pgtest"
)

// cluster is the PostgreSQL cluster shared by this package's tests; each
// test makes its own databases in it.
var cluster *pgtest.Cluster

// Roles of the test cluster: odoo owns the Odoo tables (as in
// production), healer has the least privileges docs/healer.md asks for.
const (
	odooRole   = "odoo"
	healerRole = "healer"
)

func TestMain(m *testing.M) {
	c, err := pgtest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "heal tests need PostgreSQL:", err)
		os.Exit(1)
	}
	cluster = c
	if err := setupRoles(c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		c.Close()
		os.Exit(1)
	}
	code := m.Run()
	closeDocker()
	c.Close()
	os.Exit(code)
}

func setupRoles(c *pgtest.Cluster) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN("postgres", ""))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`CREATE ROLE odoo LOGIN`,
		`CREATE ROLE healer LOGIN IN ROLE pg_signal_backend, pg_monitor`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// odooDB creates an Odoo 17-shaped database whose tables belong to role
// odoo; the healer role may write only ir_attachment and ir_module_module.
func odooDB(t *testing.T) string {
	t.Helper()
	return odooDBOn(t, cluster)
}

// odooDBOn is odooDB on cluster c (set up with setupRoles).
func odooDBOn(t *testing.T, c *pgtest.Cluster) string {
	t.Helper()
	db := c.OdooDB(t, "17.0")
	c.Exec(t, db, `
		DO $$ DECLARE r record; BEGIN
			FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
				EXECUTE format('ALTER TABLE %I OWNER TO odoo', r.tablename);
			END LOOP;
			FOR r IN SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' LOOP
				EXECUTE format('ALTER SEQUENCE %I OWNER TO odoo', r.sequencename);
			END LOOP;
		END $$;
		GRANT SELECT ON ir_cron TO healer;
		GRANT SELECT, DELETE ON ir_attachment TO healer;
		GRANT SELECT, UPDATE (state) ON ir_module_module TO healer;`)
	return db
}

func testLogger() *slog.Logger {
	if os.Getenv("TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testEnv is an Env whose PostgreSQL sessions use the healer role.
func testEnv(t testing.TB) *Env {
	t.Helper()
	pg, err := NewPGConnector(PGConfig{DSN: cluster.DSN("postgres", healerRole), StatementTimeout: 10 * time.Second, LockTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &Env{PG: pg, Logger: testLogger()}
}

// session is a client session of the test, as role user.
type session struct {
	t       testing.TB
	conn    *pgx.Conn
	pid     int32
	cluster *pgtest.Cluster
}

func connectAs(t testing.TB, db, user string) *session {
	t.Helper()
	return connectOn(t, cluster, db, user)
}

// connectOn is connectAs on cluster c.
func connectOn(t testing.TB, c *pgtest.Cluster, db, user string) *session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN(db, user))
	if err != nil {
		t.Fatalf("connect to %s as %s: %v", db, user, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	s := &session{t: t, conn: conn, pid: int32(conn.PgConn().PID()), cluster: c}
	return s
}

func (s *session) exec(sql string, args ...any) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.conn.Exec(ctx, sql, args...); err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
}

// execAsync runs sql in the background; the returned channel gets its
// error. The statement is cancelled, and waited for, when the test ends
// (before the connection is closed).
func (s *session) execAsync(sql string, args ...any) <-chan error {
	done := make(chan error, 1)
	finished := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	go func() {
		defer close(finished)
		_, err := s.conn.Exec(ctx, sql, args...)
		done <- err
	}()
	s.t.Cleanup(func() { cancel(); <-finished })
	return done
}

// alive reports whether the server still has a backend with s's pid.
func (s *session) alive() bool {
	s.t.Helper()
	var n int
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := s.cluster
	if c == nil {
		c = cluster
	}
	conn, err := pgx.Connect(ctx, c.DSN("postgres", ""))
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, s.pid).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n == 1
}

// waitingFor waits until backend pid has waited on a lock for at least d.
func waitingFor(t testing.TB, pid int32, d time.Duration) {
	t.Helper()
	waitingOn(t, cluster, pid, d)
}

// waitingOn is waitingFor on cluster c.
func waitingOn(t testing.TB, c *pgtest.Cluster, pid int32, d time.Duration) {
	t.Helper()
	conn := c.Connect(t, "postgres")
	eventually(t, 30*time.Second, fmt.Sprintf("pid %d to wait on a lock for %s", pid, d), func() bool {
		var ok bool
		err := conn.QueryRow(context.Background(), `SELECT coalesce(bool_or(now() - waitstart >= make_interval(secs => $2)), false)
			FROM pg_locks WHERE pid = $1 AND NOT granted`, pid, d.Seconds()).Scan(&ok)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	})
}

// eventually retries cond until it holds or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runAction(t *testing.T, a Action, env *Env, target string, dry bool) (*Report, func(context.Context) error, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep := &Report{}
	verify, err := a.Run(ctx, env, target, dry, rep)
	t.Logf("report: %s", rep)
	return rep, verify, err
}

func verifyWithin(t *testing.T, verify func(context.Context) error) {
	t.Helper()
	if verify == nil {
		t.Fatal("no verify step returned")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := pollUntil(ctx, 50*time.Millisecond, verify); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

func hasStep(rep *Report, substr string) bool {
	for _, s := range rep.Steps() {
		if strings.Contains(s, substr) {
			return true
		}
	}
	return false
}

// checkRecycle runs recycle_workers a (not dry) on target and checks what
// it did: SIGHUP sent to master (where: "the container", or the proc
// root), then, when the master handles it, a verify that passes and only
// new workers under the same master (info reads them again, wantWorkers
// of them); when it does not, a verify that keeps failing on a worker
// not replaced. It returns the workers after.
func checkRecycle(t *testing.T, a Action, env *Env, target, where string, master int, workers []int, wantWorkers int,
	replaced bool, info func(context.Context) (int, []int, error)) []int {
	t.Helper()
	rep, verify, err := runAction(t, a, env, target, false)
	if err != nil || !rep.hasActed() || !hasStep(rep, fmt.Sprintf("sent SIGHUP to Odoo's master (pid %d in %s)", master, where)) {
		t.Fatalf("%v %q", err, rep.Steps())
	}
	if !replaced {
		vctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		err := pollUntil(vctx, 100*time.Millisecond, verify)
		if err == nil || !strings.Contains(err.Error(), "was not replaced") {
			t.Fatalf("verify = %v, want a worker not replaced", err)
		}
		return nil
	}
	verifyWithin(t, verify)
	m2, w2, err := info(t.Context())
	if err != nil || m2 != master || len(w2) != wantWorkers || slices.ContainsFunc(w2, func(p int) bool { return slices.Contains(workers, p) }) {
		t.Fatalf("after: master %d workers %v (before %d %v), %v", m2, w2, master, workers, err)
	}
	return w2
}
