package collector

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/odoo-exporter/odoo_exporter/postgres"
)

// PGSnapshot is one reading of the cluster-wide views, taken once per
// scrape (and once per background pass) on the reserved connection and
// shared by every collector of that scrape: pg_stat_activity and pg_locks
// are each read once, however many collectors and databases use them.
type PGSnapshot struct {
	// Taken is the server's clock when the views were read. Ages are
	// Taken minus a timestamp, never below 0.
	Taken time.Time
	// MaxConnections and ServerVersionNum are the server's settings.
	MaxConnections   float64
	ServerVersionNum int
	// Databases are the Odoo databases the snapshot covers; DatabasesErr
	// is set when discovery failed or is incomplete (Databases is then the
	// last known list, possibly empty).
	Databases    []string
	DatabasesErr error
	// Deadlocks is pg_stat_database.deadlocks by database.
	Deadlocks map[string]float64
	// Backends are the client backends of the Odoo databases that are not
	// idle (in a transaction, running a query, or waiting), the exporter's
	// own sessions (its Source's and its bus prober's) left out. Idle
	// ones, most of a big connection pool, hold no transaction and wait for
	// nothing: they are only counted, in Idle, by database.
	Backends []PGBackend
	Idle     map[string]float64
}

// PGBackend is one client backend of an Odoo database.
type PGBackend struct {
	PID             int32
	Database        string
	User            string
	ApplicationName string
	// State is pg_stat_activity.state ("" when unknown).
	State         string
	WaitEventType string
	// BackendStart, XactStart, QueryStart and StateChange are zero when
	// NULL.
	BackendStart, XactStart, QueryStart, StateChange time.Time
	// Waiting: the backend waits for a lock (a row of pg_locks not
	// granted). WaitStart is when the wait began (pg_locks.waitstart from
	// PostgreSQL 14, else state_change).
	Waiting   bool
	WaitStart time.Time
	// BlockedBy is pg_blocking_pids() of a waiting backend (those it
	// waits for, including waiters queued ahead of it); RootBlockers are
	// those of them that do not wait themselves: the sessions whose end
	// would release the queue.
	BlockedBy, RootBlockers []int32
	// XID is the backend's own transaction id (its granted ExclusiveLock
	// on a transactionid), "" when it has none: a row it locked or wrote
	// carries it in xmax.
	XID string
	// Relations are the oids it holds granted locks on, RowExclusive
	// those of them it holds RowExclusiveLock on (it wrote to them); both
	// are filled for backends with a transaction id (XID) only: what the
	// cron collector needs to tell a worker holding a job from a
	// transaction that only inserted a trigger, without shipping the lock
	// list of every reading backend. No query text is read.
	Relations, RowExclusive []int64
}

// Age returns how long before the snapshot t was, 0 for a zero t.
func (s *PGSnapshot) Age(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return max(s.Taken.Sub(t).Seconds(), 0)
}

// Covers tells whether db is one of the snapshot's databases.
func (s *PGSnapshot) Covers(db string) bool {
	for _, d := range s.Databases {
		if d == db {
			return true
		}
	}
	return false
}

// pgSettingsSQL reads the server's settings.
const pgSettingsSQL = `SELECT current_setting('max_connections')::float8,
  current_setting('server_version_num')::int, clock_timestamp()`

// pgDeadlocksSQL reads the deadlock counters of the Odoo databases of $1.
const pgDeadlocksSQL = `SELECT datname::text, deadlocks::float8 FROM pg_catalog.pg_stat_database WHERE datname = ANY($1)`

// pgOwnSessions leaves the exporter's own sessions out.
const pgOwnSessions = `a.application_name NOT IN ('` + postgres.ApplicationName + `', '` + postgres.ProberApplicationName + `')
  AND a.pid <> pg_catalog.pg_backend_pid()`

// pgIdleSQL counts the idle client backends of the Odoo databases of $1.
const pgIdleSQL = `SELECT a.datname::text, count(*)::float8 FROM pg_catalog.pg_stat_activity a
WHERE a.backend_type = 'client backend' AND a.datname = ANY($1) AND a.state = 'idle'
  AND ` + pgOwnSessions + `
GROUP BY a.datname`

