package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"
)

// Docker Compose's labels on the containers it creates.
const (
	composeServiceLabel = "com.docker.compose.service"
	composeProjectLabel = "com.docker.compose.project"
)

var (
	dockerHost = kingpin.Flag("docker.host",
		"Docker Engine API address (unix:///var/run/docker.sock, tcp://host:2376, ...); empty uses DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH), else the default socket.").
		Default("").String()
	dockerLabels = kingpin.Flag("collector.docker.label",
		"Only containers with this label, as key or key=value (Docker's label filter); repeatable, all must match. Example: com.docker.compose.project=odoo.").
		Strings()
	dockerNamePattern = kingpin.Flag("collector.docker.name-pattern",
		"Only containers whose name, Compose project or Compose service matches this regular expression (unanchored); empty matches all.").
		Default("odoo").String()
	dockerStatsConcurrency = kingpin.Flag("collector.docker.stats-concurrency",
		"How many containers are inspected and read (stats one-shot) at once in a scrape. Docker 20.10 answers a one-shot stats request only at the next tick of its 1 s stats loop, shared by all pending requests: keep this above the number of selected containers so that a scrape waits one tick, not one per batch.").
		Default("64").Int()
	dockerStatsMode = kingpin.Flag("collector.docker.stats-mode",
		"How memory is read: oneshot asks the daemon for one sample per container in each scrape (fresh; Docker 20.10 answers it only at its next 1 s stats tick); stream keeps a stats stream open per running container and answers from the latest sample (normally about a second old, refused past 10 s; scrapes take the list and inspect time only, and the daemon reads each container's stats every second).").
		Default(StatsOneShot).Enum(StatsOneShot, StatsStream)
)

func init() {
	registerCollector("docker", false, func(d Deps) (any, error) {
		return NewDockerCollector(DockerOptions{
			Host:             *dockerHost,
			Labels:           *dockerLabels,
			NamePattern:      *dockerNamePattern,
			StatsConcurrency: *dockerStatsConcurrency,
			StatsMode:        *dockerStatsMode,
			Logger:           d.Logger,
		})
	})
}

// DockerOptions configures the docker collector.
type DockerOptions struct {
	// Host is the Engine API address; empty uses DOCKER_HOST and the
	// related variables, else the default socket.
	Host string
	// Labels are Docker label filters ("key" or "key=value"), all of which
	// a container must have.
	Labels []string
	// NamePattern is a regular expression matched against the container's
	// name, its Compose project and its Compose service; empty matches all.
	NamePattern string
	// StatsConcurrency bounds the containers read at once (default 64).
	StatsConcurrency int
	// StatsMode is StatsOneShot (default) or StatsStream.
	StatsMode string
	// StatsIdle ends, in stream mode, a stream no scrape has read for this
	// long (default 5m).
	StatsIdle time.Duration
	Logger    *slog.Logger
}

// DockerCollector reads the containers of an Odoo deployment from the
// Docker Engine API: memory (docker stats, one-shot or streamed), state, health,
// OOM kill and restarts (docker inspect). As a Runner it follows the
// daemon's event stream to count OOM events, starts, deaths and restarts
// between scrapes. It only reads: list, inspect, stats, events, info.
type DockerCollector struct {
	opts    DockerOptions
	client  *client.Client
	nameRE  *regexp.Regexp
	filters filters.Args
	logger  *slog.Logger
	events  *dockerEvents
	streams *statsStreams // stream mode only

	negotiateMu sync.Mutex
	negotiated  bool
}

