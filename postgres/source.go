// Package postgres gives the collectors bounded, read-only access to the
// PostgreSQL cluster that holds one or more Odoo databases.
//
// Every session it opens is read-only (default_transaction_read_only), is
// named odoo_exporter (application_name) and carries statement_timeout and
// lock_timeout, so that no query of the exporter can hold a lock Odoo waits
// for or run away. At most Config.MaxConns connections are open at any time,
// across all databases, and idle connections are kept and reused, so that a
// warm scrape opens no session.
//
// One of the connections is reserved for the cluster-wide views
// (pg_stat_activity, pg_locks, pg_database): it stays open to the DSN's
// database and is shared, one user at a time, by the cluster-wide
// collectors and by discovery; the others (MaxConns-1) go to the Odoo
// databases. Work on the databases, however long, can therefore never
// starve the cluster-wide collectors. With MaxConns = 1 nothing is reserved
// and everything shares the one connection.
package postgres

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// AllDatabases is the value of Config.Database that asks for every Odoo
// database of the cluster to be discovered.
const AllDatabases = "all"

// ApplicationName is the application_name of every session of the
// exporter's Source; ProberApplicationName is the one of the bus prober's
// sessions. Both are left out of the backends the collectors report.
const (
	ApplicationName       = "odoo_exporter"
	ProberApplicationName = "odoo_exporter_prober"
)

// Config says how to reach the cluster and how gently to use it.
type Config struct {
	// DSN is a libpq connection string or URL (postgres://...).
	DSN string
	// Password, when set, overrides the DSN's password (read from a file).
	Password string
	// Database is one database name, "" for the DSN's own database, or
	// AllDatabases.
	Database string
	// MaxConns bounds the number of open connections (in use and idle).
	// From 2, one of them is reserved for the cluster-wide views.
	MaxConns int
	// StatementTimeout and LockTimeout are set on every session.
	StatementTimeout time.Duration
	LockTimeout      time.Duration
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout time.Duration
	// IdleTimeout closes connections unused for that long.
	IdleTimeout time.Duration
	// DiscoveryInterval is how long a discovered database list is reused
	// before discovery runs again (in the background).
	DiscoveryInterval time.Duration
	// DiscoveryTimeout bounds one discovery run; 0 = DiscoveryInterval.
	DiscoveryTimeout time.Duration
}

// Queryer is the part of *pgx.Conn the collectors use.
type Queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	// SendBatch sends several queries in one round trip (one implicit
	// transaction).
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Source hands out connections to the cluster's databases.
type Source struct {
	cfg    Config
	base   *pgx.ConnConfig
	logger *slog.Logger

	// The reserved connection to the DSN's database (MaxConns >= 2).
	reserved    bool
	clusterSem  chan struct{} // held while the connection is in use
	cluster     *pgx.Conn     // nil when not open; guarded by clusterSem
	clusterUsed time.Time     // guarded by clusterSem

	// Connections to the databases.
	sem  chan struct{}
	mu   sync.Mutex
	idle *list.List // of *idleConn, most recently used at the front
	open int        // database connections, idle + in use
	// clusterOpen: the reserved connection is open.
	clusterOpen bool

	opened atomic.Int64 // sessions opened since New

	disc discovery
	// bg bounds the background work (discovery runs); Close ends it.
	bg       context.Context
	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup
}

type idleConn struct {
	db   string
	conn *pgx.Conn
	used time.Time
}

// New checks the configuration and returns a Source. It does not connect.
func New(cfg Config, logger *slog.Logger) (*Source, error) {
	if cfg.MaxConns < 1 {
		return nil, fmt.Errorf("postgres: max connections must be at least 1, got %d", cfg.MaxConns)
	}
	base, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx error texts can quote the DSN, password included: do not wrap it.
		return nil, errors.New("postgres: cannot parse the DSN (check its syntax; it is not logged because it may hold a password)")
	}
	if cfg.Password != "" {
		base.Password = cfg.Password
	}
	if cfg.ConnectTimeout > 0 {
		base.ConnectTimeout = cfg.ConnectTimeout
	}
	if base.RuntimeParams == nil {
		base.RuntimeParams = map[string]string{}
	}
	base.RuntimeParams["application_name"] = ApplicationName
	base.RuntimeParams["default_transaction_read_only"] = "on"
	base.RuntimeParams["statement_timeout"] = msString(cfg.StatementTimeout)
	base.RuntimeParams["lock_timeout"] = msString(cfg.LockTimeout)
	base.RuntimeParams["idle_in_transaction_session_timeout"] = msString(cfg.StatementTimeout)
	// One round trip per query, no server-side prepared statements: the
	// queries are few and run once per scrape.
	base.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	if cfg.DiscoveryInterval <= 0 {
		cfg.DiscoveryInterval = 5 * time.Minute
	}
	if cfg.DiscoveryTimeout <= 0 {
		cfg.DiscoveryTimeout = cfg.DiscoveryInterval
	}
	dbConns := cfg.MaxConns
	reserved := cfg.MaxConns >= 2
	if reserved {
		dbConns--
	}
	bg, cancel := context.WithCancel(context.Background())
	return &Source{
		cfg:        cfg,
		base:       base,
		logger:     logger,
		reserved:   reserved,
		clusterSem: make(chan struct{}, 1),
		sem:        make(chan struct{}, dbConns),
		idle:       list.New(),
		bg:         bg,
		bgCancel:   cancel,
	}, nil
}

