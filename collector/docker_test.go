package collector

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/odoo-exporter/odoo_exporter/internal/dockertest"
)

// TestDocker runs the docker collector's scenarios on one private dockerd:
// the parallel cases first, each on containers of its own (selected by a
// label "case"), then the cases that take the daemon away.
func TestDocker(t *testing.T) {
	d := dockertest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := d.TestAppImage(ctx); err != nil {
		t.Fatal(err)
	}
	t.Run("parallel", func(t *testing.T) {
		t.Run("memory", func(t *testing.T) { t.Parallel(); testDockerMemory(t, d) })
		t.Run("oom", func(t *testing.T) { t.Parallel(); testDockerOOM(t, d) })
		t.Run("restart", func(t *testing.T) { t.Parallel(); testDockerRestart(t, d) })
		t.Run("health", func(t *testing.T) { t.Parallel(); testDockerHealth(t, d) })
		t.Run("selection", func(t *testing.T) { t.Parallel(); testDockerSelection(t, d) })
		t.Run("recover", func(t *testing.T) { t.Parallel(); testDockerRecover(t, d) })
		t.Run("stream", func(t *testing.T) { t.Parallel(); testDockerStream(t, d) })
	})
	t.Run("flags", func(t *testing.T) { testDockerFlags(t, d) })
	t.Run("daemon_down", func(t *testing.T) { testDockerDaemonDown(t, d) })
}

// dockerHarness is a docker collector under test, scraped through the
// framework, with its event Runner started.
type dockerHarness struct {
	c       *DockerCollector
	exp     *Exporter
	stop    context.CancelFunc
	stopped chan struct{}
}

func newDockerHarness(t *testing.T, opts DockerOptions) *dockerHarness {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	c, err := NewDockerCollector(opts)
	if err != nil {
		t.Fatal(err)
	}
	h := &dockerHarness{
		c:       c,
		exp:     &Exporter{logger: opts.Logger, collectors: map[string]Collector{"docker": c}},
		stopped: make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	go func() { defer close(h.stopped); c.Run(ctx) }()
	t.Cleanup(func() { h.shutdown(t) })
	return h
}

// shutdown stops the Runner, waits for it and closes the client.
func (h *dockerHarness) shutdown(t *testing.T) {
	h.stop()
	select {
	case <-h.stopped:
	case <-time.After(30 * time.Second):
		t.Error("docker events Runner did not return after its context was cancelled")
	}
	h.c.Close()
}

func (h *dockerHarness) scrape(t *testing.T) metrics { t.Helper(); return scrapeOnce(t, h.exp) }

// waitSubscribed waits until the event stream is subscribed, so that the
// events of what the test does next are seen.
func (h *dockerHarness) waitSubscribed(t *testing.T) {
	t.Helper()
	eventually(t, 30*time.Second, "the docker event stream", func() bool {
		return h.scrape(t).value(t, "odoo_container_events_up") == 1
	})
}

// counter is the value of a counter, 0 when it has no sample yet.
func (ms metrics) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	if !ms.has(name, labels...) {
		return 0
	}
	return ms.value(t, name, labels...)
}

func caseOpts(c string) DockerOptions {
	return DockerOptions{Labels: []string{"case=" + c}, NamePattern: "odoo", StatsConcurrency: 4}
}