// NewDockerCollector returns a docker collector; it does not connect.
func NewDockerCollector(opts DockerOptions) (*DockerCollector, error) {
	if opts.StatsConcurrency <= 0 {
		opts.StatsConcurrency = 64
	}
	switch opts.StatsMode {
	case "":
		opts.StatsMode = StatsOneShot
	case StatsOneShot, StatsStream:
	default:
		return nil, fmt.Errorf("docker stats mode %q: want %s or %s", opts.StatsMode, StatsOneShot, StatsStream)
	}
	if opts.StatsIdle <= 0 {
		opts.StatsIdle = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &DockerCollector{opts: opts, logger: opts.Logger, filters: filters.NewArgs()}
	if opts.NamePattern != "" {
		re, err := regexp.Compile(opts.NamePattern)
		if err != nil {
			return nil, fmt.Errorf("docker name pattern: %w", err)
		}
		c.nameRE = re
	}
	for _, l := range opts.Labels {
		if l == "" || strings.HasPrefix(l, "=") {
			return nil, fmt.Errorf("docker label filter %q: want key or key=value", l)
		}
		c.filters.Add("label", l)
	}
	cli, err := newDockerClient(opts.Host)
	if err != nil {
		return nil, err
	}
	c.client = cli
	c.events = newDockerEvents()
	if opts.StatsMode == StatsStream {
		c.streams = newStatsStreams(cli, opts.StatsIdle, 10*time.Second)
	}
	return c, nil
}

// ready negotiates the API version with the daemon once, before any other
// request: the client's lazy negotiation writes its version field while
// concurrent requests read it (a data race in the v28 client).
func (c *DockerCollector) ready(ctx context.Context) error {
	c.negotiateMu.Lock()
	defer c.negotiateMu.Unlock()
	if c.negotiated {
		return nil
	}
	ping, err := c.client.Ping(ctx)
	if err != nil {
		return fmt.Errorf("docker ping: %w", err)
	}
	c.client.NegotiateAPIVersionPing(ping)
	c.negotiated = true
	return nil
}

// Close ends the stats streams and releases the client's connections.
func (c *DockerCollector) Close() error {
	if c.streams != nil {
		c.streams.close()
	}
	return c.client.Close()
}

var (
	containerLabels = []string{"name", "service"}

	containersDesc = prometheus.NewDesc("odoo_containers",
		"Containers selected by --collector.docker.label and --collector.docker.name-pattern, running or not.", nil, nil)
	containerMemUsageDesc = prometheus.NewDesc("odoo_container_memory_usage_bytes",
		"Memory charged to the container's cgroup, page cache included (docker stats memory_stats.usage: memory.usage_in_bytes on cgroup v1, memory.current on v2); running containers only.",
		containerLabels, nil)
	containerMemWorkingSetDesc = prometheus.NewDesc("odoo_container_memory_working_set_bytes",
		"Memory usage minus inactive file cache (total_inactive_file on cgroup v1, inactive_file on v2), as docker stats shows it; what the kernel cannot reclaim easily. Running containers only.",
		containerLabels, nil)
	containerMemLimitDesc = prometheus.NewDesc("odoo_container_memory_limit_bytes",
		"The container's memory limit (HostConfig.Memory, docker run -m / compose mem_limit); absent when unlimited.",
		containerLabels, nil)
	containerRunningDesc = prometheus.NewDesc("odoo_container_running",
		"Whether the container is running (State.Running; a paused container counts as running).",
		containerLabels, nil)
	containerHealthyDesc = prometheus.NewDesc("odoo_container_healthy",
		"Health check status of a running container: 1 healthy, 0 unhealthy or still starting; absent without a HEALTHCHECK or when not running.",
		containerLabels, nil)
	containerOOMKilledDesc = prometheus.NewDesc("odoo_container_oom_killed",
		"Whether the container's last run ended by the kernel's OOM killer (State.OOMKilled; reset when it starts again).",
		containerLabels, nil)
	containerRestartCountDesc = prometheus.NewDesc("odoo_container_restart_count",
		"Restarts by the container's restart policy (RestartCount); a gauge: Docker resets it when the container is started by hand or recreated.",
		containerLabels, nil)
	containerStartedDesc = prometheus.NewDesc("odoo_container_started_timestamp_seconds",
		"When the container was last started (State.StartedAt), as a Unix timestamp; absent if never started.",
		containerLabels, nil)
)

// Describe implements Collector.
func (c *DockerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{containersDesc, containerMemUsageDesc, containerMemWorkingSetDesc,
		containerMemLimitDesc, containerRunningDesc, containerHealthyDesc, containerOOMKilledDesc,
		containerRestartCountDesc, containerStartedDesc} {
		ch <- d
	}
	c.events.describe(ch)
}

// selected tells whether a container with name and labels matches the
// name pattern (the label filters are applied by the daemon).
func (c *DockerCollector) selected(name string, labels map[string]string) bool {
	if c.nameRE == nil {
		return true
	}
	return c.nameRE.MatchString(name) ||
		(labels[composeProjectLabel] != "" && c.nameRE.MatchString(labels[composeProjectLabel])) ||
		(labels[composeServiceLabel] != "" && c.nameRE.MatchString(labels[composeServiceLabel]))
}

// serviceOf is the value of the service label: the Compose service, else
// the container name.
func serviceOf(name string, labels map[string]string) string {
	if s := labels[composeServiceLabel]; s != "" {
		return s
	}
	return name
}

// list returns the selected containers, running or not.
func (c *DockerCollector) list(ctx context.Context) ([]container.Summary, error) {
	all, err := c.client.ContainerList(ctx, container.ListOptions{All: true, Filters: c.filters})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	out := all[:0]
	for _, s := range all {
		if c.selected(containerName(s.Names), s.Labels) {
			out = append(out, s)
		}
	}
	return out, nil
}

func containerName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return strings.TrimPrefix(names[0], "/")
}

