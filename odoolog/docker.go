package odoolog

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// DockerSource follows a container's log through the Engine API (docker
// logs --follow --timestamps): both streams, demultiplexed (or the one
// stream of a container with a TTY), each parsed on its own. When the
// stream ends (the container stopped, restarted, was recreated under the
// same name, the daemon restarted) it attaches again from the timestamp of
// the last line read, and drops the lines it already read, so that no line
// is counted twice and none written while detached is missed (as long as
// the log driver keeps them: json-file and local do).
type DockerSource struct {
	Client *client.Client
	// Container is the container's name or ID.
	Container string
	// Retry is the time between two attempts to attach (default 1 s).
	Retry time.Duration
	// FromStart reads the container's whole log at the first attach; by
	// default only the lines written after the start are read.
	FromStart bool
	SourceOptions

	mu      sync.Mutex
	feeders []*feeder
}

// Stats returns the parsers' counts, stdout's and stderr's summed.
func (s *DockerSource) Stats() Stats {
	s.mu.Lock()
	fs := s.feeders
	s.mu.Unlock()
	var t Stats
	for _, f := range fs {
		st := f.Stats()
		t.Lines += st.Lines
		t.Records += st.Records
		t.Orphans += st.Orphans
		t.Truncated += st.Truncated
	}
	return t
}

// dedup is the position in a container's log: the timestamp of the last
// line read and how many lines carried it.
type dedup struct {
	last   int64 // UnixNano of the last line read; 0 before any
	atLast int   // lines read with that timestamp
	skip   int   // lines with timestamp last still to drop after an attach
	// finished is the FinishedAt of the stopped container whose log was
	// read to its end.
	finished string
}

// accept tells whether a line stamped ts is new, and records it.
func (d *dedup) accept(ts int64) bool {
	switch {
	case ts < d.last:
		return false
	case ts == d.last:
		if d.skip > 0 {
			d.skip--
			return false
		}
		d.atLast++
	default:
		d.last, d.atLast, d.skip = ts, 1, 0
	}
	return true
}

// Run follows the container's log and calls handle with every record
// until ctx ends. handle is called from one goroutine at a time.
func (s *DockerSource) Run(ctx context.Context, handle func(*Record)) {
	o := s.SourceOptions
	o.defaults()
	retry := s.Retry
	if retry <= 0 {
		retry = time.Second
	}
	var (
		d       dedup
		handler sync.Mutex // the two parsers share handle
	)
	h := func(r *Record) {
		handler.Lock()
		defer handler.Unlock()
		handle(r)
	}
	line := func(f *feeder, b []byte, truncated bool) {
		sp := bytes.IndexByte(b, ' ')
		if sp > 0 {
			if ts, ok := parseDockerTime(b[:sp]); ok {
				if !d.accept(ts) {
					return
				}
				b = b[sp+1:]
			}
		}
		f.parser.Line(b, truncated)
	}
	stdout, stderr := newFeeder(o, h, line), newFeeder(o, h, line)
	s.mu.Lock()
	s.feeders = []*feeder{stdout, stderr}
	s.mu.Unlock()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go idleFlusher(fctx, o.FlushAfter, stdout, stderr)

	since := time.Now()
	if s.FromStart {
		since = time.Time{}
	}
	failed := false
	for ctx.Err() == nil {
		attached, err := s.follow(ctx, &d, since, stdout, stderr, o)
		stdout.flush()
		stderr.flush()
		if attached {
			o.OnUp(false)
			o.OnEvent(EventDetached)
			failed = false
		}
		if err != nil && ctx.Err() == nil {
			o.OnEvent(EventError)
			if !failed {
				failed = true
				o.Logger.Warn("reading the Odoo container's log; retrying", "container", s.Container, "err", err)
			}
		}
		if d.last != 0 {
			since = time.Unix(0, d.last)
			d.skip = d.atLast
		}
		if !sleep(ctx, retry) {
			break
		}
	}
}

// follow attaches once and reads until the stream ends.
func (s *DockerSource) follow(ctx context.Context, d *dedup, since time.Time, stdout, stderr *feeder, o SourceOptions) (attached bool, err error) {
	info, err := s.Client.ContainerInspect(ctx, s.Container)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			o.OnUp(false)
			return false, nil
		}
		return false, fmt.Errorf("inspecting %s: %w", s.Container, err)
	}
	if info.State == nil {
		return false, fmt.Errorf("inspecting %s: no state", s.Container)
	}
	if !info.State.Running {
		// Read a stopped container's log to its end once (it may have
		// stopped while detached), then wait for its start.
		if info.State.FinishedAt == d.finished {
			o.OnUp(false)
			return false, nil
		}
		d.finished = info.State.FinishedAt
	}
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Timestamps: true}
	if !since.IsZero() {
		opts.Since = strconv.FormatInt(since.Unix(), 10) + "." + fmt.Sprintf("%09d", since.Nanosecond())
	}
	body, err := s.Client.ContainerLogs(ctx, s.Container, opts)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("attaching to the log of %s: %w", s.Container, err)
	}
	defer body.Close()
	o.OnUp(true)
	o.OnEvent(EventOpened)
	if info.Config != nil && info.Config.Tty {
		_, err = io.Copy(stderr, body)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, body)
	}
	if err != nil && ctx.Err() == nil {
		return true, fmt.Errorf("reading the log of %s: %w", s.Container, err)
	}
	return true, nil
}

// parseDockerTime parses the RFC 3339 UTC timestamp (nanoseconds, trailing
// zeros trimmed) Docker puts before each line, without allocating.
func parseDockerTime(b []byte) (int64, bool) {
	// 2006-01-02T15:04:05[.999999999]Z
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return 0, false
	}
	num := func(p []byte) (int, bool) {
		n := 0
		for _, c := range p {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	minute, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return 0, false
	}
	nsec := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) > 10 || len(frac) < 2 {
			return 0, false
		}
		n, ok := num(frac[1:])
		if !ok {
			return 0, false
		}
		for i := len(frac) - 1; i < 9; i++ {
			n *= 10
		}
		nsec = n
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC).UnixNano(), true
}
