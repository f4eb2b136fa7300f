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
	registerAction("restart_container", &ActionKind{
		TargetKind:  TargetContainer,
		TargetLabel: "name",
		New: func(n *yaml.Node) (Action, error) {
			p := RestartContainerParams{StopTimeout: model.Duration(30 * time.Second)}
			if err := decodeParams(n, &p); err != nil {
				return nil, err
			}
			if p.StopTimeout < 0 || time.Duration(p.StopTimeout) > 10*time.Minute {
				return nil, errors.New("stop_timeout must be between 0s and 10m")
			}
			return &RestartContainer{p}, nil
		},
	})
}

// RestartContainerParams configure restart_container.
type RestartContainerParams struct {
	// StopTimeout is the time the container gets to stop after SIGTERM
	// before it is killed (docker restart -t).
	StopTimeout  model.Duration `yaml:"stop_timeout"`
	HealthParams `yaml:",inline"`
}

// RestartContainer restarts a container through the Docker Engine API
// (docker restart): the one serving Odoo's gevent port for a longpoll
// stall, or a worker container. A container Docker is already restarting
// is left alone. Verify: the container started again (a new StartedAt),
// runs, is healthy if it has a health check, and Odoo answers its health
// URL.
type RestartContainer struct{ p RestartContainerParams }

func (r *RestartContainer) checkTargets(ts []string) error { return r.p.checkTargets(ts) }

// Run implements Action.
func (r *RestartContainer) Run(ctx context.Context, env *Env, name string, dryRun bool, rep *Report) (func(context.Context) error, error) {
	return restartContainer(ctx, env, name, r.p.StopTimeout, r.p.url(name), dryRun, rep)
}

func restartContainer(ctx context.Context, env *Env, name string, stopTimeout model.Duration, health string, dryRun bool, rep *Report) (func(context.Context) error, error) {
	before, err := inspectTarget(ctx, env, name)
	if err != nil {
		return nil, err
	}
	st := before.State
	if st.Restarting {
		rep.Nothing("container %q is already restarting: left alone", name)
		return nil, nil
	}
	secs := int(time.Duration(stopTimeout).Seconds())
	if began, ok := episodeBegan(ctx); ok && !dryRun {
		if started, err := time.Parse(time.RFC3339Nano, st.StartedAt); err == nil && started.After(began) {
			// A restart requested by an earlier attempt that timed out
			// (a slow daemon) may have happened after all: never twice.
			rep.Acted("container %q started at %s, after this episode began (%s): not restarting it again", name, st.StartedAt, began.UTC().Format(time.RFC3339Nano))
			return func(ctx context.Context) error {
				if err := checkRunning(ctx, env, name, before.ID, func(*container.State) error { return nil }); err != nil {
					return err
				}
				return checkHealth(ctx, health)
			}, nil
		}
	}
	if dryRun {
		rep.Step("would restart container %q (status %s, started %s) with stop timeout %ds", name, st.Status, st.StartedAt, secs)
		return nil, nil
	}
	if err := env.Docker.ContainerRestart(ctx, before.ID, container.StopOptions{Timeout: &secs}); err != nil {
		// Did it restart anyway (a slow daemon answering after the
		// deadline)? Only a new run counts as acting.
		ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if c, ierr := env.Docker.ContainerInspect(ictx, before.ID); ierr == nil && c.State != nil && c.State.StartedAt != st.StartedAt {
			rep.Acted("restarting container %q failed (%v) but it started again (started %s)", name, err, c.State.StartedAt)
		}
		return nil, fmt.Errorf("restarting container %q: %w", name, err)
	}
	rep.Acted("restarted container %q (was %s, started %s) with stop timeout %ds", name, st.Status, st.StartedAt, secs)
	return func(ctx context.Context) error {
		err := checkRunning(ctx, env, name, before.ID, func(s *container.State) error {
			if s.StartedAt == st.StartedAt {
				return fmt.Errorf("container %q has not started again", name)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return checkHealth(ctx, health)
	}, nil
}
