package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// Stats modes of the docker collector (--collector.docker.stats-mode).
const (
	// StatsOneShot asks the daemon for one sample per container in every
	// scrape (stream=0, one-shot=1): fresh, and no cost between scrapes.
	StatsOneShot = "oneshot"
	// StatsStream keeps one stats stream (stream=1) open per running
	// container and answers a scrape from the latest sample, normally
	// about one stats tick (1 s) old; a sample older than 10 s is refused.
	StatsStream = "stream"
)

// maxStatsValue bounds one stats sample read from the daemon; a sample
// is a few KiB.
const maxStatsValue = 1 << 20

// statsStreams keeps one stats stream open per running container read by
// the collector and remembers the latest sample of each. A stream ends
// when the collector no longer lists its container as running (prune: a
// stopped container's stream goes on with empty samples), when the
// container is removed (the daemon closes it), when no sample arrived for
// maxAge (a stalled stream), when no scrape read it for idle, and at
// Close.
type statsStreams struct {
	client *client.Client
	// idle ends a stream no scrape has read for this long.
	idle time.Duration
	// maxAge: an older sample is not reported (the stream is stalled).
	maxAge time.Duration

	ctx    context.Context // the collector's lifetime
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	streams map[string]*statsStream
	closed  bool
}

// statsStream is the stream of one container.
type statsStream struct {
	cancel context.CancelFunc
	first  chan struct{} // closed at the first sample or when the stream ends

	mu     sync.Mutex
	sample container.StatsResponse
	at     time.Time // when sample was read; zero before the first
	used   time.Time // last read by a scrape
	err    error     // why the stream ended
	ended  bool
}

func newStatsStreams(cli *client.Client, idle, maxAge time.Duration) *statsStreams {
	ctx, cancel := context.WithCancel(context.Background())
	return &statsStreams{client: cli, idle: idle, maxAge: maxAge, ctx: ctx, cancel: cancel,
		streams: map[string]*statsStream{}}
}

// get returns the latest sample of container id, opening its stream if
// none is open and waiting, at most until ctx ends, for its first sample.
func (ss *statsStreams) get(ctx context.Context, id string) (container.StatsResponse, error) {
	s := ss.open(id)
	select {
	case <-s.first:
	case <-ctx.Done():
		return container.StatsResponse{}, fmt.Errorf("waiting for the first stats sample: %w", ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at.IsZero() {
		if s.err == nil {
			s.err = errors.New("stats stream ended before its first sample")
		}
		return container.StatsResponse{}, s.err
	}
	if age := time.Since(s.at); age > ss.maxAge {
		// A stream that stopped sending: open a new one at the next scrape.
		s.cancel()
		return container.StatsResponse{}, fmt.Errorf("latest stats sample is %s old (stream stalled)", age.Round(time.Millisecond))
	}
	return s.sample, nil
}

// open returns the open stream of container id, or starts one.
func (ss *statsStreams) open(id string) *statsStream {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		s := &statsStream{cancel: func() {}, first: make(chan struct{}), ended: true, err: errors.New("docker collector closed")}
		close(s.first)
		return s
	}
	now := time.Now()
	if s := ss.streams[id]; s != nil {
		s.mu.Lock()
		ended := s.ended
		if !ended {
			s.used = now
		}
		s.mu.Unlock()
		if !ended {
			return s
		}
	}
	ctx, cancel := context.WithCancel(ss.ctx)
	s := &statsStream{cancel: cancel, first: make(chan struct{}), used: now}
	ss.streams[id] = s
	ss.wg.Add(1)
	go ss.run(ctx, id, s)
	return s
}

// run reads the stream of container id until it ends.
func (ss *statsStreams) run(ctx context.Context, id string, s *statsStream) {
	defer ss.wg.Done()
	err := ss.read(ctx, id, s)
	s.mu.Lock()
	s.ended, s.err = true, err
	if s.at.IsZero() {
		close(s.first)
	}
	s.mu.Unlock()
	s.cancel()
	ss.mu.Lock()
	if ss.streams[id] == s {
		delete(ss.streams, id)
	}
	ss.mu.Unlock()
}

func (ss *statsStreams) read(ctx context.Context, id string, s *statsStream) error {
	resp, err := ss.client.ContainerStats(ctx, id, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// A stream that sends nothing for maxAge, first sample included, is
	// ended; the next scrape opens a new one.
	stalled := time.AfterFunc(ss.maxAge, s.cancel)
	defer stalled.Stop()
	lr := &valueLimitReader{r: resp.Body}
	dec := json.NewDecoder(lr)
	for {
		lr.n = maxStatsValue
		var v container.StatsResponse
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("stats stream closed by the daemon")
			}
			return fmt.Errorf("reading the stats stream: %w", err)
		}
		stalled.Reset(ss.maxAge)
		now := time.Now()
		s.mu.Lock()
		if s.at.IsZero() {
			close(s.first)
		}
		s.sample, s.at = v, now
		idle := now.Sub(s.used) > ss.idle
		s.mu.Unlock()
		if idle {
			return errors.New("stats stream unread for too long")
		}
	}
}

// prune ends the streams of containers not in running, a list taken at
// listed; a stream read since then (by a concurrent scrape with a newer
// list) is kept.
func (ss *statsStreams) prune(running map[string]bool, listed time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, s := range ss.streams {
		if running[id] {
			continue
		}
		s.mu.Lock()
		recent := !s.used.Before(listed)
		s.mu.Unlock()
		if !recent {
			s.cancel()
			delete(ss.streams, id)
		}
	}
}

// len is the number of open streams.
func (ss *statsStreams) len() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.streams)
}

// close ends every stream and waits for their goroutines; no stream opens
// after it.
func (ss *statsStreams) close() {
	ss.mu.Lock()
	ss.closed = true
	ss.mu.Unlock()
	ss.cancel()
	ss.wg.Wait()
}

// valueLimitReader fails a read once n bytes were read since n was last
// set: it bounds each JSON value a decoder reads from a long stream.
type valueLimitReader struct {
	r io.Reader
	n int64
}

func (l *valueLimitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("stats sample larger than %d bytes", maxStatsValue)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
