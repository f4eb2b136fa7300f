package heal

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"gopkg.in/yaml.v3"
)

// Action is one healing action, configured by a rule's params.
type Action interface {
	// Run acts on target or, when dryRun, only finds what it would do. It
	// records every step, done or planned, in rep. It returns a check of
	// the condition the action addressed, nil when there is nothing to
	// verify (dry run, nothing to do).
	Run(ctx context.Context, env *Env, target string, dryRun bool, rep *Report) (verify func(context.Context) error, err error)
}

// ActionKind describes and builds one kind of action.
type ActionKind struct {
	// TargetKind is what a target names: "database" or "container".
	TargetKind string
	// TargetLabel is the default alert label naming the target.
	TargetLabel string
	// New builds an action from the rule's params.
	New func(params *yaml.Node) (Action, error)
}

// Target kinds.
const (
	TargetDatabase  = "database"
	TargetContainer = "container"
)

// actionKinds is filled by the action files' init functions.
var actionKinds = map[string]*ActionKind{}

func registerAction(name string, k *ActionKind) {
	if _, dup := actionKinds[name]; dup {
		panic("heal: action registered twice: " + name)
	}
	actionKinds[name] = k
}

// Env is what actions act through.
type Env struct {
	// PG connects to one database; nil when no DSN was configured.
	PG *PGConnector
	// Docker is the Docker Engine API; nil when not configured.
	Docker DockerAPI
	Logger *slog.Logger
}

// DockerAPI is the part of the Docker client the actions use.
type DockerAPI interface {
	ContainerInspect(ctx context.Context, name string) (container.InspectResponse, error)
	ContainerRestart(ctx context.Context, name string, options container.StopOptions) error
	ContainerKill(ctx context.Context, name, signal string) error
	ContainerExecCreate(ctx context.Context, container string, options container.ExecOptions) (container.ExecCreateResponse, error)
	ContainerExecAttach(ctx context.Context, execID string, config container.ExecAttachOptions) (types.HijackedResponse, error)
	ContainerExecInspect(ctx context.Context, execID string) (container.ExecInspect, error)
}

// Report collects what an action did or would do.
type Report struct {
	mu      sync.Mutex
	steps   []string
	nothing bool
	acted   bool
}

// Step records one thing done (or, in a dry run, planned).
func (r *Report) Step(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, fmt.Sprintf(format, args...))
}

// Acted records a step that changed something (a signal sent, a row
// deleted, a container restarted): the episode has acted, its cooldown
// starts and it never acts again.
func (r *Report) Acted(format string, args ...any) {
	r.Step(format, args...)
	r.mu.Lock()
	r.acted = true
	r.mu.Unlock()
}

func (r *Report) hasActed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.acted
}

// Nothing records that the action found nothing to do.
func (r *Report) Nothing(format string, args ...any) {
	r.Step(format, args...)
	r.mu.Lock()
	r.nothing = true
	r.mu.Unlock()
}

// Steps returns the recorded steps.
func (r *Report) Steps() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.steps...)
}

func (r *Report) String() string { return strings.Join(r.Steps(), "; ") }

func (r *Report) isNothing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nothing
}

type episodeBeganKey struct{}

// withEpisodeBegan tells an action when its episode began: an action that
// must never act twice per episode (restart_container) checks whether its
// effect already happened since, through an earlier attempt that timed
// out.
func withEpisodeBegan(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, episodeBeganKey{}, t)
}

func episodeBegan(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(episodeBeganKey{}).(time.Time)
	return t, ok
}
