package heal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

func init() {
	registerAction("end_blockers", &ActionKind{
		TargetKind:  TargetDatabase,
		TargetLabel: "database",
		New: func(n *yaml.Node) (Action, error) {
			p := EndBlockersParams{
				MinWait:     model.Duration(30 * time.Second),
				Grace:       model.Duration(10 * time.Second),
				MaxBackends: 5,
			}
			if err := decodeParams(n, &p); err != nil {
				return nil, err
			}
			if p.MinWait < model.Duration(time.Second) {
				return nil, errors.New("min_wait must be at least 1s")
			}
			if p.Grace <= 0 || p.MaxBackends < 1 {
				return nil, errors.New("grace must be positive and max_backends at least 1")
			}
			return &EndBlockers{p}, nil
		},
	})
}

// EndBlockersParams configure end_blockers.
type EndBlockersParams struct {
	// MinWait: only blockers of a backend that has waited on a lock at
	// least this long are ended.
	MinWait model.Duration `yaml:"min_wait"`
	// Grace is the time an active blocker gets after pg_cancel_backend
	// before pg_terminate_backend.
	Grace model.Duration `yaml:"grace"`
	// MaxBackends: when more blockers than this match, nothing is done
	// (something larger is wrong; a human should look).
	MaxBackends int `yaml:"max_backends"`
	// Users, when set, restricts the blockers to these roles.
	Users []string `yaml:"users"`
}

// EndBlockers ends the root blockers of long lock waits in the alert's
// database: pg_cancel_backend first for an active blocker, then
// pg_terminate_backend after a grace period if it still blocks;
// pg_terminate_backend at once for an idle-in-transaction one.
type EndBlockers struct{ p EndBlockersParams }

// waitersSQL lists the lock waiters of this database and how long they
// have waited (%s: the wait start expression).
const waitersSQL = `SELECT w.pid, extract(epoch FROM now() - %s)::float8 AS waited
	FROM pg_stat_activity w
	WHERE w.datname = current_database() AND w.wait_event_type = 'Lock' AND w.pid <> pg_backend_pid()`

// blockersSQL lists root blockers (blockers not waiting on a lock
// themselves) of waiters that waited at least $1 seconds.
const blockersSQL = `WITH waiters AS (%s),
edges AS (SELECT w.pid AS waiter, w.waited, unnest(pg_blocking_pids(w.pid)) AS blocker FROM waiters w WHERE w.waited >= $1)
SELECT a.pid, a.backend_start, a.xact_start, coalesce(a.state, ''), coalesce(a.usename, ''), coalesce(a.application_name, ''),
	max(e.waited), format('blocking %%s backend(s), the longest for %%ss', count(DISTINCT e.waiter), round(max(e.waited)::numeric, 1))
FROM edges e JOIN pg_stat_activity a ON a.pid = e.blocker
WHERE a.wait_event_type IS DISTINCT FROM 'Lock'
	AND ` + safeBackend + `
	AND (coalesce(cardinality($2::text[]), 0) = 0 OR a.usename = ANY($2::text[]))
GROUP BY a.pid, a.backend_start, a.xact_start, a.state, a.usename, a.application_name
ORDER BY a.pid`

// stillBlocking is signalSQL's condition for end_blockers.
const stillBlocking = `a.pid IN (SELECT unnest(pg_blocking_pids(w.pid)) FROM pg_stat_activity w
	WHERE w.datname = current_database() AND w.wait_event_type = 'Lock')`

// waitStart returns the expression of when backend w started to wait:
// pg_locks.waitstart from PostgreSQL 14 (now() while it is not set yet, or
// when the wait ended between the two reads: a wait of 0, never the query's
// age), else (an overestimate of the wait) the start of its query.
func waitStart(ctx context.Context, conn *pgx.Conn) (string, error) {
	var v int
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&v); err != nil {
		return "", fmt.Errorf("reading the server version: %w", err)
	}
	if v >= 140000 {
		return `coalesce((SELECT min(l.waitstart) FROM pg_locks l WHERE l.pid = w.pid AND NOT l.granted), now())`, nil
	}
	return `w.query_start`, nil
}

func (e *EndBlockers) blockers(ctx context.Context, conn *pgx.Conn) ([]backend, error) {
	ws, err := waitStart(ctx, conn)
	if err != nil {
		return nil, err
	}
	q := fmt.Sprintf(blockersSQL, fmt.Sprintf(waitersSQL, ws))
	rows, err := conn.Query(ctx, q, time.Duration(e.p.MinWait).Seconds(), e.p.Users)
	if err != nil {
		return nil, fmt.Errorf("finding blockers: %w", err)
	}
	bs, err := scanBackends(rows)
	if err != nil {
		return nil, fmt.Errorf("finding blockers: %w", err)
	}
	return bs, nil
}

// Run implements Action.
func (e *EndBlockers) Run(ctx context.Context, env *Env, db string, dryRun bool, rep *Report) (func(context.Context) error, error) {
	return endMatching(ctx, env, db, ending{
		find:        e.blockers,
		still:       stillBlocking,
		grace:       time.Duration(e.p.Grace),
		maxBackends: e.p.MaxBackends,
		what:        "blockers",
		none:        fmt.Sprintf("no backend of database %q that the healer may end blocks another for %s or more", db, e.p.MinWait),
		check:       e.check,
	}, dryRun, rep)
}

// check fails while a backend of the database waits on a lock for
// MinWait or more.
func (e *EndBlockers) check(ctx context.Context, conn *pgx.Conn) error {
	ws, err := waitStart(ctx, conn)
	if err != nil {
		return err
	}
	var n int
	q := fmt.Sprintf(`SELECT count(*) FROM (%s) x WHERE x.waited >= $1`, fmt.Sprintf(waitersSQL, ws))
	if err := conn.QueryRow(ctx, q, time.Duration(e.p.MinWait).Seconds()).Scan(&n); err != nil {
		return fmt.Errorf("counting lock waiters: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("%d backend(s) still wait on a lock for %s or more", n, e.p.MinWait)
	}
	return nil
}
