package heal

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGConfig configures the healer's PostgreSQL sessions.
type PGConfig struct {
	// DSN is a libpq connection string or URL; its database is replaced
	// by the alert's.
	DSN string
	// Password, when set, overrides the DSN's (read from a file).
	Password string
	// StatementTimeout and LockTimeout are set on every session so that
	// the healer never waits long behind the locks it should clear.
	StatementTimeout time.Duration
	LockTimeout      time.Duration
	ConnectTimeout   time.Duration
}

// ApplicationName is the application_name of the healer's sessions.
const ApplicationName = "odoo_healer"

// PGConnector opens sessions to one database at a time.
type PGConnector struct {
	base *pgx.ConnConfig
}

// NewPGConnector validates cfg. Errors never include the DSN (it may hold
// a password).
func NewPGConnector(cfg PGConfig) (*PGConnector, error) {
	cc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, errors.New("invalid PostgreSQL DSN (not shown: it may hold a password)")
	}
	if cfg.Password != "" {
		cc.Password = cfg.Password
	}
	if cfg.ConnectTimeout > 0 {
		cc.ConnectTimeout = cfg.ConnectTimeout
	}
	if cfg.StatementTimeout <= 0 {
		cfg.StatementTimeout = 10 * time.Second
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = 2 * time.Second
	}
	cc.RuntimeParams["application_name"] = ApplicationName
	cc.RuntimeParams["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	cc.RuntimeParams["lock_timeout"] = strconv.FormatInt(cfg.LockTimeout.Milliseconds(), 10)
	// Never let an abandoned healer transaction hold locks itself.
	cc.RuntimeParams["idle_in_transaction_session_timeout"] = "60000"
	return &PGConnector{base: cc}, nil
}

// Connect opens a session to database db.
func (p *PGConnector) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	if p == nil {
		return nil, errors.New("no PostgreSQL DSN configured (--pg.dsn)")
	}
	cc := p.base.Copy()
	cc.Database = db
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("connecting to database %q: %w", db, err)
	}
	return conn, nil
}

// closeTimeout bounds closing a session, also after the action's
// deadline passed, so that shutdown never waits on a dead connection.
const closeTimeout = 5 * time.Second

// withConn runs fn on a fresh session to db and closes it.
func (p *PGConnector) withConn(ctx context.Context, db string, fn func(*pgx.Conn) error) error {
	conn, err := p.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		conn.Close(cctx)
	}()
	return fn(conn)
}

// verifyNone returns a verify step that passes once count, a query
// returning one count, returns 0 on a fresh session to db; what names
// what is counted ("%d <what> still ...").
func verifyNone(env *Env, db, what, count string, args ...any) func(context.Context) error {
	return func(ctx context.Context) error {
		return env.PG.withConn(ctx, db, func(conn *pgx.Conn) error {
			var n int
			if err := conn.QueryRow(ctx, count, args...).Scan(&n); err != nil {
				return fmt.Errorf("counting %s: %w", what, err)
			}
			if n > 0 {
				return fmt.Errorf("%d %s left", n, what)
			}
			return nil
		})
	}
}