// pgBackendsSQL reads pg_locks once (materialized) and pg_stat_activity
// (a transaction sees one snapshot of it, shared with pgIdleSQL in the
// same batch), and returns one row per client backend of the Odoo
// databases of $1 that is not idle. pg_blocking_pids() briefly
// takes the lock manager's partition locks: it is called only for backends
// that wait. The %s is pg_locks.waitstart (PostgreSQL 14+) or NULL.
const pgBackendsSQL = `WITH l AS MATERIALIZED (
  SELECT pid, locktype, mode, granted, relation, transactionid, %s AS waitstart FROM pg_catalog.pg_locks
), lk AS MATERIALIZED (
  SELECT pid, bool_or(NOT granted) AS waiting, min(waitstart) FILTER (WHERE NOT granted) AS waitstart,
    min(transactionid::text) FILTER (WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted) AS xid,
    array_agg(relation::int8) FILTER (WHERE locktype = 'relation' AND granted) AS rels,
    array_agg(relation::int8) FILTER (WHERE locktype = 'relation' AND granted AND mode = 'RowExclusiveLock') AS rex
  FROM l WHERE pid IS NOT NULL GROUP BY pid
)
SELECT a.pid, a.datname::text, coalesce(a.usename::text, ''), coalesce(a.application_name, ''),
  coalesce(a.state, ''), coalesce(a.wait_event_type, ''),
  a.backend_start, a.xact_start, a.query_start, a.state_change,
  coalesce(lk.waiting, false), lk.waitstart, lk.xid,
  CASE WHEN lk.xid IS NOT NULL THEN lk.rels END,
  CASE WHEN lk.xid IS NOT NULL THEN lk.rex END,
  bp.pids,
  CASE WHEN bp.pids IS NOT NULL THEN ARRAY(SELECT b FROM unnest(bp.pids) b
    WHERE NOT EXISTS (SELECT 1 FROM lk w WHERE w.pid = b AND w.waiting)) END,
  clock_timestamp()
FROM pg_catalog.pg_stat_activity a
LEFT JOIN lk ON lk.pid = a.pid
LEFT JOIN LATERAL (SELECT pg_catalog.pg_blocking_pids(a.pid) AS pids WHERE lk.waiting) bp ON true
WHERE a.backend_type = 'client backend' AND a.datname = ANY($1)
  AND a.state IS DISTINCT FROM 'idle' AND ` + pgOwnSessions

// pgSettings are the server's settings, read first in a scrape: they
// need no database list.
type pgSettings struct {
	maxConnections float64
	versionNum     int
	now            time.Time
}

