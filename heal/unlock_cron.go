package heal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/odoo-exporter/odoo_exporter/internal/odoosql"
)

func init() {
	registerAction("unlock_cron", &ActionKind{
		TargetKind:  TargetDatabase,
		TargetLabel: "database",
		New: func(n *yaml.Node) (Action, error) {
			p := UnlockCronParams{
				MinRunning:  model.Duration(time.Hour),
				Grace:       model.Duration(10 * time.Second),
				MaxBackends: 2,
			}
			if err := decodeParams(n, &p); err != nil {
				return nil, err
			}
			if p.MinRunning < model.Duration(time.Minute) {
				return nil, errors.New("min_running must be at least 1m (cron jobs legitimately run for minutes)")
			}
			if p.Grace <= 0 || p.MaxBackends < 1 {
				return nil, errors.New("grace must be positive and max_backends at least 1")
			}
			return &UnlockCron{p}, nil
		},
	})
}

// UnlockCronParams configure unlock_cron.
type UnlockCronParams struct {
	// MinRunning: only a transaction holding a cron job's row lock at
	// least this long is ended.
	MinRunning model.Duration `yaml:"min_running"`
	// Grace between pg_cancel_backend and pg_terminate_backend for a
	// locker that is running a query.
	Grace model.Duration `yaml:"grace"`
	// MaxBackends: when more lockers match, nothing is done.
	MaxBackends int `yaml:"max_backends"`
	// Users, when set, restricts the lockers to these roles.
	Users []string `yaml:"users"`
}

// UnlockCron ends the session whose transaction has held an ir_cron row
// lock (a running or stuck job: Odoo's cron worker keeps the job's row
// locked FOR NO KEY UPDATE — FOR UPDATE in 14.0 — for the whole run) for
// longer than a limit, so that the job can run again.
//
// Detection takes no lock. Only the cron worker's own session is ended:
// idle in transaction (the job itself runs in a second cursor), holding a
// lock on ir_cron, and holding a job's row in an update mode — the row's
// plain xmax is its transaction id and it wrote nothing to
// ir_cron_trigger, or it is a FOR NO KEY UPDATE member of the row's
// multixact xmax (odoosql.CronRowUpdateHolders: Odoo 18's job cursor adds
// ir_cron_progress rows, a trigger insert adds a KEY SHARE lock) — or whose
// last statement is Odoo's SELECT ... FROM ir_cron ... FOR [NO KEY]
// UPDATE. The job is named from the same row locks on every version. A
// transaction whose xmax is on the row only because it inserted a trigger
// (KEY SHARE, the same relation lock) is not a cron worker and is left
// alone.
type UnlockCron struct{ p UnlockCronParams }

// cronLockersSQL: lockers are the sessions holding a job's row (held: in
// an update mode, so a cron worker or Run Manually), the plain-xmax
// holders that wrote to ir_cron_trigger (not held), and every session of
// the database (no job).
const cronLockersSQL = `WITH lockers AS (
	SELECT c.id AS cron_id, l.pid, true AS held
	FROM ir_cron c CROSS JOIN ` + odoosql.CronClass + `
	CROSS JOIN LATERAL unnest(` + odoosql.CronRowUpdateHolders + `) h(xid)
	JOIN pg_locks l ON l.locktype = 'transactionid' AND l.granted AND l.transactionid::text = h.xid
	WHERE ` + odoosql.CronClassCond + `
	UNION
	SELECT c.id, l.pid, NOT EXISTS (SELECT 1 FROM pg_locks t WHERE t.pid = l.pid AND t.locktype = 'relation' AND t.granted
		AND t.mode = 'RowExclusiveLock' AND t.relation = to_regclass('ir_cron_trigger'))
	FROM ir_cron c
	JOIN pg_locks l ON l.locktype = 'transactionid' AND l.granted AND l.transactionid = c.xmax
	UNION
	SELECT NULL, a.pid, false
	FROM pg_stat_activity a
	WHERE a.datname = current_database()
)
SELECT a.pid, a.backend_start, a.xact_start, coalesce(a.state, ''), coalesce(a.usename, ''), coalesce(a.application_name, ''),
	extract(epoch FROM now() - a.xact_start)::float8,
	format('holding the row lock of cron job(s) %s for %ss', coalesce(array_to_string(array_agg(DISTINCT k.cron_id) FILTER (WHERE k.held), ','), 'unknown (cron worker session)'), round(extract(epoch FROM now() - a.xact_start)::numeric, 1))
FROM lockers k JOIN pg_stat_activity a ON a.pid = k.pid
WHERE a.xact_start <= now() - make_interval(secs => $1)
	AND a.state = 'idle in transaction'
	AND EXISTS (SELECT 1 FROM pg_locks rl WHERE rl.pid = a.pid AND rl.locktype = 'relation' AND rl.granted
		AND rl.relation = 'ir_cron'::regclass AND rl.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
	AND ` + safeBackend + `
	AND (coalesce(cardinality($2::text[]), 0) = 0 OR a.usename = ANY($2::text[]))
GROUP BY a.pid, a.backend_start, a.xact_start, a.state, a.usename, a.application_name, a.query
HAVING bool_or(k.held) OR ` + odoosql.CronWorkerStatement + `
ORDER BY a.pid`

// stillLocking is signalSQL's condition for unlock_cron: the session
// still holds a lock on ir_cron (its transaction is the same one, which
// signalSQL checks through xact_start).
const stillLocking = `EXISTS (SELECT 1 FROM pg_locks rl WHERE rl.pid = a.pid AND rl.locktype = 'relation' AND rl.granted
	AND rl.relation = 'ir_cron'::regclass)`

func (u *UnlockCron) lockers(ctx context.Context, conn *pgx.Conn) ([]backend, error) {
	rows, err := conn.Query(ctx, cronLockersSQL, time.Duration(u.p.MinRunning).Seconds(), u.p.Users)
	if err != nil {
		return nil, fmt.Errorf("finding cron lock holders: %w", err)
	}
	bs, err := scanBackends(rows)
	if err != nil {
		return nil, fmt.Errorf("finding cron lock holders: %w", err)
	}
	return bs, nil
}

// Run implements Action.
func (u *UnlockCron) Run(ctx context.Context, env *Env, db string, dryRun bool, rep *Report) (func(context.Context) error, error) {
	return endMatching(ctx, env, db, ending{
		find:        u.lockers,
		still:       stillLocking,
		grace:       time.Duration(u.p.Grace),
		maxBackends: u.p.MaxBackends,
		what:        "cron lock holders",
		none:        fmt.Sprintf("no session of database %q that the healer may end holds a cron job's row lock for %s or more", db, u.p.MinRunning),
		check:       u.check,
	}, dryRun, rep)
}

// check fails while a session holds a cron job's row lock for MinRunning
// or more.
func (u *UnlockCron) check(ctx context.Context, conn *pgx.Conn) error {
	bs, err := u.lockers(ctx, conn)
	if err != nil {
		return err
	}
	if len(bs) > 0 {
		return fmt.Errorf("still held: %s", bs[0])
	}
	return nil
}
