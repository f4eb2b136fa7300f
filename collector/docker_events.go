package collector

import (
	"context"
	"fmt"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/system"
	"github.com/prometheus/client_golang/prometheus"
)

// The container events counted; "oom" goes to its own counter.
var countedEvents = []string{"start", "die", "restart"}

var (
	containerOOMEventsDesc = prometheus.NewDesc("odoo_container_oom_events_total",
		"OOM events of the container (Docker event \"oom\": the kernel's OOM killer acted in its cgroup), counted since the exporter started, including those recovered from State.OOMKilled after a lost event stream.",
		containerLabels, nil)
	containerEventsDesc = prometheus.NewDesc("odoo_container_events_total",
		"Docker events of the container since the exporter started: start, die (the main process ended, including restarts by the restart policy) and restart (docker restart). Starts and deaths missed while the stream was down are recovered from inspect, at most one each per container.",
		append(containerLabels[:len(containerLabels):len(containerLabels)], "event"), nil)
	containerEventsUpDesc = prometheus.NewDesc("odoo_container_events_up",
		"Whether the Docker event stream is subscribed (1) or being reconnected (0).", nil, nil)
)

type containerKey struct{ name, service string }

type eventKey struct {
	containerKey
	event string
}

// dockerEvents holds the counters fed by the event stream.
type dockerEvents struct {
	mu     sync.Mutex
	up     bool
	oom    map[containerKey]float64
	counts map[eventKey]float64
	// lastOOM is the time of the last oom event per container ID, so that
	// a recovery does not count again an OOM kill whose event was seen.
	lastOOM map[string]time.Time
}

func newDockerEvents() *dockerEvents {
	return &dockerEvents{
		oom:     map[containerKey]float64{},
		counts:  map[eventKey]float64{},
		lastOOM: map[string]time.Time{},
	}
}

func (e *dockerEvents) describe(ch chan<- *prometheus.Desc) {
	ch <- containerOOMEventsDesc
	ch <- containerEventsDesc
	ch <- containerEventsUpDesc
}

func (e *dockerEvents) collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(containerEventsUpDesc, prometheus.GaugeValue, boolFloat(e.up))
	for k, v := range e.oom {
		ch <- prometheus.MustNewConstMetric(containerOOMEventsDesc, prometheus.CounterValue, v, k.name, k.service)
	}
	for k, v := range e.counts {
		ch <- prometheus.MustNewConstMetric(containerEventsDesc, prometheus.CounterValue, v, k.name, k.service, k.event)
	}
}

func (e *dockerEvents) setUp(up bool) {
	e.mu.Lock()
	e.up = up
	e.mu.Unlock()
}

// touch makes the counters of container k exist, at 0 until its first
// event: a counter born at 1 hides its first increment from increase()
// and rate(), so the first OOM kill of a container would not alert.
func (e *dockerEvents) touch(k containerKey) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.oom[k]; !ok {
		e.oom[k] = 0
	}
	for _, ev := range countedEvents {
		if _, ok := e.counts[eventKey{k, ev}]; !ok {
			e.counts[eventKey{k, ev}] = 0
		}
	}
}

func (e *dockerEvents) add(k containerKey, event string) {
	e.mu.Lock()
	e.counts[eventKey{k, event}]++
	e.mu.Unlock()
}

func (e *dockerEvents) addOOM(k containerKey, id string, at time.Time) {
	e.mu.Lock()
	e.oom[k]++
	if at.After(e.lastOOM[id]) {
		e.lastOOM[id] = at
	}
	e.mu.Unlock()
}

// oomSeenSince tells whether an oom event of container id at or after t
// was counted.
func (e *dockerEvents) oomSeenSince(id string, t time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	last, ok := e.lastOOM[id]
	return ok && !last.Before(t)
}

// forgetExcept drops the OOM memory of containers not in ids.
func (e *dockerEvents) forgetExcept(ids map[string]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id := range e.lastOOM {
		if !ids[id] {
			delete(e.lastOOM, id)
		}
	}
}

