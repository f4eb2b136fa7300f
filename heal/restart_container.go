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
			if p.StopTimeout < 0 {
				return nil, errors.New("stop_timeout must not be negative")
			}
			return &RestartContainer{p}, nil
		},
	})
}

// RestartContainerParams configure restart_container.
type RestartContainerParams struct {
	// StopTimeout is the time the container gets to stop after SIGTERM
	// before it is killed (docker restart -t).
	StopTimeout model.Duration `yaml:"stop_timeout"`
}

// RestartContainer restarts a container through the Docker Engine API
// (docker restart): the one serving Odoo's gevent port for a longpoll
// stall, or a worker container. A container Docker is already restarting
// is left alone. Verify: the container started again (a new StartedAt),
// runs, and is healthy if it has a health check.
type RestartContainer struct{ p RestartContainerParams }

// Run implements Action.
func (r *RestartContainer) Run(ctx context.Context, env *Env, name string, dryRun bool, rep *Report) (func(context.Context) error, error) {
	return restartContainer(ctx, env, name, r.p.StopTimeout, dryRun, rep)
}

func restartContainer(ctx context.Context, env *Env, name string, stopTimeout model.Duration, dryRun bool, rep *Report) (func(context.Context) error, error) {
	if env.Docker == nil {
		return nil, errors.New("no Docker API configured")
	}
	before, err := env.Docker.ContainerInspect(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("inspecting container %q: %w", name, err)
	}
	st := before.State
	if st == nil {
		return nil, fmt.Errorf("container %q: Docker returned no state", name)
	}
	if st.Restarting {
		rep.Nothing("container %q is already restarting: left alone", name)
		return nil, nil
	}
	secs := int(time.Duration(stopTimeout).Seconds())
	if dryRun {
		rep.Step("would restart container %q (status %s, started %s) with stop timeout %ds", name, st.Status, st.StartedAt, secs)
		return nil, nil
	}
	if err := env.Docker.ContainerRestart(ctx, name, container.StopOptions{Timeout: &secs}); err != nil {
		return nil, fmt.Errorf("restarting container %q: %w", name, err)
	}
	rep.Step("restarted container %q (was %s, started %s) with stop timeout %ds", name, st.Status, st.StartedAt, secs)
	return func(ctx context.Context) error {
		after, err := env.Docker.ContainerInspect(ctx, name)
		if err != nil {
			return fmt.Errorf("inspecting container %q: %w", name, err)
		}
		return checkRunning(name, after, func(s *container.State) error {
			if s.StartedAt == st.StartedAt {
				return fmt.Errorf("container %q has not started again", name)
			}
			return nil
		})
	}, nil
}

// checkRunning checks that a container runs, is healthy when it has a
// health check, and meets extra.
func checkRunning(name string, c container.InspectResponse, extra func(*container.State) error) error {
	s := c.State
	if s == nil || !s.Running || s.Restarting {
		return fmt.Errorf("container %q is not running", name)
	}
	if err := extra(s); err != nil {
		return err
	}
	if s.Health != nil && s.Health.Status != container.Healthy {
		return fmt.Errorf("container %q is %s", name, s.Health.Status)
	}
	return nil
}
