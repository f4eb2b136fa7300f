package heal

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// backend is a PostgreSQL session an action may end.
type backend struct {
	PID          int32
	BackendStart time.Time
	XactStart    *time.Time
	State        string
	User         string
	App          string
	Seconds      float64 // how long it blocked others or held the lock
	Detail       string  // what it holds or blocks
}

func (b backend) String() string {
	return fmt.Sprintf("pid %d (user %q, application %q, state %q, %s)", b.PID, b.User, b.App, b.State, b.Detail)
}

// safeBackend is the SQL condition every backend an action signals must
// meet, over pg_stat_activity aliased a: a client backend of this
// database, not the healer's own session, and not a superuser's.
// Walsenders, autovacuum and other background workers are not client
// backends.
const safeBackend = `a.datname = current_database()
	AND a.backend_type = 'client backend'
	AND a.pid <> pg_backend_pid()
	AND NOT coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.oid = a.usesysid), true)`

// signalSQL signals a backend only if it is still the same session
// (backend_start) in the same transaction (xact_start), still meets
// safeBackend and still meets the action's condition (%s): a pid reused
// by a new session, or a session that moved on, is left alone.
const signalSQL = `SELECT CASE WHEN $2 THEN pg_terminate_backend(a.pid) ELSE pg_cancel_backend(a.pid) END
FROM pg_stat_activity a
WHERE a.pid = $1
	AND a.backend_start = $3
	AND a.xact_start IS NOT DISTINCT FROM $4::timestamptz
	AND ` + safeBackend + `
	AND (%s)`

// signal cancels or terminates b under the guard of signalSQL. It reports
// whether b was signalled; false with a nil error means b no longer
// matched (it released what it held, or its pid now is another session).
func signal(ctx context.Context, conn *pgx.Conn, b backend, terminate bool, still string) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, fmt.Sprintf(signalSQL, still), b.PID, terminate, b.BackendStart, b.XactStart).Scan(&ok)
	if err == pgx.ErrNoRows {
		return false, nil
	}
	if err != nil {
		what := "cancel"
		if terminate {
			what = "terminate"
		}
		return false, fmt.Errorf("%s pid %d: %w", what, b.PID, err)
	}
	if !ok {
		return false, fmt.Errorf("pid %d: PostgreSQL refused the signal (is the healer's role granted pg_signal_backend?)", b.PID)
	}
	return true, nil
}

// endBackends ends each backend: an active one is cancelled first and
// terminated only if it still matches after grace; any other (idle in
// transaction ignores a cancel) is terminated at once.
func endBackends(ctx context.Context, conn *pgx.Conn, bs []backend, grace time.Duration, still string, dryRun bool, rep *Report) error {
	var cancelled []backend
	for _, b := range bs {
		terminate := b.State != "active"
		switch {
		case dryRun && terminate:
			rep.Step("would terminate %s (a cancel is ignored unless the backend runs a query)", b)
			continue
		case dryRun:
			rep.Step("would cancel %s, then terminate it if it still matches after %s", b, grace)
			continue
		}
		ok, err := signal(ctx, conn, b, terminate, still)
		switch {
		case err != nil:
			return err
		case !ok:
			rep.Step("left pid %d alone: it no longer matches", b.PID)
		case terminate:
			rep.Acted("terminated %s", b)
		default:
			rep.Acted("cancelled %s", b)
			cancelled = append(cancelled, b)
		}
	}
	if len(cancelled) == 0 {
		return nil
	}
	select {
	case <-time.After(grace):
	case <-ctx.Done():
		return fmt.Errorf("waiting %s after cancelling: %w", grace, ctx.Err())
	}
	for _, b := range cancelled {
		ok, err := signal(ctx, conn, b, true, still)
		if err != nil {
			return err
		}
		if ok {
			rep.Acted("terminated pid %d: still matching %s after the cancel", b.PID, grace)
		} else {
			rep.Step("pid %d released after the cancel: not terminated", b.PID)
		}
	}
	return nil
}

// ending says which backends an action ends and how it checks the
// condition cleared; endMatching runs it.
type ending struct {
	// find lists the backends to end, on a session to the target database.
	find func(context.Context, *pgx.Conn) ([]backend, error)
	// still is signalSQL's condition: the backend still does what it was
	// found doing.
	still string
	// grace is the time between cancel and terminate.
	grace time.Duration
	// maxBackends: when find returns more, nothing is done.
	maxBackends int
	// what names the backends in messages ("blockers").
	what string
	// none is the report when find returns nothing.
	none string
	// check fails while the condition lasts (the verify step).
	check func(context.Context, *pgx.Conn) error
}

// endMatching is the Run of the actions that end backends: on one
// session to db it finds them, refuses when more than maxBackends match,
// ends them (endBackends) and returns the verify step.
func endMatching(ctx context.Context, env *Env, db string, e ending, dryRun bool, rep *Report) (func(context.Context) error, error) {
	var verify func(context.Context) error
	err := env.PG.withConn(ctx, db, func(conn *pgx.Conn) error {
		bs, err := e.find(ctx, conn)
		if err != nil {
			return err
		}
		if len(bs) == 0 {
			rep.Nothing("%s", e.none)
			return nil
		}
		if len(bs) > e.maxBackends {
			return fmt.Errorf("%d %s match, more than max_backends %d: refusing, look at it by hand", len(bs), e.what, e.maxBackends)
		}
		if err := endBackends(ctx, conn, bs, e.grace, e.still, dryRun, rep); err != nil {
			return err
		}
		if !dryRun {
			verify = func(ctx context.Context) error {
				return env.PG.withConn(ctx, db, func(conn *pgx.Conn) error { return e.check(ctx, conn) })
			}
		}
		return nil
	})
	return verify, err
}

// scanBackends reads rows of pid, backend_start, xact_start, state,
// usename, application_name, seconds, detail.
func scanBackends(rows pgx.Rows) ([]backend, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (backend, error) {
		var b backend
		err := row.Scan(&b.PID, &b.BackendStart, &b.XactStart, &b.State, &b.User, &b.App, &b.Seconds, &b.Detail)
		return b, err
	})
}

// pollUntil waits for check to pass, checking every interval until ctx
// ends. It returns the last error that says why the check failed (not the
// deadline that cut the last check short).
func pollUntil(ctx context.Context, interval time.Duration, check func(context.Context) error) error {
	var last error
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(interval):
		}
	}
}
