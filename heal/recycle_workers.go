package heal

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/odoo-exporter/odoo_exporter/odooproc"
)

func init() {
	registerAction("recycle_workers", &ActionKind{
		TargetKind:  TargetContainer,
		TargetLabel: "name",
		New: func(n *yaml.Node) (Action, error) {
			p := RecycleWorkersParams{
				Mode:        "signal",
				Signal:      "SIGHUP",
				Settle:      model.Duration(5 * time.Second),
				StopTimeout: model.Duration(30 * time.Second),
			}
			if err := decodeParams(n, &p); err != nil {
				return nil, err
			}
			if err := p.checkMode(n); err != nil {
				return nil, err
			}
			switch p.Signal {
			case "SIGHUP", "HUP":
			default:
				// SIGHUP is the only signal on which Odoo's prefork master
				// renews its workers; the others it handles (SIGQUIT, SIGUSR1:
				// log stacks or cache stats, SIGTTIN/SIGTTOU: resize the pool)
				// heal nothing, and an unhandled one kills it.
				return nil, fmt.Errorf("signal %q: only SIGHUP (Odoo's graceful reload of its workers) is allowed", p.Signal)
			}
			if p.Settle < 0 || time.Duration(p.Settle) > 10*time.Minute || p.StopTimeout < 0 || time.Duration(p.StopTimeout) > 10*time.Minute {
				return nil, errors.New("settle and stop_timeout must be between 0s and 10m")
			}
			return &RecycleWorkers{p}, nil
		},
	})
}

// RecycleWorkersParams configure recycle_workers.
type RecycleWorkersParams struct {
	// Mode is "signal" (default: send Signal to Odoo's master process in
	// the container), "restart" (restart the container) or "host" (send
	// Signal to Odoo's master process running on the healer's host, found
	// in ProcRoot: see recycle_host.go).
	Mode string `yaml:"mode"`
	// Signal sent in signal mode; on SIGHUP Odoo's prefork master stops
	// (workers finish their requests within limit_time_real) and
	// re-executes itself in the same process with new workers.
	Signal string `yaml:"signal"`
	// Settle: verify passes only once the new workers (their pids) and
	// Odoo's health stayed the same this long: a worker that crashes as it
	// starts and is spawned again by the master (the gevent process
	// failing its imports) never settles.
	Settle model.Duration `yaml:"settle"`
	// StopTimeout for restart mode.
	StopTimeout model.Duration `yaml:"stop_timeout"`
	// ProcRoot (host mode) is the proc file system showing Odoo's
	// processes: /proc (default), or e.g. /host/proc, or
	// /proc/<pid>/root/proc for another PID namespace below the healer's.
	ProcRoot string `yaml:"proc_root"`
	// PIDFile (host mode) is Odoo's --pidfile (pidfile in its
	// configuration): the master to signal is the pid it holds, as seen in
	// ProcRoot; "{target}" is replaced by the target. Without it the only
	// Odoo master of ProcRoot is signalled.
	PIDFile      string `yaml:"pid_file"`
	HealthParams `yaml:",inline"`
}

// hostOnly are the params that only host mode takes.
var hostOnly = []string{"proc_root", "pid_file"}

// checkMode checks the mode and that n (the params) sets only the params
// of that mode, and fills in host mode's defaults.
func (p *RecycleWorkersParams) checkMode(n *yaml.Node) error {
	switch p.Mode {
	case "signal", "restart", "host":
	default:
		return fmt.Errorf("mode %q: want signal (SIGHUP to Odoo's master in the container), restart (the container) or host (SIGHUP to Odoo's master on this host)", p.Mode)
	}
	if p.Mode != "restart" && paramSet(n, "stop_timeout") {
		return fmt.Errorf("mode %s: stop_timeout is only for mode restart (a container restart)", p.Mode)
	}
	if p.Mode != "host" {
		for _, k := range hostOnly {
			if paramSet(n, k) {
				return fmt.Errorf("mode %s: %s is only for mode host (Odoo running on the healer's host, not in a container)", p.Mode, k)
			}
		}
		return nil
	}
	if p.ProcRoot == "" {
		p.ProcRoot = "/proc"
	}
	if !filepath.IsAbs(p.ProcRoot) {
		return fmt.Errorf("proc_root %q: want an absolute path (/proc, /host/proc)", p.ProcRoot)
	}
	p.ProcRoot = filepath.Clean(p.ProcRoot)
	if p.PIDFile != "" && !filepath.IsAbs(p.PIDFile) {
		return fmt.Errorf("pid_file %q: want an absolute path (Odoo's --pidfile)", p.PIDFile)
	}
	return nil
}