func runApp(t *testing.T, d *dockertest.Daemon, cfg dockertest.AppConfig) *dockertest.App {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	app, err := d.RunApp(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

func inspect(t *testing.T, d *dockertest.Daemon, id string) container.InspectResponse {
	t.Helper()
	info, err := d.Client().ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

const mib = 1 << 20

func testDockerMemory(t *testing.T, d *dockertest.Daemon) {
	opts := caseOpts("memory")
	opts.Host = d.Host()
	h := newDockerHarness(t, opts)
	app := runApp(t, d, dockertest.AppConfig{Name: "odoo-memory-web-1",
		Labels: map[string]string{"case": "memory", composeServiceLabel: "web", composeProjectLabel: "odoo"}})
	ctx := context.Background()
	lv := []string{"name", "odoo-memory-web-1", "service", "web"}

	m := h.scrape(t)
	if got := m.value(t, "odoo_exporter_collector_success", "collector", "docker"); got != 1 {
		t.Fatalf("collector_success = %v, want 1", got)
	}
	if got := m.value(t, "odoo_containers"); got != 1 {
		t.Errorf("odoo_containers = %v, want 1", got)
	}
	if got := m.value(t, "odoo_container_running", lv...); got != 1 {
		t.Errorf("running = %v, want 1", got)
	}
	for _, name := range []string{"odoo_container_oom_killed", "odoo_container_restart_count"} {
		if got := m.value(t, name, lv...); got != 0 {
			t.Errorf("%s = %v, want 0", name, got)
		}
	}
	if m.has("odoo_container_memory_limit_bytes", lv...) {
		t.Error("memory_limit_bytes present for an unlimited container")
	}
	if m.has("odoo_container_healthy", lv...) {
		t.Error("healthy present for a container without a health check")
	}
	started, _ := dockerTime(inspect(t, d, app.ID).State.StartedAt)
	if got := m.value(t, "odoo_container_started_timestamp_seconds", lv...); got != float64(started.UnixNano())/1e9 {
		t.Errorf("started_timestamp_seconds = %v, want %v", got, float64(started.UnixNano())/1e9)
	}
	usage0 := m.value(t, "odoo_container_memory_usage_bytes", lv...)
	ws0 := m.value(t, "odoo_container_memory_working_set_bytes", lv...)
	if ws0 <= 0 || ws0 > usage0 {
		t.Fatalf("working set %v, usage %v: want 0 < working set <= usage", ws0, usage0)
	}

	// The very next scrape follows an allocation, and a release.
	if _, err := app.Alloc(ctx, 100); err != nil {
		t.Fatal(err)
	}
	m = h.scrape(t)
	usage1 := m.value(t, "odoo_container_memory_usage_bytes", lv...)
	ws1 := m.value(t, "odoo_container_memory_working_set_bytes", lv...)
	if ws1-ws0 < 95*mib || usage1-usage0 < 95*mib {
		t.Errorf("after allocating 100 MiB: working set %v -> %v, usage %v -> %v; want both +100 MiB", ws0, ws1, usage0, usage1)
	}
	if err := app.Free(ctx); err != nil {
		t.Fatal(err)
	}
	m = h.scrape(t)
	if ws2 := m.value(t, "odoo_container_memory_working_set_bytes", lv...); ws1-ws2 < 90*mib {
		t.Errorf("after freeing 100 MiB: working set %v -> %v; want -100 MiB", ws1, ws2)
	}
}

// testDockerStream: in stream mode a scrape answers from the container's
// stats stream, which follows the container's memory, ends when no scrape
// reads it or the container stops, and leaves no goroutine behind.
func testDockerStream(t *testing.T, d *dockertest.Daemon) {
	opts := caseOpts("stream")
	opts.Host = d.Host()
	opts.StatsMode = StatsStream
	opts.StatsIdle = 3 * time.Second
	h := newDockerHarness(t, opts)
	app := runApp(t, d, dockertest.AppConfig{Name: "odoo-stream-1", Labels: map[string]string{"case": "stream"}})
	lv := []string{"name", "odoo-stream-1", "service", "odoo-stream-1"}
	ws := func(m metrics) float64 {
		t.Helper()
		if got := m.value(t, "odoo_exporter_collector_success", "collector", "docker"); got != 1 {
			t.Fatalf("collector_success = %v, want 1", got)
		}
		return m.value(t, "odoo_container_memory_working_set_bytes", lv...)
	}

	// The first scrape waits for the stream's first sample.
	ws0 := ws(h.scrape(t))
	if ws0 <= 0 {
		t.Fatalf("working set %v, want > 0", ws0)
	}
	if n := h.c.streams.len(); n != 1 {
		t.Fatalf("%d stats streams open, want 1", n)
	}
	// A scrape whose list is older than the stream's last read (a
	// concurrent scrape that listed before the container started) keeps it.
	h.c.streams.prune(nil, time.Now().Add(-time.Minute))
	if n := h.c.streams.len(); n != 1 {
		t.Fatalf("a stale list pruned a stream read since: %d open", n)
	}
	if _, err := app.Alloc(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the streamed working set to follow a 100 MiB allocation", func() bool {
		return ws(h.scrape(t))-ws0 >= 95*mib
	})

	eventually(t, 20*time.Second, "the unread stream to end", func() bool { return h.c.streams.len() == 0 })
	if ws(h.scrape(t)) < ws0+95*mib || h.c.streams.len() != 1 {
		t.Fatalf("the next scrape did not reopen the stream (%d open)", h.c.streams.len())
	}

	// Renamed out of the selection while running: its stream ends at once.
	rename := func(name string) {
		t.Helper()
		if err := d.Client().ContainerRename(context.Background(), app.ID, name); err != nil {
			t.Fatal(err)
		}
	}
	rename("stream-renamed-1")
	if h.scrape(t); h.c.streams.len() != 0 {
		t.Errorf("%d streams open after the container left the selection, want 0", h.c.streams.len())
	}
	rename("odoo-stream-1")

	timeout := 1
	if err := d.Client().ContainerStop(context.Background(), app.ID, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	m := h.scrape(t)
	if m.value(t, "odoo_container_running", lv...) != 0 || m.has("odoo_container_memory_working_set_bytes", lv...) {
		t.Error("a stopped container is reported running or with memory")
	}
	eventually(t, 10*time.Second, "the stopped container's stream to end", func() bool { return h.c.streams.len() == 0 })

	if m := h.scrape(t); m.value(t, "odoo_exporter_collector_success", "collector", "docker") != 1 || h.c.streams.len() != 0 {
		t.Errorf("scrape of a stopped container: success %v, %d streams open, want 1 and 0",
			m.value(t, "odoo_exporter_collector_success", "collector", "docker"), h.c.streams.len())
	}
	h.shutdown(t)

	// A stream whose daemon stops answering is ended after 10 s without a
	// sample, and opened again once the daemon answers.
	app2 := runApp(t, d, dockertest.AppConfig{Name: "odoo-stream-2", Labels: map[string]string{"case": "stream"}})
	proxy := newSocketProxy(t, strings.TrimPrefix(d.Host(), "unix://"))
	opts.Host = "unix://" + proxy.path
	opts.StatsIdle = time.Hour
	h = newDockerHarness(t, opts)
	lv2 := []string{"name", "odoo-stream-2", "service", "odoo-stream-2"}
	if m := h.scrape(t); !m.has("odoo_container_memory_working_set_bytes", lv2...) || h.c.streams.len() != 1 {
		t.Fatalf("no streamed sample through the proxy (%d streams):\n%s", h.c.streams.len(), m.names())
	}
	proxy.frozen.Store(true)
	eventually(t, 20*time.Second, "the stalled stream to end", func() bool { return h.c.streams.len() == 0 })
	proxy.frozen.Store(false)
	eventually(t, 20*time.Second, "a new stream after the stall", func() bool {
		m := h.scrape(t)
		return m.value(t, "odoo_exporter_collector_success", "collector", "docker") == 1 &&
			m.has("odoo_container_memory_working_set_bytes", lv2...) && h.c.streams.len() == 1
	})
	h.shutdown(t)
	// No stream opens after Close (a scrape still in flight at shutdown).
	if _, err := h.c.streams.get(context.Background(), app2.ID); err == nil || h.c.streams.len() != 0 {
		t.Errorf("a stream opened after Close: err %v, %d open", err, h.c.streams.len())
	}
	eventually(t, 10*time.Second, "no stats stream goroutine left", func() bool {
		return !strings.Contains(allGoroutines(), "(*statsStreams)")
	})
}

func testDockerOOM(t *testing.T, d *dockertest.Daemon) {
	opts := caseOpts("oom")
	opts.Host = d.Host()
	h := newDockerHarness(t, opts)
	h.waitSubscribed(t)
	app := runApp(t, d, dockertest.AppConfig{Name: "odoo-oom-1", Memory: 64 * mib, Labels: map[string]string{"case": "oom"}})
	lv := []string{"name", "odoo-oom-1", "service", "odoo-oom-1"}

	m := h.scrape(t)
	if got := m.value(t, "odoo_container_memory_limit_bytes", lv...); got != 64*mib {
		t.Errorf("memory_limit_bytes = %v, want %v", got, 64*mib)
	}
	if got := m.value(t, "odoo_container_oom_killed", lv...); got != 0 {
		t.Errorf("oom_killed = %v before the OOM kill", got)
	}
	// The counter must exist at 0 before the kill, else increase() in
	// the OOM alert misses the first one.
	if got := m.value(t, "odoo_container_oom_events_total", lv...); got != 0 {
		t.Errorf("oom_events_total = %v before the OOM kill", got)
	}
	if _, err := app.Alloc(context.Background(), 100); err == nil {
		t.Fatal("allocating 100 MiB under a 64 MiB limit succeeded")
	}
	eventually(t, 30*time.Second, "oom_killed = 1, running = 0, one OOM event", func() bool {
		m = h.scrape(t)
		return m.value(t, "odoo_container_oom_killed", lv...) == 1 &&
			m.value(t, "odoo_container_running", lv...) == 0 &&
			m.counter(t, "odoo_container_oom_events_total", lv...) == 1 &&
			m.counter(t, "odoo_container_events_total", append(lv, "event", "die")...) == 1
	})
	if m.has("odoo_container_memory_usage_bytes", lv...) {
		t.Error("memory usage reported for a stopped container")
	}
}

func testDockerRestart(t *testing.T, d *dockertest.Daemon) {
	opts := caseOpts("restart")
	opts.Host = d.Host()
	h := newDockerHarness(t, opts)
	h.waitSubscribed(t)
	app := runApp(t, d, dockertest.AppConfig{Name: "odoo-restart-1", RestartPolicy: container.RestartPolicyOnFailure,
		Labels: map[string]string{"case": "restart"}})
	lv := []string{"name", "odoo-restart-1", "service", "odoo-restart-1"}
	ev := func(m metrics, event string) float64 {
		return m.counter(t, "odoo_container_events_total", append(lv, "event", event)...)
	}
	var m metrics
	eventually(t, 30*time.Second, "the start event", func() bool { m = h.scrape(t); return ev(m, "start") == 1 })
	started0 := m.value(t, "odoo_container_started_timestamp_seconds", lv...)
	if got := m.value(t, "odoo_container_restart_count", lv...); got != 0 {
		t.Fatalf("restart_count = %v, want 0", got)
	}

	// A crash: the restart policy starts it again.
	if err := app.Exit(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "restart_count = 1 and a new start", func() bool {
		m = h.scrape(t)
		return m.value(t, "odoo_container_restart_count", lv...) == 1 &&
			m.value(t, "odoo_container_running", lv...) == 1 &&
			m.value(t, "odoo_container_started_timestamp_seconds", lv...) > started0 &&
			ev(m, "die") == 1 && ev(m, "start") == 2
	})
	started1 := m.value(t, "odoo_container_started_timestamp_seconds", lv...)

	// docker restart: a restart event, a new start time.
	if err := app.WaitReady(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	timeout := 5
	if err := d.Client().ContainerRestart(context.Background(), app.ID, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "a restart event and a new start time", func() bool {
		m = h.scrape(t)
		return ev(m, "restart") == 1 &&
			m.value(t, "odoo_container_started_timestamp_seconds", lv...) > started1
	})
}

func testDockerHealth(t *testing.T, d *dockertest.Daemon) {
	opts := caseOpts("health")
	opts.Host = d.Host()
	h := newDockerHarness(t, opts)
	app := runApp(t, d, dockertest.AppConfig{Name: "odoo-health-1", Healthcheck: true, Labels: map[string]string{"case": "health"}})
	lv := []string{"name", "odoo-health-1", "service", "odoo-health-1"}
	healthy := func(want float64) func() bool {
		return func() bool {
			m := h.scrape(t)
			return m.has("odoo_container_healthy", lv...) && m.value(t, "odoo_container_healthy", lv...) == want
		}
	}
	eventually(t, 30*time.Second, "healthy = 1", healthy(1))
	if err := app.SetHealthy(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "healthy = 0", healthy(0))
	if err := app.SetHealthy(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "healthy = 1 again", healthy(1))
}

func testDockerSelection(t *testing.T, d *dockertest.Daemon) {
	runApp(t, d, dockertest.AppConfig{Name: "odoo-sel-web-1", Labels: map[string]string{"case": "sel"}})
	runApp(t, d, dockertest.AppConfig{Name: "sel-other-1", Labels: map[string]string{"case": "sel"}})
	runApp(t, d, dockertest.AppConfig{Name: "sel-proj-web-1",
		Labels: map[string]string{"case": "sel", composeProjectLabel: "odoo", composeServiceLabel: "web"}})
	runApp(t, d, dockertest.AppConfig{Name: "sel-db-1",
		Labels: map[string]string{"case": "sel", composeProjectLabel: "shop", composeServiceLabel: "odoo"}})
	runApp(t, d, dockertest.AppConfig{Name: "odoo-sel-elsewhere-1", Labels: map[string]string{"case": "elsewhere"}})

	for _, tc := range []struct {
		name    string
		labels  []string
		pattern string
		want    []string
	}{
		{"default pattern: name, project or service", []string{"case=sel"}, "odoo",
			[]string{"odoo-sel-web-1", "sel-db-1", "sel-proj-web-1"}},
		{"empty pattern: all with the label", []string{"case=sel"}, "",
			[]string{"odoo-sel-web-1", "sel-db-1", "sel-other-1", "sel-proj-web-1"}},
		{"anchored pattern", []string{"case"}, "^sel-", []string{"sel-db-1", "sel-other-1", "sel-proj-web-1"}},
		{"labels are ANDed", []string{"case=sel", composeProjectLabel + "=odoo"}, "", []string{"sel-proj-web-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewDockerCollector(DockerOptions{Host: d.Host(), Labels: tc.labels, NamePattern: tc.pattern, Logger: testLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			m := scrapeOnce(t, &Exporter{logger: testLogger(), collectors: map[string]Collector{"docker": c}})
			var got []string
			for _, s := range m.find("odoo_container_running") {
				for _, lp := range s.GetLabel() {
					if lp.GetName() == "name" {
						got = append(got, lp.GetValue())
					}
				}
			}
			if strings.Join(sortedCopy(got), ",") != strings.Join(tc.want, ",") {
				t.Errorf("selected %v, want %v", sortedCopy(got), tc.want)
			}
			if n := m.value(t, "odoo_containers"); n != float64(len(tc.want)) {
				t.Errorf("odoo_containers = %v, want %d", n, len(tc.want))
			}
		})
	}
	if _, err := NewDockerCollector(DockerOptions{NamePattern: "("}); err == nil {
		t.Error("an invalid name pattern was accepted")
	}
	if _, err := NewDockerCollector(DockerOptions{Labels: []string{"=x"}}); err == nil {
		t.Error("a label filter without key was accepted")
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// testDockerRecover cuts the exporter's connection to the daemon (through
// a socket proxy) while a container is OOM-killed, and checks that the
// kill and the death are counted once after the reconnection.
func testDockerRecover(t *testing.T, d *dockertest.Daemon) {
	proxy := newSocketProxy(t, strings.TrimPrefix(d.Host(), "unix://"))
	opts := caseOpts("recover")
	opts.Host = "unix://" + proxy.path
	h := newDockerHarness(t, opts)
	h.waitSubscribed(t)
	app := runApp(t, d, dockertest.AppConfig{Name: "odoo-recover-1", Memory: 64 * mib, Labels: map[string]string{"case": "recover"}})
	lv := []string{"name", "odoo-recover-1", "service", "odoo-recover-1"}
	eventually(t, 30*time.Second, "the start event", func() bool {
		return h.scrape(t).counter(t, "odoo_container_events_total", append(lv, "event", "start")...) == 1
	})

	proxy.cut()
	eventually(t, 30*time.Second, "the stream to be lost", func() bool {
		m := h.scrape(t)
		return m.value(t, "odoo_container_events_up") == 0 &&
			m.value(t, "odoo_exporter_collector_success", "collector", "docker") == 0
	})
	if _, err := app.Alloc(context.Background(), 100); err == nil {
		t.Fatal("allocating 100 MiB under a 64 MiB limit succeeded")
	}
	waitState(t, d, app.ID, "OOM-killed", func(s *container.State) bool { return !s.Running && s.OOMKilled })
	proxy.restore()

	h.waitSubscribed(t)
	m := h.scrape(t)
	if got := m.counter(t, "odoo_container_oom_events_total", lv...); got != 1 {
		t.Errorf("oom_events_total = %v after recovery, want 1", got)
	}
	if got := m.counter(t, "odoo_container_events_total", append(lv, "event", "die")...); got != 1 {
		t.Errorf("die events = %v after recovery, want 1", got)
	}
	if got := m.counter(t, "odoo_container_events_total", append(lv, "event", "start")...); got != 1 {
		t.Errorf("start events = %v after recovery, want 1 (no start was missed)", got)
	}
	if got := m.value(t, "odoo_container_oom_killed", lv...); got != 1 {
		t.Errorf("oom_killed = %v, want 1", got)
	}
}

func waitState(t *testing.T, d *dockertest.Daemon, id, what string, cond func(*container.State) bool) {
	t.Helper()
	eventually(t, 30*time.Second, "container "+what, func() bool {
		return cond(inspect(t, d, id).State)
	})
}

// testDockerFlags builds the collector from its flags, as main does, with
// DOCKER_HOST naming the daemon.
func testDockerFlags(t *testing.T, d *dockertest.Daemon) {
	t.Setenv("DOCKER_HOST", d.Host())
	exp, err := New(Deps{Logger: testLogger()}, "docker")
	if err != nil {
		t.Fatal(err)
	}
	m := scrapeOnce(t, exp)
	if got := m.value(t, "odoo_exporter_collector_success", "collector", "docker"); got != 1 {
		t.Fatalf("collector_success = %v, want 1", got)
	}
	// The default name pattern "odoo" finds the containers of the cases above.
	if !m.has("odoo_container_running", "name", "odoo-memory-web-1") || m.has("odoo_container_running", "name", "sel-other-1") {
		t.Errorf("default selection wrong:\n%s", m.names())
	}
	exp.collectors["docker"].(*DockerCollector).Close()
}

// testDockerDaemonDown stops dockerd under a running collector: scrapes
// report the failure and keep the counters, the Runner reconnects when the
// daemon is back, and no goroutine is left once it is stopped.
func testDockerDaemonDown(t *testing.T, d *dockertest.Daemon) {
	app := runApp(t, d, dockertest.AppConfig{Name: "odoo-down-1", RestartPolicy: container.RestartPolicyAlways,
		Labels: map[string]string{"case": "down"}})
	_ = app
	opts := caseOpts("down")
	opts.Host = d.Host()
	h := newDockerHarness(t, opts)
	h.waitSubscribed(t)
	lv := []string{"name", "odoo-down-1", "service", "odoo-down-1"}
	m := h.scrape(t)
	startedBefore := m.value(t, "odoo_container_started_timestamp_seconds", lv...)

	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		m = h.scrape(t)
		if got := m.value(t, "odoo_exporter_collector_success", "collector", "docker"); got != 0 {
			t.Fatalf("collector_success = %v with dockerd stopped, want 0", got)
		}
		if m.has("odoo_container_running") {
			t.Fatal("container metrics reported with dockerd stopped")
		}
	}
	eventually(t, 30*time.Second, "events_up = 0", func() bool { return h.scrape(t).value(t, "odoo_container_events_up") == 0 })

	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	// The restart policy starts the container again with the daemon; the
	// start is counted once, whether the replay or the recovery sees it.
	eventually(t, 60*time.Second, "recovery after dockerd is back", func() bool {
		m = h.scrape(t)
		return m.value(t, "odoo_exporter_collector_success", "collector", "docker") == 1 &&
			m.value(t, "odoo_container_events_up") == 1 &&
			m.has("odoo_container_running", lv...) && m.value(t, "odoo_container_running", lv...) == 1 &&
			m.value(t, "odoo_container_started_timestamp_seconds", lv...) > startedBefore
	})
	h.waitSubscribed(t)
	m = h.scrape(t)
	if got := m.counter(t, "odoo_container_events_total", append(lv, "event", "start")...); got != 1 {
		t.Errorf("start events after the daemon restart = %v, want 1", got)
	}

	// No goroutine of the collector outlives its Runner and client.
	h.shutdown(t)
	eventually(t, 10*time.Second, "no docker collector goroutine left", func() bool {
		return dockerGoroutines() == ""
	})
}

// allGoroutines returns the stacks of every goroutine.
func allGoroutines() string {
	buf := make([]byte, 4<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// dockerGoroutines returns the stacks of goroutines running the docker
// collector, its stats streams or its client's event stream.
func dockerGoroutines() string {
	var found []string
	for _, g := range strings.Split(allGoroutines(), "\n\n") {
		if strings.Contains(g, "(*DockerCollector)") || strings.Contains(g, "(*statsStreams)") ||
			strings.Contains(g, "docker/docker/client.(*Client).Events") {
			found = append(found, g)
		}
	}
	return strings.Join(found, "\n\n")
}

// socketProxy forwards a unix socket to another, and can cut every
// connection and refuse new ones, as a network failure would, or freeze
// the daemon's answers, as a stalled daemon or connection would.
type socketProxy struct {
	t      *testing.T
	path   string
	target string
	frozen atomic.Bool
	mu     sync.Mutex
	l      net.Listener
	conns  []net.Conn
}

func newSocketProxy(t *testing.T, target string) *socketProxy {
	dir, err := os.MkdirTemp("", "sockproxy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &socketProxy{t: t, path: filepath.Join(dir, "docker.sock"), target: target}
	p.restore()
	t.Cleanup(p.cut)
	return p
}

func (p *socketProxy) restore() {
	l, err := net.Listen("unix", p.path)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { p.forward(c, up); c.Close() }()
		}
	}()
}

// forward copies the daemon's answers, holding them while frozen.
func (p *socketProxy) forward(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for p.frozen.Load() {
			time.Sleep(50 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *socketProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		if err := p.l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			p.t.Log(err)
		}
		p.l = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	os.Remove(p.path)
}
