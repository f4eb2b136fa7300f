package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/jackc/pgx/v5"

	"github.com/odoo-exporter/odoo_exporter/e2e/odoosim"
)

// Incidents are the names the demo (make incident NAME=...) accepts, in
// the order of docs/e2e.md; "fix" ends every incident.
var Incidents = []string{"lock-contention", "cron-jam", "longpoll-stall", "assets-broken",
	"module-stuck", "oom", "proxy-down", "odoo-down", "fix"}

// Inject starts the named incident (see Incidents).
func (s *Stack) Inject(ctx context.Context, name string) error {
	switch name {
	case "lock-contention":
		return s.LockContention(ctx)
	case "cron-jam":
		_, err := s.CronJam(ctx)
		return err
	case "longpoll-stall":
		return s.LongpollStall(ctx, 3*time.Second)
	case "assets-broken":
		return s.BreakAssets(ctx)
	case "module-stuck":
		return s.ModuleStuck(ctx)
	case "oom":
		return s.OOM(ctx)
	case "proxy-down":
		return s.Proxy.Break()
	case "odoo-down":
		return s.StopOdoo(ctx)
	case "fix":
		return s.Fix(ctx)
	}
	return fmt.Errorf("unknown incident %q (one of %s)", name, strings.Join(Incidents, ", "))
}

// hold remembers the release of an incident's sessions (Fix and Close
// release them).
func (s *Stack) hold(f func()) {
	s.mu.Lock()
	s.held = append(s.held, f)
	s.mu.Unlock()
}

// LockContention opens, as Odoo's role, a transaction that updates a
// res_users row and stays idle (a request that hangs with its locks), and
// a second session whose update of the same row waits behind it. The
// waiter finishes as soon as the blocker goes.
func (s *Stack) LockContention(ctx context.Context) error {
	dsn := s.PG.DSN(Database, AppRole)
	blocker, err := pgx.Connect(ctx, dsn+"&application_name=odoo-blocker")
	if err != nil {
		return err
	}
	if _, err := blocker.Exec(ctx, "BEGIN; UPDATE res_users SET active = active WHERE id = 2"); err != nil {
		blocker.Close(ctx)
		return err
	}
	waiter, err := pgx.Connect(ctx, dsn+"&application_name=odoo-waiter")
	if err != nil {
		blocker.Close(ctx)
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = waiter.Exec(context.Background(), "UPDATE res_users SET active = active WHERE id = 2")
	}()
	s.hold(func() {
		blocker.Close(context.Background()) // rolls back: the waiter goes on
		<-done
		waiter.Close(context.Background())
	})
	return nil
}