func msString(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// DefaultDatabase is the database named by the DSN (pgx defaults it to the
// user name). Cluster-wide views are read there.
func (s *Source) DefaultDatabase() string { return s.base.Database }

// User is the role the exporter connects as.
func (s *Source) User() string { return s.base.User }

// MaxConns is the bound on open connections.
func (s *Source) MaxConns() int { return s.cfg.MaxConns }

// DatabaseConns is how many connections may be open to the databases at
// once (MaxConns less the reserved one).
func (s *Source) DatabaseConns() int { return cap(s.sem) }

// SessionsOpened is the number of sessions the Source opened since New.
// A warm scrape adds none.
func (s *Source) SessionsOpened() int64 { return s.opened.Load() }

// WithConn runs fn on a connection to database db. db "" is the reserved
// connection to the DSN's database, meant for the cluster-wide views: one
// user at a time, it waits while another uses it. Other databases block
// while MaxConns-1 connections are in use. A connection that failed is
// closed rather than reused.
func (s *Source) WithConn(ctx context.Context, db string, fn func(Queryer) error) error {
	if db == "" {
		if s.reserved {
			return s.withCluster(ctx, fn)
		}
		db = s.base.Database
	}
	return s.withConn(ctx, db, true, fn)
}

// withCluster runs fn on the reserved connection.
func (s *Source) withCluster(ctx context.Context, fn func(Queryer) error) error {
	db := s.base.Database
	select {
	case s.clusterSem <- struct{}{}:
	case <-ctx.Done():
		return &ConnectError{Database: db, Err: fmt.Errorf("waiting for the cluster connection: %w", ctx.Err())}
	}
	defer func() { <-s.clusterSem }()
	// A connection unused for a second may have been ended by the server
	// (restart, terminated): check it (one round trip) and reconnect.
	if s.cluster != nil && (s.cluster.IsClosed() ||
		(time.Since(s.clusterUsed) >= time.Second && s.cluster.Ping(ctx) != nil)) {
		s.dropCluster()
	}
	if s.cluster == nil {
		conn, err := s.connect(ctx, db)
		if err != nil {
			return err
		}
		s.cluster = conn
		s.mu.Lock()
		s.clusterOpen = true
		s.mu.Unlock()
	}
	err := fn(s.cluster)
	s.clusterUsed = time.Now()
	if s.cluster.IsClosed() || (err != nil && !isServerError(err)) {
		s.dropCluster()
	}
	return err
}

// dropCluster closes the reserved connection; the caller holds clusterSem.
func (s *Source) dropCluster() {
	closeQuietly(s.cluster)
	s.cluster = nil
	s.mu.Lock()
	s.clusterOpen = false
	s.mu.Unlock()
}

// withConn runs fn on a connection to db from the database connections.
// With keep false the connection is closed afterwards instead of kept
// idle (discovery's visit of a database that is not Odoo's).
func (s *Source) withConn(ctx context.Context, db string, keep bool, fn func(Queryer) error) error {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return &ConnectError{Database: db, Err: fmt.Errorf("waiting for a free connection: %w", ctx.Err())}
	}
	defer func() { <-s.sem }()

	conn, err := s.acquire(ctx, db)
	if err != nil {
		return err
	}
	err = fn(conn)
	s.release(db, conn, keep, err)
	return err
}