// paramSet reports whether the params mapping n sets key.
func paramSet(n *yaml.Node, key string) bool {
	if n == nil || n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// RecycleWorkers recycles Odoo's worker processes. In signal mode
// (default) it finds Odoo's prefork master among the container's
// processes (/proc of the container's PID namespace, read through docker
// exec: the Odoo process whose parent is not one, so a shell wrapper or an
// init as PID 1 is not mistaken for it) and sends it SIGHUP from inside
// the container (docker exec sh -c 'kill -HUP pid'): Odoo's master
// (odoo/service/server.py, "phoenix") stops gracefully — closing its
// listening socket, killing the gevent process, letting workers finish
// within limit_time_real — and re-executes itself with the same PID and
// new workers. Verify: the same master (pid and start time) runs, every
// worker it had was replaced by a new one and each kind it had is back,
// Odoo answers its health URL, and the new workers stayed the same for
// Settle; a signal that reached nothing that handles it ends
// verify_failed. Masters and kinds are found by package odooproc, as the
// process collector finds them.
// The container needs /bin/sh, cat and tr (Odoo's Debian-based image has
// them). In restart mode it restarts the container. In host mode it does
// the same with Odoo's processes on the healer's host (see runHost).
type RecycleWorkers struct{ p RecycleWorkersParams }

func (r *RecycleWorkers) checkTargets(ts []string) error {
	if r.p.Mode == "host" {
		// On a host the master and its new workers are seen in /proc; the
		// health URL is an extra check.
		return r.p.checkURLs()
	}
	return r.p.checkTargets(ts)
}

// pickMaster returns the Odoo server of ps (classified by odooproc.Find,
// as the process collector does) whose master is pid, or with pid 0 the
// only one. It refuses to guess: no master, several masters, or a pid
// that is not a master (a worker, another program, no process) are
// errors.
func pickMaster(ps []odooproc.Process, pid int) (odooproc.Server, error) {
	servers := odooproc.Find(ps)
	if pid > 0 {
		for _, s := range servers {
			if s.Master.PID == pid {
				return s, nil
			}
			for _, w := range s.Workers {
				if w.PID == pid {
					return odooproc.Server{}, fmt.Errorf("pid %d is Odoo's %s process of master pid %d, not a master: refusing to signal it", pid, w.Kind, s.Master.PID)
				}
			}
		}
		return odooproc.Server{}, fmt.Errorf("pid %d is not an Odoo master process (no such process, or not Odoo: a stale pid file?)", pid)
	}
	switch len(servers) {
	case 0:
		return odooproc.Server{}, errors.New("no Odoo master process (odoo-bin or odoo) found")
	case 1:
		return servers[0], nil
	}
	var ms []int
	for _, s := range servers {
		ms = append(ms, s.Master.PID)
	}
	return odooproc.Server{}, fmt.Errorf("%d Odoo processes look like a master (pids %v): refusing to guess", len(servers), ms)
}

// checkPrefork refuses an Odoo server without workers: it runs in
// threaded mode (workers = 0), where SIGHUP restarts the whole server.
func checkPrefork(s odooproc.Server) error {
	if len(s.Workers) == 0 {
		return fmt.Errorf("the Odoo master (pid %d) has no worker processes: Odoo does not run in prefork mode (workers = 0), there is nothing to recycle", s.Master.PID)
	}
	return nil
}

// checkRecycled checks in ps that before's master still runs (the same
// pid and start time: reloaded, not replaced), that every worker it has
// is new (a pid it did not have, or a reused one with another start time)
// and that it has again at least as many processes of each kind as
// before. It returns the master's server as it is now.
func checkRecycled(before odooproc.Server, ps []odooproc.Process) (odooproc.Server, error) {
	var now *odooproc.Server
	servers := odooproc.Find(ps)
	for i, s := range servers {
		if s.Master.PID == before.Master.PID {
			now = &servers[i]
		}
	}
	switch {
	case now == nil && len(servers) == 1:
		return odooproc.Server{}, fmt.Errorf("the Odoo master is now pid %d, not pid %d: it was not reloaded but replaced", servers[0].Master.PID, before.Master.PID)
	case now == nil:
		return odooproc.Server{}, fmt.Errorf("the Odoo master (pid %d) does not run (yet)", before.Master.PID)
	case !now.Master.Start.Equal(before.Master.Start):
		return odooproc.Server{}, fmt.Errorf("pid %d is another Odoo master now (started %s, not %s): it was not reloaded but replaced", before.Master.PID, now.Master.Start.Format(time.RFC3339), before.Master.Start.Format(time.RFC3339))
	case len(now.Workers) == 0:
		return odooproc.Server{}, fmt.Errorf("the Odoo master (pid %d) has no workers yet", before.Master.PID)
	}
	old := map[int]time.Time{}
	for _, w := range before.Workers {
		old[w.PID] = w.Start
	}
	for _, w := range now.Workers {
		if s, ok := old[w.PID]; ok && s.Equal(w.Start) {
			return odooproc.Server{}, fmt.Errorf("worker pid %d was not replaced (the signal did not reach Odoo's master, or it is still stopping)", w.PID)
		}
	}
	had, has := kinds(before), kinds(*now)
	for _, k := range odooproc.Kinds[1:] {
		if has[k] < had[k] {
			return odooproc.Server{}, fmt.Errorf("the Odoo master (pid %d) has %d %s process(es), it had %d: not all started again yet", before.Master.PID, has[k], k, had[k])
		}
	}
	return *now, nil
}

// kinds counts the workers of s by kind.
func kinds(s odooproc.Server) map[odooproc.Kind]int {
	n := map[odooproc.Kind]int{}
	for _, w := range s.Workers {
		n[w.Kind]++
	}
	return n
}

// settleWatch passes once the recycled master's workers stayed the same
// processes for settle.
type settleWatch struct {
	settle time.Duration
	key    string    // the workers seen last (pids and start times)
	since  time.Time // when they were first seen
}

// check records the workers of s and fails until they have been the same
// for w.settle.
func (w *settleWatch) check(s odooproc.Server) error {
	var b strings.Builder
	for _, p := range s.Workers {
		fmt.Fprintf(&b, "%d@%d ", p.PID, p.Start.UnixNano())
	}
	now := time.Now()
	if b.String() != w.key {
		w.key, w.since = b.String(), now
	}
	if d := now.Sub(w.since); d < w.settle {
		return fmt.Errorf("settling: the new workers %v have run unchanged for %s of %s", pids(s.Workers), d.Round(time.Millisecond), w.settle)
	}
	return nil
}

func pids(ws []odooproc.Worker) []int {
	var out []int
	for _, w := range ws {
		out = append(out, w.PID)
	}
	return out
}

// signalNumber is the number of the allowed signal for kill(1).
const signalNumber = "1" // SIGHUP

// Run implements Action.
func (r *RecycleWorkers) Run(ctx context.Context, env *Env, name string, dryRun bool, rep *Report) (func(context.Context) error, error) {
	health := r.p.url(name)
	switch r.p.Mode {
	case "restart":
		return restartContainer(ctx, env, name, r.p.StopTimeout, health, dryRun, rep)
	case "host":
		return r.runHost(ctx, name, health, dryRun, rep)
	}
	before, err := inspectTarget(ctx, env, name)
	if err != nil {
		return nil, err
	}
	st := before.State
	if !st.Running || st.Restarting {
		return nil, fmt.Errorf("container %q is not running: no process to signal", name)
	}
	ps, err := listProcs(ctx, env, before.ID)
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", name, err)
	}
	srv, err := pickMaster(ps, 0)
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", name, err)
	}
	if err := checkPrefork(srv); err != nil {
		return nil, fmt.Errorf("container %q: %w", name, err)
	}
	master, workers := srv.Master, srv.Workers
	if dryRun {
		rep.Step("would send %s to Odoo's master (pid %d in the container, %q) of container %q, replacing its %d worker(s) %v", r.p.Signal, master.PID, master.Cmd, name, len(workers), pids(workers))
		return nil, nil
	}
	pid := strconv.Itoa(master.PID)
	if _, err := execIn(ctx, env, before.ID, []string{"/bin/sh", "-c", `kill -` + signalNumber + ` "$1"`, "sh", pid}); err != nil {
		return nil, fmt.Errorf("sending %s to Odoo's master (pid %d) in container %q: %w", r.p.Signal, master.PID, name, err)
	}
	rep.Acted("sent %s to Odoo's master (pid %d in the container) of container %q; its worker(s) were %v", r.p.Signal, master.PID, name, pids(workers))
	settled := &settleWatch{settle: time.Duration(r.p.Settle)}
	return func(ctx context.Context) error {
		if err := checkRunning(ctx, env, name, before.ID, func(s *container.State) error {
			if s.StartedAt != st.StartedAt {
				return fmt.Errorf("container %q restarted after %s (its main process did not handle the signal)", name, r.p.Signal)
			}
			return nil
		}); err != nil {
			return err
		}
		ps, err := listProcs(ctx, env, before.ID)
		if err != nil {
			return err
		}
		now, err := checkRecycled(srv, ps)
		if err != nil {
			return err
		}
		if err := checkHealth(ctx, health); err != nil {
			return err
		}
		return settled.check(now)
	}, nil
}