// Run implements Runner: it follows the daemon's container events until
// ctx is done, reconnecting with exponential backoff (0.5 s to 30 s).
// After a reconnection, what the event stream missed is recovered from
// the containers' state (see recoverMissed).
func (c *DockerCollector) Run(ctx context.Context) {
	const minBackoff, maxBackoff = 500 * time.Millisecond, 30 * time.Second
	backoff := minBackoff
	var since time.Time // zero until the first subscription
	for {
		subscribed, err := c.follow(ctx, &since)
		c.events.setUp(false)
		if ctx.Err() != nil {
			return
		}
		if subscribed {
			backoff = minBackoff
		}
		c.logger.Warn("docker event stream lost, reconnecting", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// follow subscribes to the event stream and counts events until it ends.
// *since is the daemon time up to which every event has been counted; it
// is advanced by each event.
//
// The subscription starts at the daemon's current time (its "since"
// parameter makes the daemon replay anything after it), and changes of
// state between *since and that time are recovered from inspect; so each
// moment is covered by exactly one of the two.
func (c *DockerCollector) follow(ctx context.Context, since *time.Time) (subscribed bool, err error) {
	infoCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = c.ready(infoCtx)
	var info system.Info
	if err == nil {
		info, err = c.client.Info(infoCtx)
	}
	cancel()
	if err != nil {
		return false, fmt.Errorf("docker info: %w", err)
	}
	now, ok := dockerTime(info.SystemTime)
	if !ok {
		now = time.Now()
	}

	subCtx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the client's stream goroutine
	f := c.filters.Clone()
	f.Add("type", string(events.ContainerEventType))
	f.Add("event", "oom")
	for _, ev := range countedEvents {
		f.Add("event", ev)
	}
	msgs, errs := c.client.Events(subCtx, events.ListOptions{
		Since:   fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond()),
		Filters: f,
	})
	if !since.IsZero() {
		c.recoverMissed(ctx, *since, now)
	}
	*since = now
	c.events.setUp(true)
	c.logger.Debug("docker event stream subscribed", "since", now)
	for {
		select {
		case m := <-msgs:
			c.handleEvent(m)
			if t := time.Unix(0, m.TimeNano); t.After(*since) {
				*since = t
			}
		case err := <-errs:
			return true, err
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
}

func (c *DockerCollector) handleEvent(m events.Message) {
	attrs := m.Actor.Attributes
	name := attrs["name"]
	if !c.selected(name, attrs) {
		return
	}
	k := containerKey{name, serviceOf(name, attrs)}
	switch action := string(m.Action); action {
	case "oom":
		c.events.addOOM(k, m.Actor.ID, time.Unix(0, m.TimeNano))
	case "start", "die", "restart":
		c.events.add(k, action)
	}
}

// recoverMissed counts, from the state of the selected containers, what
// happened in (from, to] while the event stream was down: a start when
// State.StartedAt is in it, a die when State.FinishedAt is, and an OOM
// event when the container died there with State.OOMKilled and its oom
// event was not seen. It cannot recover: several starts or deaths of one
// container (each counts once), "restart" events (a docker restart is
// indistinguishable from a start), OOM kills of a container that was
// started again since (Docker clears OOMKilled on start) or that survived
// them (the OOM killer chose a child process), and containers removed in
// the meantime.
func (c *DockerCollector) recoverMissed(ctx context.Context, from, to time.Time) {
	list, err := c.list(ctx)
	if err != nil {
		c.logger.Warn("docker events: cannot recover missed events", "err", err)
		return
	}
	in := func(s string) (time.Time, bool) {
		t, ok := dockerTime(s)
		return t, ok && t.After(from) && !t.After(to)
	}
	ids := map[string]bool{}
	recovered := 0
	for _, s := range list {
		ids[s.ID] = true
		info, err := c.client.ContainerInspect(ctx, s.ID)
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil || info.ContainerJSONBase == nil || info.State == nil {
			c.logger.Warn("docker events: cannot recover missed events", "container", s.ID, "err", err)
			continue
		}
		name := containerName(s.Names)
		k := containerKey{name, serviceOf(name, s.Labels)}
		if _, ok := in(info.State.StartedAt); ok {
			c.events.add(k, "start")
			recovered++
		}
		if finished, ok := in(info.State.FinishedAt); ok {
			c.events.add(k, "die")
			recovered++
			started, _ := dockerTime(info.State.StartedAt)
			if info.State.OOMKilled && !c.events.oomSeenSince(s.ID, started) {
				c.events.addOOM(k, s.ID, finished)
				recovered++
			}
		}
	}
	c.events.forgetExcept(ids)
	if recovered > 0 {
		c.logger.Info("docker events: recovered missed events from container state", "events", recovered, "from", from, "to", to)
	}
}