func (s *Source) acquire(ctx context.Context, db string) (*pgx.Conn, error) {
	s.mu.Lock()
	now := time.Now()
	var victim *pgx.Conn
	for e := s.idle.Front(); e != nil; e = e.Next() {
		ic := e.Value.(*idleConn)
		if ic.db == db && now.Sub(ic.used) < s.cfg.IdleTimeout && !ic.conn.IsClosed() {
			s.idle.Remove(e)
			s.mu.Unlock()
			// An idle connection may have been ended by the server
			// (restart, a database dropped WITH (FORCE), Odoo's database
			// manager terminating sessions): check it before handing it
			// out (one round trip), so that the collection does not fail.
			if ic.conn.Ping(ctx) == nil {
				return ic.conn, nil
			}
			closeQuietly(ic.conn)
			s.mu.Lock()
			s.open--
			break
		}
	}
	// A new connection is needed: make room by closing the least recently
	// used idle one when the bound of the database connections is reached.
	if s.open >= cap(s.sem) {
		if e := s.idle.Back(); e != nil {
			victim = s.idle.Remove(e).(*idleConn).conn
			s.open--
		}
	}
	s.open++
	s.mu.Unlock()
	if victim != nil {
		closeQuietly(victim)
	}
	conn, err := s.connect(ctx, db)
	if err != nil {
		s.mu.Lock()
		s.open--
		s.mu.Unlock()
		return nil, err
	}
	return conn, nil
}

func (s *Source) connect(ctx context.Context, db string) (*pgx.Conn, error) {
	cc := s.base.Copy()
	cc.Database = db
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, &ConnectError{Database: db, Err: redact(err)}
	}
	s.opened.Add(1)
	return conn, nil
}

func (s *Source) release(db string, conn *pgx.Conn, keep bool, err error) {
	if !keep || conn.IsClosed() || (err != nil && !isServerError(err)) {
		closeQuietly(conn)
		s.mu.Lock()
		s.open--
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	s.idle.PushFront(&idleConn{db: db, conn: conn, used: time.Now()})
	s.mu.Unlock()
}

// closeIdle closes the idle connections to db (a database that was dropped
// or is being dropped: an idle session would keep DROP DATABASE waiting).
func (s *Source) closeIdle(db string) {
	s.mu.Lock()
	var conns []*pgx.Conn
	for e := s.idle.Front(); e != nil; {
		next := e.Next()
		if ic := e.Value.(*idleConn); ic.db == db {
			conns = append(conns, ic.conn)
			s.idle.Remove(e)
			s.open--
		}
		e = next
	}
	s.mu.Unlock()
	for _, c := range conns {
		closeQuietly(c)
	}
}

// isServerError tells an error the server answered (the connection is
// still usable) from a broken connection or a cancelled context.
func isServerError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr)
}

func closeQuietly(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// redact drops connection parameters from pgx's connect errors, which may
// otherwise carry host and user details; the password is never in them, but
// keep messages short and stable.
func redact(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Unwrap() != nil {
		return ce.Unwrap()
	}
	return err
}

// ConnectError reports that a database could not be reached.
type ConnectError struct {
	Database string
	Err      error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("connecting to database %q: %v", e.Database, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// IsDatabaseMissing tells whether err says the database does not exist
// (SQLSTATE 3D000, e.g. it was dropped since it was discovered).
func IsDatabaseMissing(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "3D000"
}

var deniedRE = regexp.MustCompile(`permission denied for (?:table|relation|view|sequence) "?([^" ]+)"?`)

// Explain adds to a "permission denied" error (SQLSTATE 42501) the grant
// that is missing, e.g. GRANT SELECT ON ir_cron TO odoo_exporter; other
// errors are returned as they are.
func (s *Source) Explain(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		return err
	}
	if m := deniedRE.FindStringSubmatch(pgErr.Message); m != nil {
		return fmt.Errorf("%w (missing grant: GRANT SELECT ON %s TO %s)", err, m[1], ident(s.base.User))
	}
	return fmt.Errorf("%w (the role %s lacks a privilege: see the README's Least privilege)", err, s.base.User)
}

// Close ends the background discovery and closes every idle connection
// and the reserved one.
func (s *Source) Close() {
	s.bgCancel()
	s.bgWG.Wait()
	s.mu.Lock()
	var conns []*pgx.Conn
	for e := s.idle.Front(); e != nil; e = e.Next() {
		conns = append(conns, e.Value.(*idleConn).conn)
	}
	s.open -= len(conns)
	s.idle.Init()
	s.mu.Unlock()
	for _, c := range conns {
		closeQuietly(c)
	}
	// The reserved connection, once its user is done with it.
	s.clusterSem <- struct{}{}
	if s.cluster != nil {
		s.dropCluster()
	}
	<-s.clusterSem
}

// OpenConns is the number of open connections, idle and in use, the
// reserved one included.
func (s *Source) OpenConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clusterOpen {
		return s.open + 1
	}
	return s.open
}

var plainIdent = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

// ident quotes name for SQL when it needs quotes.
func ident(name string) string {
	if plainIdent.MatchString(name) {
		return name
	}
	return pgx.Identifier{name}.Sanitize()
}
