package heal

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
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
			switch p.Mode {
			case "signal", "restart":
			default:
				return nil, fmt.Errorf("mode %q: want signal or restart", p.Mode)
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
	// the container) or "restart" (restart the container).
	Mode string `yaml:"mode"`
	// Signal sent in signal mode; on SIGHUP Odoo's prefork master stops
	// (workers finish their requests within limit_time_real) and
	// re-executes itself in the same process with new workers.
	Signal string `yaml:"signal"`
	// Settle: verify passes only once the container kept running this
	// long after the signal.
	Settle model.Duration `yaml:"settle"`
	// StopTimeout for restart mode.
	StopTimeout  model.Duration `yaml:"stop_timeout"`
	HealthParams `yaml:",inline"`
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
// worker it had was replaced by a new one, and Odoo answers its health
// URL; a signal that reached nothing that handles it ends verify_failed.
// The container needs /bin/sh, cat and tr (Odoo's Debian-based image has
// them). In restart mode it restarts the container.
type RecycleWorkers struct{ p RecycleWorkersParams }

func (r *RecycleWorkers) checkTargets(ts []string) error { return r.p.checkTargets(ts) }

// signalNumber is the number of the allowed signal for kill(1).
const signalNumber = "1" // SIGHUP

// Run implements Action.
func (r *RecycleWorkers) Run(ctx context.Context, env *Env, name string, dryRun bool, rep *Report) (func(context.Context) error, error) {
	health := r.p.url(name)
	if r.p.Mode == "restart" {
		return restartContainer(ctx, env, name, r.p.StopTimeout, health, dryRun, rep)
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
	master, workers, err := odooMaster(ps)
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", name, err)
	}
	if len(workers) == 0 {
		return nil, fmt.Errorf("container %q: Odoo's master (pid %d) has no worker processes: Odoo does not run in prefork mode (workers = 0), there is nothing to recycle", name, master.PID)
	}
	if dryRun {
		rep.Step("would send %s to Odoo's master (pid %d in the container, %q) of container %q, replacing its %d worker(s) %v", r.p.Signal, master.PID, master.Cmd, name, len(workers), pids(workers))
		return nil, nil
	}
	pid := strconv.Itoa(master.PID)
	if _, err := execIn(ctx, env, before.ID, []string{"/bin/sh", "-c", `kill -` + signalNumber + ` "$1"`, "sh", pid}); err != nil {
		return nil, fmt.Errorf("sending %s to Odoo's master (pid %d) in container %q: %w", r.p.Signal, master.PID, name, err)
	}
	sent := time.Now()
	rep.Acted("sent %s to Odoo's master (pid %d in the container) of container %q; its worker(s) were %v", r.p.Signal, master.PID, name, pids(workers))
	old := map[int]uint64{}
	for _, w := range workers {
		old[w.PID] = w.Start
	}
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
		m, ws, err := odooMaster(ps)
		if err != nil {
			return err
		}
		if m.PID != master.PID || m.Start != master.Start {
			return fmt.Errorf("the Odoo master is now pid %d, not pid %d: it was not reloaded but replaced", m.PID, master.PID)
		}
		if len(ws) == 0 {
			return fmt.Errorf("the Odoo master (pid %d) has no workers yet", m.PID)
		}
		for _, w := range ws {
			if s, ok := old[w.PID]; ok && s == w.Start {
				return fmt.Errorf("worker pid %d was not replaced (the signal did not reach Odoo's master, or it is still stopping)", w.PID)
			}
		}
		if err := checkHealth(ctx, health); err != nil {
			return err
		}
		if since := time.Since(sent); since < time.Duration(r.p.Settle) {
			return fmt.Errorf("container %q: settling (%s of %s)", name, since.Round(time.Millisecond), r.p.Settle)
		}
		return nil
	}, nil
}
