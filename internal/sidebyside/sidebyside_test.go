package sidebyside

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/odoo-exporter/odoo_exporter/internal/pgtest"
)

// Roles of the two exporters, so that the server log tells their sessions
// apart (log_connections).
const (
	oursRole   = "odoo_exporter"
	theirsRole = "postgres_exporter"
)

func scrapes() int {
	if n, err := strconv.Atoi(os.Getenv("SIDE_BY_SIDE_SCRAPES")); err == nil && n > 0 {
		return n
	}
	return 40
}

// exporter is a running exporter process.
type exporter struct {
	name string
	cmd  *exec.Cmd
	url  string
}

func freeAddr(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func start(tb testing.TB, name, bin string, env []string, args ...string) *exporter {
	tb.Helper()
	addr := freeAddr(tb)
	cmd := exec.Command(bin, append(args, "--web.listen-address="+addr)...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(tb.TempDir(), name+".log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	e := &exporter{name: name, cmd: cmd, url: "http://" + addr + "/metrics"}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := e.scrape(); err == nil {
			return e
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			tb.Fatalf("%s did not answer: %s", name, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrape GETs /metrics as Prometheus does (10 s timeout).
func (e *exporter) scrape() (string, error) {
	req, _ := http.NewRequest("GET", e.url, nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), err
}

// cpu is the process's user+system CPU time.
func (e *exporter) cpu(tb testing.TB) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", e.cmd.Process.Pid))
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

var authorized = regexp.MustCompile(`connection authorized: user=(\S+)`)

// sessions counts the sessions each role opened, from the server log.
func sessions(tb testing.TB, c *pgtest.Cluster) map[string]int {
	tb.Helper()
	f, err := os.Open(filepath.Join(c.Socket, "server.log"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	n := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := authorized.FindStringSubmatch(sc.Text()); m != nil {
			n[m[1]]++
		}
	}
	return n
}

type side struct {
	e         *exporter
	durations []time.Duration
	cpu       time.Duration
	sessions  int
}

func (s *side) p(q float64) float64 {
	d := append([]time.Duration(nil), s.durations...)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return float64(d[int(float64(len(d)-1)*q)].Microseconds()) / 1000
}

// compare scrapes the two exporters alternately and reports the figures.
func compare(b *testing.B, c *pgtest.Cluster, ours, theirs *exporter, check func(body string) error) {
	sides := []*side{{e: ours}, {e: theirs}}
	for _, s := range sides { // warm
		for range 2 {
			if _, err := s.e.scrape(); err != nil {
				b.Fatalf("%s: %v", s.e.name, err)
			}
		}
	}
	time.Sleep(time.Second)
	before := sessions(b, c)
	for _, s := range sides {
		s.cpu = s.e.cpu(b)
	}
	n := scrapes()
	for i := range n {
		for _, s := range sides {
			begin := time.Now()
			body, err := s.e.scrape()
			s.durations = append(s.durations, time.Since(begin))
			if err != nil {
				b.Fatalf("%s scrape %d: %v", s.e.name, i, err)
			}
			if s == sides[0] && check != nil {
				if err := check(body); err != nil {
					b.Fatalf("scrape %d of odoo_exporter: %v", i, err)
				}
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	after := sessions(b, c)
	for _, s := range sides {
		s.cpu = s.e.cpu(b) - s.cpu
	}
	o, t := sides[0], sides[1]
	o.sessions, t.sessions = after[oursRole]-before[oursRole], after[theirsRole]-before[theirsRole]
	b.ReportMetric(o.p(0.5), "ours-p50-ms")
	b.ReportMetric(t.p(0.5), "theirs-p50-ms")
	b.ReportMetric(o.p(0.5)/t.p(0.5), "p50-ratio")
	b.ReportMetric(o.p(1), "ours-max-ms")
	b.ReportMetric(t.p(1), "theirs-max-ms")
	b.ReportMetric(float64(o.cpu.Milliseconds())/float64(n), "ours-cpu-ms/scrape")
	b.ReportMetric(float64(t.cpu.Milliseconds())/float64(n), "theirs-cpu-ms/scrape")
	b.ReportMetric(float64(o.sessions)/float64(n), "ours-sessions/scrape")
	b.ReportMetric(float64(t.sessions)/float64(n), "theirs-sessions/scrape")
}

func bins(b *testing.B) (ours, theirs string) {
	theirs = os.Getenv("POSTGRES_EXPORTER")
	ours = os.Getenv("ODOO_EXPORTER_BIN")
	if theirs == "" || ours == "" {
		b.Skip("set POSTGRES_EXPORTER and ODOO_EXPORTER_BIN (scripts/bench-postgres-exporter.sh does)")
	}
	return ours, theirs
}

// cluster starts a cluster with the two exporters' roles and
// log_connections; maxConns raises max_connections (restart).
func cluster(b *testing.B, maxConns int) *pgtest.Cluster {
	c := pgtest.New(b)
	c.Exec(b, "postgres", fmt.Sprintf(`CREATE ROLE %s LOGIN SUPERUSER; CREATE ROLE %s LOGIN SUPERUSER`, oursRole, theirsRole))
	c.Exec(b, "postgres", "ALTER SYSTEM SET log_connections = on")
	c.Exec(b, "postgres", fmt.Sprintf("ALTER SYSTEM SET max_connections = %d", maxConns))
	if err := c.Stop(); err != nil {
		b.Fatal(err)
	}
	if err := c.Start(); err != nil {
		b.Fatal(err)
	}
	return c
}

// jobsSQL adds 100 cron jobs (10 overdue) to a database.
const jobsSQL = `INSERT INTO ir_act_server (name) SELECT jsonb_build_object('en_US', 'job ' || g) FROM generate_series(1, 100) g;
INSERT INTO ir_cron (ir_actions_server_id, cron_name, user_id, nextcall)
SELECT g, 'job ' || g, 1, now() AT TIME ZONE 'UTC' + (CASE WHEN g <= 10 THEN -1 ELSE 1 END) * interval '1 hour' FROM generate_series(1, 100) g;
INSERT INTO res_users (id, login) SELECT 100 + g, 'u' || g FROM generate_series(1, 20) g`

// backends opens n sessions to db: one holds 20 rows, 20 wait for them,
// the rest are idle. It returns a function that ends them.
func backends(b *testing.B, c *pgtest.Cluster, db string, n int) {
	ctx := context.Background()
	conns := make([]*pgx.Conn, n)
	for i := range conns {
		conn, err := pgx.Connect(ctx, c.DSN(db, "")+"&application_name=odoo")
		if err != nil {
			b.Fatalf("backend %d: %v", i, err)
		}
		conns[i] = conn
	}
	b.Cleanup(func() {
		for _, conn := range conns {
			conn.Close(context.Background())
		}
	})
	if _, err := conns[0].Exec(ctx, "BEGIN; UPDATE res_users SET active = true WHERE id > 100"); err != nil {
		b.Fatal(err)
	}
	for i := 1; i <= 20 && i < n; i++ {
		go conns[i].Exec(ctx, fmt.Sprintf("UPDATE res_users SET active = false WHERE id = %d", 100+i))
	}
}

// waitFor scrapes e until its answer has want (a minute at most).
func waitFor(b *testing.B, e *exporter, want string) {
	deadline := time.Now().Add(time.Minute)
	for {
		body, err := e.scrape()
		if err == nil && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: no %s after a minute", e.name, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func has(body, metric string) error {
	if !strings.Contains(body, metric) {
		return fmt.Errorf("no %s in the scrape", metric)
	}
	return nil
}

// succeeded returns a check of odoo_exporter's scrapes: every collector
// succeeded and the scrape has the sample want.
func succeeded(want string) func(body string) error {
	return func(body string) error {
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "odoo_exporter_collector_success") && strings.HasSuffix(line, " 0") {
				return fmt.Errorf("a collector failed: %s", line)
			}
		}
		return has(body, want)
	}
}

// BenchmarkSideBySide: the cases of docs/benchmarks.md.
func BenchmarkSideBySide(b *testing.B) {
	oursBin, theirsBin := bins(b)
	pgDSN := func(c *pgtest.Cluster, db, role string) string {
		return strings.Replace(c.DSN(db, role), "postgres://", "postgresql://", 1)
	}

	// oneDatabase: a cluster holding one Odoo database with 100 jobs and
	// n backends, and postgres_exporter on it.
	oneDatabase := func(b *testing.B, maxConns, n int) (*pgtest.Cluster, string, *exporter) {
		c := cluster(b, maxConns)
		db := c.OdooDB(b, "17.0")
		c.Exec(b, db, jobsSQL)
		backends(b, c, db, n)
		return c, db, start(b, "postgres_exporter", theirsBin, []string{"DATA_SOURCE_NAME=" + pgDSN(c, db, theirsRole)})
	}

	b.Run("one-database", func(b *testing.B) {
		c, db, theirs := oneDatabase(b, 400, 224)
		for _, tc := range []struct{ name, dsnDB, database string }{
			{"readme-all", "postgres", "all"},
			{"readme-named", "postgres", db},
			{"dsn-database", db, ""},
		} {
			b.Run(tc.name, func(b *testing.B) {
				args := []string{"--no-collector.http", "--no-collector.assets", "--no-collector.longpoll"}
				if tc.database != "" {
					args = append(args, "--odoo.database="+tc.database)
				}
				ours := start(b, "odoo_exporter", oursBin, []string{"ODOO_EXPORTER_PG_DSN=" + c.DSN(tc.dsnDB, oursRole)}, args...)
				waitFor(b, ours, "odoo_cron_jobs{") // the first background pass (readme-all)
				want := `odoo_pg_lock_waiting_backends{database="` + db + `"} 20`
				waitFor(b, ours, want)
				compare(b, c, ours, theirs, succeeded(want))
			})
		}
	})

	b.Run("200-databases", func(b *testing.B) {
		c := cluster(b, 400)
		c.OdooDBs(b, "odoo", "17.0", 200, `INSERT INTO ir_act_server (name) SELECT jsonb_build_object('en_US', 'job ' || g) FROM generate_series(1, 20) g;
INSERT INTO ir_cron (ir_actions_server_id, cron_name, user_id, nextcall)
SELECT g, 'job ' || g, 1, now() AT TIME ZONE 'UTC' - interval '1 minute' FROM generate_series(1, 20) g`)
		theirs := start(b, "postgres_exporter", theirsBin, []string{"DATA_SOURCE_NAME=" + pgDSN(c, "postgres", theirsRole)}, "--auto-discover-databases")
		for _, tc := range []struct {
			name    string
			refresh string
		}{
			{"default", ""},          // background passes every 1m
			{"during-passes", "10s"}, // a pass runs during most scrapes
		} {
			b.Run(tc.name, func(b *testing.B) {
				args := []string{"--odoo.database=all", "--no-collector.http", "--no-collector.assets", "--no-collector.longpoll"}
				if tc.refresh != "" {
					args = append(args, "--odoo.database-refresh-interval="+tc.refresh)
				}
				ours := start(b, "odoo_exporter", oursBin, []string{"ODOO_EXPORTER_PG_DSN=" + c.DSN("postgres", oursRole)}, args...)
				waitFor(b, ours, "odoo_exporter_database_pass_timestamp_seconds")
				check := succeeded("odoo_databases 200")
				if tc.refresh != "" {
					// A pass longer than the interval is cut there and
					// fails the database collectors (documented): only the
					// count is checked.
					check = func(body string) error { return has(body, "odoo_databases 200") }
				}
				compare(b, c, ours, theirs, check)
			})
		}
	})

	b.Run("1000-backends", func(b *testing.B) {
		c, db, theirs := oneDatabase(b, 1200, 1000)
		ours := start(b, "odoo_exporter", oursBin, []string{"ODOO_EXPORTER_PG_DSN=" + c.DSN("postgres", oursRole)},
			"--odoo.database="+db, "--no-collector.http", "--no-collector.assets", "--no-collector.longpoll")
		want := `odoo_pg_lock_waiting_backends{database="` + db + `"} 20`
		waitFor(b, ours, want)
		compare(b, c, ours, theirs, succeeded(want))
	})
}