// readSettings reads the settings on a connection to db ("" for the DSN's
// database: the reserved connection).
func readSettings(ctx context.Context, src *postgres.Source, db string) (*pgSettings, error) {
	var p pgSettings
	err := src.WithConn(ctx, db, func(q postgres.Queryer) error {
		return q.QueryRow(ctx, pgSettingsSQL).Scan(&p.maxConnections, &p.versionNum, &p.now)
	})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// readSnapshot takes a snapshot on a connection to db ("" for the DSN's
// database: the reserved connection), after the settings p.
func readSnapshot(ctx context.Context, src *postgres.Source, db string, p *pgSettings) (*PGSnapshot, error) {
	s := &PGSnapshot{Deadlocks: map[string]float64{}, Idle: map[string]float64{}, Taken: p.now,
		MaxConnections: p.maxConnections, ServerVersionNum: p.versionNum}
	s.Databases, s.DatabasesErr = src.Databases(ctx)
	if len(s.Databases) == 0 {
		return s, nil
	}
	waitstart := "waitstart"
	if s.ServerVersionNum < 140000 {
		waitstart = "NULL::timestamptz"
	}
	err := src.WithConn(ctx, db, func(q postgres.Queryer) error {
		// One round trip, one transaction.
		batch := &pgx.Batch{}
		batch.Queue(pgDeadlocksSQL, s.Databases)
		batch.Queue(pgIdleSQL, s.Databases)
		batch.Queue(fmt.Sprintf(pgBackendsSQL, waitstart), s.Databases)
		br := q.SendBatch(ctx, batch)
		defer br.Close()
		for _, into := range []map[string]float64{s.Deadlocks, s.Idle} {
			if err := scanCounts(br, into); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				b                                   PGBackend
				backendStart, xactStart, queryStart *time.Time
				stateChange, waitStart              *time.Time
				xid                                 *string
				taken                               time.Time
			)
			if err := rows.Scan(&b.PID, &b.Database, &b.User, &b.ApplicationName, &b.State, &b.WaitEventType,
				&backendStart, &xactStart, &queryStart, &stateChange,
				&b.Waiting, &waitStart, &xid, &b.Relations, &b.RowExclusive, &b.BlockedBy, &b.RootBlockers, &taken); err != nil {
				return err
			}
			b.BackendStart, b.XactStart, b.QueryStart, b.StateChange = deref(backendStart), deref(xactStart), deref(queryStart), deref(stateChange)
			if b.Waiting {
				b.WaitStart = deref(waitStart)
				if b.WaitStart.IsZero() {
					b.WaitStart = b.StateChange
				}
			}
			if xid != nil {
				b.XID = *xid
			}
			if taken.After(s.Taken) {
				s.Taken = taken
			}
			s.Backends = append(s.Backends, b)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return br.Close()
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// scanCounts reads the next result of br, rows of (database, value).
func scanCounts(br pgx.BatchResults, into map[string]float64) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			db string
			v  float64
		)
		if err := rows.Scan(&db, &v); err != nil {
			return err
		}
		into[db] = v
	}
	return rows.Err()
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// snapshotHolder takes the settings and the snapshot of one scrape or
// pass, each once.
type snapshotHolder struct {
	src *postgres.Source
	// pass: the holder of a background pass, whose snapshot is read on
	// the connection to db (set by the pass before the first read), so
	// that a pass never takes the reserved connection the scrapes use.
	pass         bool
	db           string
	settingsOnce sync.Once
	settings     *pgSettings
	settingsErr  error
	once         sync.Once
	snap         *PGSnapshot
	err          error
}

type snapshotKey struct{}

// withSnapshot returns ctx carrying a snapshot of src to be taken on first
// use by ClusterSnapshot.
func withSnapshot(ctx context.Context, src *postgres.Source) context.Context {
	if src == nil {
		return ctx
	}
	return context.WithValue(ctx, snapshotKey{}, &snapshotHolder{src: src})
}

// withPassSnapshot is withSnapshot for a background pass: the snapshot is
// read on a database connection (see passSnapshotOn).
func withPassSnapshot(ctx context.Context, src *postgres.Source) context.Context {
	if src == nil {
		return ctx
	}
	return context.WithValue(ctx, snapshotKey{}, &snapshotHolder{src: src, pass: true})
}

// passSnapshotOn makes the pass ctx belongs to read its snapshot on the
// connection to db; it must be called before the snapshot is first read.
// It does nothing for a scrape, and tells whether ctx is a pass.
func passSnapshotOn(ctx context.Context, db string) bool {
	h, ok := ctx.Value(snapshotKey{}).(*snapshotHolder)
	if !ok || !h.pass {
		return false
	}
	h.db = db
	return true
}

func holder(ctx context.Context, src *postgres.Source) *snapshotHolder {
	h, ok := ctx.Value(snapshotKey{}).(*snapshotHolder)
	if !ok || h.src != src {
		return &snapshotHolder{src: src} // not shared
	}
	return h
}

func (h *snapshotHolder) readSettings(ctx context.Context) (*pgSettings, error) {
	h.settingsOnce.Do(func() { h.settings, h.settingsErr = readSettings(ctx, h.src, h.db) })
	return h.settings, h.settingsErr
}

// clusterSettings returns the server's settings of the scrape or pass ctx
// belongs to; unlike ClusterSnapshot it never waits for database
// discovery.
func clusterSettings(ctx context.Context, src *postgres.Source) (*pgSettings, error) {
	return holder(ctx, src).readSettings(ctx)
}

// ClusterSnapshot returns the snapshot of pg_stat_activity and pg_locks of
// the scrape or background pass ctx belongs to, reading it on the first
// call (later calls wait for it and share it). A context of neither (a
// direct call) reads a snapshot of its own from src. The first scrape
// after the start waits for the first database discovery.
//
// Collectors that need the cluster-wide views (activity, locks, and the
// cron collector's running jobs: PGBackend.XID, Relations and
// RowExclusive) call it instead of querying the views themselves.
func ClusterSnapshot(ctx context.Context, src *postgres.Source) (*PGSnapshot, error) {
	h := holder(ctx, src)
	h.once.Do(func() {
		p, err := h.readSettings(ctx)
		if err != nil {
			h.err = err
			return
		}
		h.snap, h.err = readSnapshot(ctx, src, h.db, p)
	})
	return h.snap, h.err
}

// errNoSnapshot: the context belongs to no scrape or pass.
var errNoSnapshot = errors.New("no scrape or pass: no snapshot of the cluster-wide views")

// scrapeSnapshot returns the snapshot of the scrape or pass ctx belongs to,
// for a DatabaseCollector (which is not given the Source).
func scrapeSnapshot(ctx context.Context) (*PGSnapshot, error) {
	h, ok := ctx.Value(snapshotKey{}).(*snapshotHolder)
	if !ok {
		return nil, errNoSnapshot
	}
	return ClusterSnapshot(ctx, h.src)
}