// CronJam jams the cron runner as a stuck run does: the (only) cron
// worker takes a job ("Stock: recompute everything") and never finishes it
// (its row locked FOR NO KEY UPDATE, as Odoo 18's _acquire_one_job does, in
// a transaction that stays open), so it runs nothing else, and a job due 29
// minutes ago ("Stock: scheduler") waits. The running job is not late
// (running jobs are apart); the waiting one passes OdooCronStuck's 30
// minutes after one minute, when the lock has been held for a minute
// (unlock_cron's shortest min_running). Once the lock's session ends
// (unlock_cron terminates it, or Fix), the worker is free and runs the
// waiting job. It returns the stuck job's id.
func (s *Stack) CronJam(ctx context.Context) (int64, error) {
	s.cron.pause.Lock() // the worker is busy with the stuck job until its session ends
	released := false
	defer func() {
		if !released {
			s.cron.pause.Unlock()
		}
	}()
	conn, err := pgx.Connect(ctx, s.PG.DSN(Database, AppRole)+"&application_name=odoo-cron-worker")
	if err != nil {
		return 0, err
	}
	addJob := func(name, due string) (int64, error) {
		cronName := "'" + name + "'"
		if strings.HasPrefix(s.opts.Version, "16") {
			cronName = `'{"en_US": "` + name + `"}'::jsonb` // 16.0: cron_name is jsonb
		}
		var id int64
		err := conn.QueryRow(ctx, `WITH a AS (
  INSERT INTO ir_act_server (name, model_name, code)
  VALUES (jsonb_build_object('en_US', $1::text), 'stock.quant', 'model._stuck()') RETURNING id)
INSERT INTO ir_cron (ir_actions_server_id, cron_name, user_id, interval_number, interval_type, nextcall)
SELECT id, `+cronName+`, 1, 1, 'days', (now() AT TIME ZONE 'UTC') - interval '`+due+`' FROM a
RETURNING id`, name).Scan(&id)
		return id, err
	}
	id, err := addJob("Stock: recompute everything", "1 minute")
	if err == nil {
		_, err = addJob("Stock: scheduler", "29 minutes")
	}
	if err == nil {
		// Odoo 18's _acquire_one_job shape: the job's row, locked, in a
		// transaction that lasts as long as the job runs.
		_, err = conn.Exec(ctx, fmt.Sprintf("BEGIN; SELECT * FROM ir_cron WHERE active = true AND id = %d FOR NO KEY UPDATE", id))
	}
	if err != nil {
		conn.Close(ctx)
		return 0, err
	}
	// The worker is free again when the lock's session ends. Another
	// session watches for it: the lock's session itself runs nothing more,
	// as Odoo's does.
	watch, err := pgx.Connect(ctx, s.PG.DSN(Database, ""))
	if err != nil {
		conn.Close(ctx)
		return 0, err
	}
	pid := int64(conn.PgConn().PID())
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer s.cron.pause.Unlock()
		defer conn.Close(context.Background())
		defer watch.Close(context.Background())
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			var alive bool
			qctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := watch.QueryRow(qctx, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", pid).Scan(&alive)
			cancel()
			if err == nil && !alive {
				return // terminated
			}
		}
	}()
	released = true
	s.hold(func() { close(stop); <-done })
	return id, nil
}

// ModuleStuck leaves the mail module in 'to upgrade' since an hour, as an
// interrupted upgrade does.
func (s *Stack) ModuleStuck(ctx context.Context) error {
	return execSQL(ctx, s.PG.DSN(Database, AppRole), `UPDATE ir_module_module
SET state = 'to upgrade', write_date = (now() AT TIME ZONE 'UTC') - interval '1 hour' WHERE name = 'mail'`)
}

// fault posts a fault to the stand-in's admin endpoint.
func (s *Stack) fault(ctx context.Context, q url.Values) error {
	// Scenarios run in parallel, and one of them (longpoll-stall) has the
	// healer restart the stand-in: a fault injected in that second is
	// retried until the stand-in answers again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.WebURL+"/__odoosim/fault?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if ctx.Err() != nil || time.Now().After(deadline) {
				return err
			}
			time.Sleep(500 * time.Millisecond)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("e2e: fault %v: %s", q, resp.Status)
		}
		return nil
	}
}

// LongpollStall makes every request of the stand-in's gevent port wait
// delay (the fault lives in the process: a restart clears it).
func (s *Stack) LongpollStall(ctx context.Context, delay time.Duration) error {
	return s.fault(ctx, url.Values{"fault": {"stall_slow"}, "delay": {delay.String()}})
}

// BreakAssets deletes the file of the login page's first bundle: the
// bundle answers 500 until its attachment rows are deleted.
func (s *Stack) BreakAssets(ctx context.Context) error {
	return s.fault(ctx, url.Values{"fault": {"broken_bundle"}, "bundle": {odoosim.Bundles()[0]}})
}

// OOM makes the worker container allocate past its memory limit; the
// kernel kills it and Docker restarts it (on-failure).
func (s *Stack) OOM(ctx context.Context) error {
	if _, err := s.Worker.Alloc(ctx, 2*workerLimitMB); err == nil {
		return errors.New("e2e: the worker allocated twice its memory limit and lives")
	}
	return nil
}

// StopOdoo stops the stand-in's container (Odoo down: the proxy answers
// 502).
func (s *Stack) StopOdoo(ctx context.Context) error {
	timeout := 5
	return s.Docker.Client().ContainerStop(ctx, SimContainer, container.StopOptions{Timeout: &timeout})
}

