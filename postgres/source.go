// Package postgres gives the collectors bounded, read-only access to the
// PostgreSQL cluster that holds one or more Odoo databases.
//
// Every session it opens is read-only (default_transaction_read_only), is
// named odoo_exporter (application_name) and carries statement_timeout and
// lock_timeout, so that no query of the exporter can hold a lock Odoo waits
// for or run away. At most Config.MaxConns connections are open at any time,
// across all databases; idle connections are kept and reused.
package postgres

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// AllDatabases is the value of Config.Database that asks for every Odoo
// database of the cluster to be discovered.
const AllDatabases = "all"

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
	MaxConns int
	// StatementTimeout and LockTimeout are set on every session.
	StatementTimeout time.Duration
	LockTimeout      time.Duration
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout time.Duration
	// IdleTimeout closes connections unused for that long.
	IdleTimeout time.Duration
	// DiscoveryInterval is how long a discovered database list is reused.
	DiscoveryInterval time.Duration
}

// Queryer is the part of *pgx.Conn the collectors use.
type Queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Source hands out connections to the cluster's databases.
type Source struct {
	cfg     Config
	base    *pgx.ConnConfig
	logger  *slog.Logger
	sem     chan struct{}
	mu      sync.Mutex
	idle    *list.List // of *idleConn, most recently used at the front
	open    int        // idle + in use
	dbsMu   sync.Mutex
	dbs     []string
	dbsTime time.Time
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
	base.RuntimeParams["application_name"] = "odoo_exporter"
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
	return &Source{
		cfg:    cfg,
		base:   base,
		logger: logger,
		sem:    make(chan struct{}, cfg.MaxConns),
		idle:   list.New(),
	}, nil
}

func msString(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// DefaultDatabase is the database named by the DSN (pgx defaults it to the
// user name). Cluster-wide views are read there.
func (s *Source) DefaultDatabase() string { return s.base.Database }

// MaxConns is the bound on open connections.
func (s *Source) MaxConns() int { return s.cfg.MaxConns }

// WithConn runs fn on a connection to database db ("" = the DSN's database).
// It blocks while MaxConns connections are in use. A connection that failed
// is closed rather than reused.
func (s *Source) WithConn(ctx context.Context, db string, fn func(Queryer) error) error {
	if db == "" {
		db = s.base.Database
	}
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
	s.release(db, conn, err)
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
			// A connection idle for a while may have been ended by the
			// server (restart, idle timeout): check it before handing it
			// out, so that a scrape after a restart does not fail.
			if now.Sub(ic.used) < time.Second || ic.conn.Ping(ctx) == nil {
				return ic.conn, nil
			}
			closeQuietly(ic.conn)
			s.mu.Lock()
			s.open--
			break
		}
	}
	// A new connection is needed: make room by closing the least recently
	// used idle one when the bound is reached.
	if s.open >= s.cfg.MaxConns {
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

	cc := s.base.Copy()
	cc.Database = db
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		s.mu.Lock()
		s.open--
		s.mu.Unlock()
		return nil, &ConnectError{Database: db, Err: redact(err)}
	}
	return conn, nil
}

func (s *Source) release(db string, conn *pgx.Conn, err error) {
	if conn.IsClosed() || (err != nil && !isServerError(err)) {
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

// Close closes every idle connection.
func (s *Source) Close() {
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
}

// OpenConns is the number of open connections, idle and in use.
func (s *Source) OpenConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}
