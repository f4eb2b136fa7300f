package odoolog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Source events reported through SourceOptions.OnEvent.
const (
	EventOpened    = "opened"    // a file was opened, a container's log attached
	EventRotated   = "rotated"   // the path names a new file (rename rotation, a file that appeared)
	EventTruncated = "truncated" // the file shrank under the reader (copytruncate)
	EventDetached  = "detached"  // a container's log stream ended (stop, restart, daemon)
	EventError     = "error"     // reading failed; retried
)

// SourceOptions are the options common to the sources.
type SourceOptions struct {
	// MaxLine and MaxRecord bound a line and a record's continuation
	// lines (0: DefaultMaxLine, DefaultMaxRecord).
	MaxLine, MaxRecord int
	// FlushAfter hands a record over when no line has followed it for
	// this long (a traceback is written at once, so a record without a
	// next line for that long is complete; default 1 s).
	FlushAfter time.Duration
	// OnEvent, when set, is called with the source's events (Event*).
	OnEvent func(event string)
	// OnUp, when set, is called with true when the source is read and
	// false when it is not (file missing, container absent or stopped).
	OnUp func(up bool)
	// Logger receives the errors (the first of a series).
	Logger *slog.Logger
}

func (o *SourceOptions) defaults() {
	if o.FlushAfter <= 0 {
		o.FlushAfter = time.Second
	}
	if o.OnEvent == nil {
		o.OnEvent = func(string) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnUp == nil {
		o.OnUp = func(bool) {}
	}
}

// feeder is a line splitter and a parser shared by a source's reader and
// its idle flusher.
type feeder struct {
	mu       sync.Mutex
	splitter *LineSplitter
	parser   *Parser
	last     time.Time // when the last bytes came
}

func newFeeder(o SourceOptions, handle func(*Record), line func(f *feeder, b []byte, truncated bool)) *feeder {
	f := &feeder{}
	f.parser = NewParser(o.MaxRecord, handle)
	if line == nil {
		f.splitter = NewLineSplitter(o.MaxLine, f.parser.Line)
	} else {
		f.splitter = NewLineSplitter(o.MaxLine, func(b []byte, tr bool) { line(f, b, tr) })
	}
	return f
}

// Write implements io.Writer.
func (f *feeder) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = time.Now()
	return f.splitter.Write(p)
}

// flush hands over what is held: the unterminated line, the last record.
func (f *feeder) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.splitter.Flush()
	f.parser.Flush()
}

// flushIdle hands the pending record over once no bytes came for d.
func (f *feeder) flushIdle(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.parser.Pending() && !f.splitter.Buffered() && time.Since(f.last) >= d {
		f.parser.Flush()
	}
}

// Stats returns the parser's counts.
func (f *feeder) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parser.Stats()
}

// idleFlusher calls flushIdle on every feeder every d/2 until ctx ends.
func idleFlusher(ctx context.Context, d time.Duration, fs ...*feeder) {
	t := time.NewTicker(d / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, f := range fs {
				f.flushIdle(d)
			}
		}
	}
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
