package heal

import (
	"context"
	"errors"
	"fmt"
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
			if p.Settle < 0 || p.StopTimeout < 0 {
				return nil, errors.New("settle and stop_timeout must not be negative")
			}
			return &RecycleWorkers{p}, nil
		},
	})
}

// RecycleWorkersParams configure recycle_workers.
type RecycleWorkersParams struct {
	// Mode is "signal" (default: send Signal to the container's main
	// process, Odoo's master) or "restart" (restart the container).
	Mode string `yaml:"mode"`
	// Signal sent in signal mode; on SIGHUP Odoo's prefork master stops
	// gracefully (workers finish their requests within limit_time_real)
	// and re-executes itself in the same process.
	Signal string `yaml:"signal"`
	// Settle: verify passes only once the container kept running this
	// long after the signal.
	Settle model.Duration `yaml:"settle"`
	// StopTimeout for restart mode.
	StopTimeout model.Duration `yaml:"stop_timeout"`
}

// RecycleWorkers recycles Odoo's worker processes: by default it sends
// SIGHUP to the container's main process through the Docker API (docker
// kill --signal), on which Odoo's prefork master (odoo/service/server.py,
// "phoenix") stops gracefully, closing its listening socket, killing the
// gevent process and letting workers finish within limit_time_real, then
// re-executes itself with the same PID: a short outage, but the container
// keeps running and its memory is freed. In restart mode it
// restarts the container. Odoo must be the container's PID 1 (the
// official image's entrypoint execs it) or forward the signal. Verify
// (signal mode): the container is still the same run (StartedAt), running
// and healthy Settle after the signal.
type RecycleWorkers struct{ p RecycleWorkersParams }

// Run implements Action.
func (r *RecycleWorkers) Run(ctx context.Context, env *Env, name string, dryRun bool, rep *Report) (func(context.Context) error, error) {
	if r.p.Mode == "restart" {
		return restartContainer(ctx, env, name, r.p.StopTimeout, dryRun, rep)
	}
	before, err := inspectTarget(ctx, env, name)
	if err != nil {
		return nil, err
	}
	st := before.State
	if !st.Running || st.Restarting {
		return nil, fmt.Errorf("container %q is not running: no process to signal", name)
	}
	if dryRun {
		rep.Step("would send %s to the main process (pid %d) of container %q", r.p.Signal, st.Pid, name)
		return nil, nil
	}
	if err := env.Docker.ContainerKill(ctx, before.ID, r.p.Signal); err != nil {
		return nil, fmt.Errorf("sending %s to container %q: %w", r.p.Signal, name, err)
	}
	sent := time.Now()
	rep.Step("sent %s to the main process (pid %d) of container %q", r.p.Signal, st.Pid, name)
	return func(ctx context.Context) error {
		return checkRunning(ctx, env, name, before.ID, func(s *container.State) error {
			if s.StartedAt != st.StartedAt {
				return fmt.Errorf("container %q restarted after %s (it did not handle the signal)", name, r.p.Signal)
			}
			if since := time.Since(sent); since < time.Duration(r.p.Settle) {
				return fmt.Errorf("container %q: settling (%s of %s)", name, since.Round(time.Millisecond), r.p.Settle)
			}
			return nil
		})
	}, nil
}