// StartOdoo starts the stand-in's container again.
func (s *Stack) StartOdoo(ctx context.Context) error {
	if err := s.Docker.Client().ContainerStart(ctx, SimContainer, container.StartOptions{}); err != nil {
		return err
	}
	return s.waitHTTP(ctx, SimContainer, s.WebURL+"/web/health", "")
}

// Fix ends every incident: sessions released, proxy repaired, stand-in
// running without faults, modules installed.
func (s *Stack) Fix(ctx context.Context) error {
	s.mu.Lock()
	held := s.held
	s.held = nil
	s.mu.Unlock()
	for _, f := range held {
		f()
	}
	var errs []error
	if err := s.Proxy.SetUpstream(hostPort(s.WebURL)); err != nil {
		errs = append(errs, err)
	}
	if c, err := s.Docker.Client().ContainerInspect(ctx, SimContainer); err == nil && !c.State.Running {
		errs = append(errs, s.StartOdoo(ctx))
	}
	errs = append(errs, s.fault(ctx, url.Values{"fault": {"clear"}}))
	errs = append(errs, execSQL(ctx, s.PG.DSN(Database, AppRole),
		`UPDATE ir_module_module SET state = 'installed' WHERE state LIKE 'to %'`))
	return errors.Join(errs...)
}

// AuditLine is one line of the healer's audit log (docs/healer.md).
type AuditLine struct {
	Time        time.Time `json:"time"`
	Alert       string    `json:"alert"`
	Fingerprint string    `json:"fingerprint"`
	Rule        string    `json:"rule"`
	Action      string    `json:"action"`
	Target      string    `json:"target"`
	DryRun      bool      `json:"dry_run"`
	Result      string    `json:"result"`
	Steps       []string  `json:"steps"`
	Error       string    `json:"error"`
}

// Audit reads the healer's audit log.
func (s *Stack) Audit() ([]AuditLine, error) {
	f, err := os.Open(s.AuditFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []AuditLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l AuditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("e2e: audit line %q: %w", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

// cronWorker imitates Odoo's cron worker: every second it takes the
// ready jobs one by one (FOR NO KEY UPDATE SKIP LOCKED, so a job another
// worker holds is skipped), "runs" it and moves its nextcall on by its
// interval.
type cronWorker struct {
	dsn    string
	pause  sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

func startCronWorker(dsn string) *cronWorker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &cronWorker{dsn: dsn + "&application_name=odoo-cron", cancel: cancel, done: make(chan struct{})}
	go w.loop(ctx)
	return w
}

func (w *cronWorker) stop() {
	w.cancel()
	<-w.done
}

func (w *cronWorker) loop(ctx context.Context) {
	defer close(w.done)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if conn == nil || conn.IsClosed() {
			c, err := pgx.Connect(ctx, w.dsn)
			if err != nil {
				continue
			}
			conn = c
		}
		w.pause.Lock()
		err := w.runReady(ctx, conn)
		w.pause.Unlock()
		if err != nil {
			conn.Close(context.Background())
			conn = nil
		}
	}
}

const acquireJob = `SELECT id FROM ir_cron
WHERE active AND nextcall <= (now() AT TIME ZONE 'UTC')
ORDER BY priority, nextcall LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED`

const runJob = `UPDATE ir_cron SET lastcall = (now() AT TIME ZONE 'UTC'),
  nextcall = (now() AT TIME ZONE 'UTC') + interval_number * ('1 ' || interval_type)::interval
WHERE id = $1`

func (w *cronWorker) runReady(ctx context.Context, conn *pgx.Conn) error {
	for range 20 {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		var id int64
		err = tx.QueryRow(ctx, acquireJob).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return tx.Rollback(ctx)
		}
		if err != nil {
			_ = tx.Rollback(ctx)
			return err
		}
		if _, err := tx.Exec(ctx, runJob, id); err != nil {
			_ = tx.Rollback(ctx)
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
	}
	return nil
}
