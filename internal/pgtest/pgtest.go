// Package pgtest starts ephemeral PostgreSQL clusters for tests, with
// initdb and pg_ctl from the machine's PostgreSQL, and loads Odoo-shaped
// schemas (16.0, 17.0, 18.0) into databases of them.
//
// Data directory and socket live in a temporary directory; the TCP port is
// a free one picked at start. When the tests run as root, the server runs
// as the "postgres" user (initdb refuses root), which Debian's postgresql
// package creates.
package pgtest

import (
	"context"
	"embed"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5"
)

//go:embed schema/*.sql
var schemas embed.FS

// Versions lists the Odoo series whose schema fixtures exist.
var Versions = []string{"16.0", "17.0", "18.0"}

// Cluster is a running ephemeral PostgreSQL cluster.
type Cluster struct {
	Dir    string // data directory
	Socket string // socket directory
	Port   int
	bindir string
	cred   *syscall.Credential
	mu     sync.Mutex
	dbSeq  int
}

// Superuser is the name of the cluster's superuser.
const Superuser = "postgres"

// BinDir finds the PostgreSQL server binaries.
func BinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	sort.Strings(matches)
	if len(matches) == 0 {
		return "", fmt.Errorf("no PostgreSQL server found (install Debian's postgresql package, or set PG_BINDIR)")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

// New starts a cluster for tb and stops it when tb ends. conf, when
// given, is appended to postgresql.conf (e.g. shared_preload_libraries).
func New(tb testing.TB, conf ...string) *Cluster {
	tb.Helper()
	c, err := Start(conf...)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// Start starts a cluster; the caller must Close it. conf, when given, is
// appended to postgresql.conf.
func Start(conf ...string) (*Cluster, error) {
	bindir, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: filepath.Join(dir, "data"), Socket: dir, bindir: bindir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a 'postgres' user for the server: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	if out, err := c.run("initdb", "-D", c.Dir, "-U", Superuser, "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	settings := `
listen_addresses = '127.0.0.1'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
deadlock_timeout = '100ms'
log_min_messages = warning
` + strings.Join(conf, "\n") + "\n"
	f, err := os.OpenFile(filepath.Join(c.Dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(settings)
	f.Close()
	if err != nil {
		return nil, err
	}
	if c.Port, err = freePort(); err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.bindir, name), args...)
	cmd.Dir = c.Socket
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd.CombinedOutput()
}

// Start (re)starts the server of a stopped cluster and waits until it
// accepts connections.
func (c *Cluster) Start() error {
	opts := fmt.Sprintf("-p %d -k %s", c.Port, c.Socket)
	if out, err := c.run("pg_ctl", "-D", c.Dir, "-o", opts, "-l", filepath.Join(c.Socket, "server.log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Socket, "server.log"))
		return fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
	return nil
}

// Stop stops the server (fast mode: sessions are ended).
func (c *Cluster) Stop() error {
	if out, err := c.run("pg_ctl", "-D", c.Dir, "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	return nil
}

// Close stops the server and removes its files.
func (c *Cluster) Close() {
	_, _ = c.run("pg_ctl", "-D", c.Dir, "-m", "immediate", "-w", "stop")
	os.RemoveAll(c.Socket)
}

// DSN is a URL for database db as user (Superuser when empty), over TCP.
func (c *Cluster) DSN(db, user string) string {
	if user == "" {
		user = Superuser
	}
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", user, c.Port, db)
}

// Connect opens a superuser connection to db, closed when tb ends.
func (c *Cluster) Connect(tb testing.TB, db string) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN(db, ""))
	if err != nil {
		tb.Fatalf("pgtest: connect to %s: %v", db, err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs sql in db as superuser.
func (c *Cluster) Exec(tb testing.TB, db, sql string, args ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN(db, ""))
	if err != nil {
		tb.Fatalf("pgtest: connect to %s: %v", db, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		tb.Fatalf("pgtest: exec in %s: %v\n%s", db, err, sql)
	}
}

// Schema returns the SQL fixture of an Odoo series ("16.0", "17.0", "18.0"):
// the tables the exporter and healer read or write, with Odoo's columns,
// types and constraints, and base installed.
func Schema(version string) (string, error) {
	cron, err := schemas.ReadFile("schema/cron" + strings.TrimSuffix(version, ".0") + ".sql")
	if err != nil {
		return "", fmt.Errorf("no schema fixture for Odoo %s", version)
	}
	common, err := schemas.ReadFile("schema/common.sql")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	t := template.Must(template.New("common").Parse(string(common)))
	if err := t.Execute(&b, struct{ Version string }{version + ".1.3"}); err != nil {
		return "", err
	}
	b.Write(cron)
	return b.String(), nil
}

// OdooDB creates a new database with the schema of Odoo version (see
// Versions) and returns its name. The name is unique within the cluster.
func (c *Cluster) OdooDB(tb testing.TB, version string) string {
	tb.Helper()
	c.mu.Lock()
	c.dbSeq++
	name := fmt.Sprintf("odoo%s_%d", strings.TrimSuffix(version, ".0"), c.dbSeq)
	c.mu.Unlock()
	c.CreateOdooDB(tb, name, version)
	return name
}

// CreateOdooDB creates database name with the schema of Odoo version.
func (c *Cluster) CreateOdooDB(tb testing.TB, name, version string) {
	tb.Helper()
	schema, err := Schema(version)
	if err != nil {
		tb.Fatal(err)
	}
	c.Exec(tb, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	c.Exec(tb, name, schema)
}

// OdooDBs creates n databases with the schema of Odoo version, named
// prefix_000, prefix_001..., as copies of one template (itself left
// unconnectable, so that discovery does not count it), four at a time.
// sql, when given, runs in the template first (e.g. to add cron jobs).
func (c *Cluster) OdooDBs(tb testing.TB, prefix, version string, n int, sql string) []string {
	tb.Helper()
	template := prefix + "_template"
	c.CreateOdooDB(tb, template, version)
	if sql != "" {
		c.Exec(tb, template, sql)
	}
	c.Exec(tb, "postgres", "UPDATE pg_database SET datallowconn = false WHERE datname = $1", template)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s_%03d", prefix, i)
	}
	var (
		wg   sync.WaitGroup
		next = make(chan string)
		errs = make(chan error, n)
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			conn, err := pgx.Connect(ctx, c.DSN("postgres", ""))
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close(ctx)
			for name := range next {
				if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{template}.Sanitize()); err != nil {
					errs <- fmt.Errorf("create %s: %w", name, err)
				}
			}
		}()
	}
	for _, name := range names {
		next <- name
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatalf("pgtest: %v", err)
	}
	return names
}
