package odoolog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"
)

// FileSource follows a log file as tail -F does: it reads what is appended,
// follows the path to a new file when the file is renamed away (logrotate's
// default) or appears later, and reads again from the start when the file
// is truncated under it (logrotate's copytruncate). It polls: a stat and a
// read every Poll (see docs/benchmarks.md for its cost).
type FileSource struct {
	Path string
	// Poll is the time between two looks at the file (default 250 ms).
	Poll time.Duration
	// FromStart reads a file that exists at start from its beginning;
	// by default only what is appended after the start is read (a restart
	// of the exporter must not count the history again). Files that
	// appear later are always read from their beginning.
	FromStart bool
	SourceOptions

	mu     sync.Mutex
	feeder *feeder
}

// Stats returns the parser's counts (zero before Run).
func (s *FileSource) Stats() Stats {
	s.mu.Lock()
	f := s.feeder
	s.mu.Unlock()
	if f == nil {
		return Stats{}
	}
	return f.Stats()
}

// Run follows the file and calls handle with every record until ctx ends.
// handle is called from one goroutine at a time.
func (s *FileSource) Run(ctx context.Context, handle func(*Record)) {
	o := s.SourceOptions
	o.defaults()
	poll := s.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	f := newFeeder(o, handle, nil)
	s.mu.Lock()
	s.feeder = f
	s.mu.Unlock()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go idleFlusher(fctx, o.FlushAfter, f)

	t := &tailer{path: s.Path, o: o, out: f, buf: make([]byte, 64<<10)}
	first := true
	for {
		t.step(first, first && !s.FromStart)
		first = false
		if !sleep(ctx, poll) {
			break
		}
	}
	t.close()
	f.flush()
}

// tailer is the state of a followed file between two polls.
type tailer struct {
	path   string
	o      SourceOptions
	out    io.Writer
	buf    []byte
	file   *os.File
	ino    uint64
	offset int64
	up     bool
	failed bool // the last error was reported
}

func (t *tailer) setUp(up bool) {
	if up != t.up {
		t.up = up
		t.o.OnUp(up)
	}
}

func (t *tailer) close() {
	if t.file != nil {
		t.file.Close()
		t.file = nil
	}
	t.setUp(false)
}

// step reads what is new and follows rotations. atEnd starts an existing
// file at its end (on the first step); a file opened after the first step
// is a new one (rotated).
func (t *tailer) step(first, atEnd bool) {
	if t.file == nil {
		if !t.open(atEnd) {
			return
		}
		if !first {
			t.o.OnEvent(EventRotated)
		}
	}
	// Read what the open file has (it may be the old file of a rotation:
	// what was written before the rename is read first).
	t.drain()
	fi, err := t.file.Stat()
	if err == nil && fi.Size() < t.offset {
		// copytruncate: the file was emptied (and maybe written again).
		t.o.OnEvent(EventTruncated)
		t.offset = 0
		if _, err := t.file.Seek(0, io.SeekStart); err != nil {
			t.report(fmt.Errorf("seek %s: %w", t.path, err))
			t.close()
			return
		}
		t.drain()
	}
	// Does the path still name the open file?
	pfi, err := os.Stat(t.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Renamed away and not yet recreated: keep the old file open,
		// a late write to it is still read.
		return
	case err != nil:
		t.report(fmt.Errorf("stat %s: %w", t.path, err))
		return
	}
	if inode(pfi) != t.ino {
		t.drain()
		t.file.Close()
		t.file = nil
		if t.open(false) {
			t.o.OnEvent(EventRotated)
			t.drain()
		}
	}
}

// open opens the path; atEnd seeks to its end.
func (t *tailer) open(atEnd bool) bool {
	f, err := os.Open(t.path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			t.report(err)
		}
		t.setUp(false)
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		t.report(err)
		return false
	}
	t.file, t.ino, t.offset = f, inode(fi), 0
	if atEnd {
		off, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			f.Close()
			t.file = nil
			t.report(err)
			return false
		}
		t.offset = off
	}
	t.failed = false
	t.setUp(true)
	t.o.OnEvent(EventOpened)
	return true
}

// drain reads the open file to its end.
func (t *tailer) drain() {
	for {
		n, err := t.file.Read(t.buf)
		if n > 0 {
			t.offset += int64(n)
			t.out.Write(t.buf[:n])
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.report(fmt.Errorf("read %s: %w", t.path, err))
			}
			return
		}
		if n == 0 {
			return
		}
	}
}

// report counts an error and logs the first of a series.
func (t *tailer) report(err error) {
	t.o.OnEvent(EventError)
	if !t.failed {
		t.failed = true
		t.o.Logger.Warn("reading Odoo's log file; retrying", "path", t.path, "err", err)
	}
}

func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
