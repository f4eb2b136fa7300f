package heal

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/container"
)

// inspectTarget inspects the container named name. Docker resolves a
// reference as an ID, a name or an ID prefix; only the container whose
// name is name is accepted, so that an allow-listed target never
// resolves to another container. The actions then act on, and verify,
// the returned container's ID: a container recreated under the same name
// in between (a new ID) is not the one that was inspected.
func inspectTarget(ctx context.Context, env *Env, name string) (container.InspectResponse, error) {
	if env.Docker == nil {
		return container.InspectResponse{}, errors.New("no Docker API configured")
	}
	c, err := env.Docker.ContainerInspect(ctx, name)
	if err != nil {
		return c, fmt.Errorf("inspecting container %q: %w", name, err)
	}
	if got := strings.TrimPrefix(c.Name, "/"); got != name {
		return c, fmt.Errorf("target %q resolves to container %q (ID %.12s), not %s: targets must be container names", name, got, c.ID, name)
	}
	if c.State == nil {
		return c, fmt.Errorf("container %q: Docker returned no state", name)
	}
	return c, nil
}

// checkRunning inspects container id (named name) and checks that it
// runs, is healthy when it has a health check, and meets extra.
func checkRunning(ctx context.Context, env *Env, name, id string, extra func(*container.State) error) error {
	c, err := env.Docker.ContainerInspect(ctx, id)
	if err != nil {
		return fmt.Errorf("inspecting container %q: %w", name, err)
	}
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