// Update implements Collector: one list, then per container one inspect
// and, when running, one stats one-shot, at most StatsConcurrency at once.
func (c *DockerCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	// The event counters are kept in memory: they stay valid while the
	// daemon is away. They are sent last, once the listed containers'
	// counters exist.
	defer c.events.collect(ch)

	if err := c.ready(ctx); err != nil {
		return err
	}
	listed := time.Now()
	list, err := c.list(ctx)
	if err != nil {
		return err
	}
	for _, s := range list {
		name := containerName(s.Names)
		c.events.touch(containerKey{name, serviceOf(name, s.Labels)})
	}
	ch <- prometheus.MustNewConstMetric(containersDesc, prometheus.GaugeValue, float64(len(list)))

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, c.opts.StatsConcurrency)
	)
	for _, s := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			if err := c.updateContainer(ctx, s.ID, s.State == container.StateRunning, ch); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if c.streams != nil {
		running := make(map[string]bool, len(list))
		for _, s := range list {
			if s.State == container.StateRunning {
				running[s.ID] = true
			}
		}
		c.streams.prune(running, listed)
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// updateContainer sends the metrics of one container. The stats request of
// a container listed as running is sent along with the inspect: some
// engines (20.10) answer it only at the next tick of their 1 s stats loop.
func (c *DockerCollector) updateContainer(ctx context.Context, id string, listedRunning bool, ch chan<- prometheus.Metric) error {
	type statsResult struct {
		stats container.StatsResponse
		err   error
	}
	var statsc chan statsResult
	if listedRunning {
		statsc = make(chan statsResult, 1)
		go func() {
			var r statsResult
			r.stats, r.err = c.stats(ctx, id)
			statsc <- r
		}()
		// Whatever happens to the inspect, wait for the stats request so
		// that no goroutine outlives the scrape.
		defer func() {
			if statsc != nil {
				<-statsc
			}
		}()
	}
	info, err := c.client.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return nil // removed since the list
	}
	if err != nil {
		return fmt.Errorf("inspecting container %.12s: %w", id, err)
	}
	if info.ContainerJSONBase == nil || info.State == nil {
		return fmt.Errorf("inspecting container %.12s: no state in the answer", id)
	}
	name := strings.TrimPrefix(info.Name, "/")
	var labels map[string]string
	if info.Config != nil {
		labels = info.Config.Labels
	}
	lv := []string{name, serviceOf(name, labels)}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	st := info.State
	gauge(containerRunningDesc, boolFloat(st.Running))
	gauge(containerOOMKilledDesc, boolFloat(st.OOMKilled))
	gauge(containerRestartCountDesc, float64(info.RestartCount))
	if t, ok := dockerTime(st.StartedAt); ok {
		gauge(containerStartedDesc, float64(t.UnixNano())/1e9)
	}
	if info.HostConfig != nil && info.HostConfig.Memory > 0 {
		gauge(containerMemLimitDesc, float64(info.HostConfig.Memory))
	}
	if !st.Running {
		return nil
	}
	if h := st.Health; h != nil && h.Status != container.NoHealthcheck && h.Status != "" {
		gauge(containerHealthyDesc, boolFloat(h.Status == container.Healthy))
	}

	if statsc == nil {
		// Started between the list and the inspect: next scrape.
		return nil
	}
	r := <-statsc
	statsc = nil
	if cerrdefs.IsNotFound(r.err) {
		return nil
	}
	if r.err != nil {
		return fmt.Errorf("stats of container %s: %w", name, r.err)
	}
	stats := r.stats
	if stats.MemoryStats.Usage == 0 && stats.MemoryStats.Stats == nil {
		// Stopped between inspect and stats: the daemon answers zeros.
		return nil
	}
	gauge(containerMemUsageDesc, float64(stats.MemoryStats.Usage))
	gauge(containerMemWorkingSetDesc, float64(workingSet(stats.MemoryStats)))
	return nil
}

// stats returns the container's stats: in stream mode the latest sample
// of its stream, else one read (stream=0, one-shot=1).
func (c *DockerCollector) stats(ctx context.Context, id string) (container.StatsResponse, error) {
	if c.streams != nil {
		return c.streams.get(ctx, id)
	}
	var stats container.StatsResponse
	resp, err := c.client.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return stats, err
	}
	defer resp.Body.Close()
	// One stats answer is a few KiB; bound what a broken daemon can send.
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&stats)
	return stats, err
}

// workingSet is memory usage without the inactive file cache, computed as
// the docker CLI does (cli/command/container/stats_helpers.go): cgroup v1
// reports total_inactive_file, v2 inactive_file; when the cache is not
// smaller than the usage, the usage is returned unchanged.
func workingSet(m container.MemoryStats) uint64 {
	if v, v1 := m.Stats["total_inactive_file"]; v1 && v < m.Usage {
		return m.Usage - v
	}
	if v := m.Stats["inactive_file"]; v < m.Usage {
		return m.Usage - v
	}
	return m.Usage
}

// dockerTime parses the daemon's RFC 3339 timestamps; Docker writes the
// zero time (0001-01-01T00:00:00Z) for "never".
func dockerTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.IsZero() || t.Year() <= 1 {
		return time.Time{}, false
	}
	return t, true
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// newDockerClient returns a client of the Engine API at host (empty: the
// standard DOCKER_HOST and related variables, else the default socket),
// with the API version negotiated.
func newDockerClient(host string) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return cli, nil
}
