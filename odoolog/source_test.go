package odoolog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// collected gathers what a source hands over.
type collected struct {
	mu       sync.Mutex
	messages []string
	texts    []string
	events   map[string]int
	up       bool
}

func newCollected() *collected { return &collected{events: map[string]int{}} }

func (c *collected) handle(r *Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.messages = append(c.messages, string(r.Message))
	c.texts = append(c.texts, string(r.Text))
}

func (c *collected) options() SourceOptions {
	return SourceOptions{
		FlushAfter: 100 * time.Millisecond,
		OnEvent: func(e string) {
			c.mu.Lock()
			c.events[e]++
			c.mu.Unlock()
		},
		OnUp: func(up bool) {
			c.mu.Lock()
			c.up = up
			c.mu.Unlock()
		},
	}
}

func (c *collected) snapshot() ([]string, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := map[string]int{}
	for k, v := range c.events {
		ev[k] = v
	}
	return slices.Clone(c.messages), ev
}

// waitFor polls cond until it holds; it fails the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func line(i int, msg string) string {
	return fmt.Sprintf("2026-12-02 17:30:%02d,000 42 INFO odoo odoo.test: %s \n", i%60, msg)
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestFileSource(t *testing.T) {
	tests := []struct {
		name string
		// steps run in order; each writes and waits for what it expects.
		run        func(t *testing.T, path string, c *collected)
		wantEvents map[string]int
	}{
		{
			name: "file that appears later, then a traceback",
			run: func(t *testing.T, path string, c *collected) {
				appendFile(t, path, line(1, "one")+line(2, "two")+"Traceback (most recent call last):\nValueError: x\n")
				waitFor(t, "2 records", func() bool { m, _ := c.snapshot(); return len(m) == 2 })
				c.mu.Lock()
				defer c.mu.Unlock()
				if c.texts[1] != "Traceback (most recent call last):\nValueError: x" {
					t.Errorf("traceback not joined: %q", c.texts[1])
				}
			},
			wantEvents: map[string]int{EventOpened: 1},
		},
		{
			name: "rename rotation, with a late write to the old file",
			run: func(t *testing.T, path string, c *collected) {
				appendFile(t, path, line(1, "before"))
				waitFor(t, "the first record", func() bool { m, _ := c.snapshot(); return len(m) == 1 })
				if err := os.Rename(path, path+".1"); err != nil {
					t.Fatal(err)
				}
				// Odoo's WatchedFileHandler writes to the old file until
				// it sees the rename.
				appendFile(t, path+".1", line(2, "late"))
				appendFile(t, path, line(3, "after"))
				waitFor(t, "3 records", func() bool { m, _ := c.snapshot(); return len(m) == 3 })
			},
			wantEvents: map[string]int{EventOpened: 2, EventRotated: 1},
		},
		{
			name: "copytruncate",
			run: func(t *testing.T, path string, c *collected) {
				appendFile(t, path, line(1, "a")+line(2, "b"))
				waitFor(t, "2 records", func() bool { m, _ := c.snapshot(); return len(m) == 2 })
				if err := os.Truncate(path, 0); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the truncation", func() bool { _, e := c.snapshot(); return e[EventTruncated] == 1 })
				appendFile(t, path, line(3, "c"))
				waitFor(t, "3 records", func() bool { m, _ := c.snapshot(); return len(m) == 3 })
			},
			wantEvents: map[string]int{EventOpened: 1, EventTruncated: 1},
		},
		{
			name: "1 MiB line and binary garbage",
			run: func(t *testing.T, path string, c *collected) {
				garbage := make([]byte, 256<<10)
				for i := range garbage {
					garbage[i] = byte(i*13 + 1)
				}
				appendFile(t, path, line(1, "huge "+strings.Repeat("y", 1<<20))+string(garbage)+"\n"+line(2, "after"))
				waitFor(t, "2 records", func() bool { m, _ := c.snapshot(); return len(m) == 2 })
				c.mu.Lock()
				defer c.mu.Unlock()
				if len(c.messages[0]) > DefaultMaxLine || len(c.texts[0]) > DefaultMaxRecord || c.messages[1] != "after" {
					t.Errorf("not bounded: message %d bytes, text %d bytes; next %.20q", len(c.messages[0]), len(c.texts[0]), c.messages[1])
				}
			},
			wantEvents: map[string]int{EventOpened: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "odoo.log")
			c := newCollected()
			// FromStart: whether the file is created before or after the
			// source's first look, it is read from its start.
			src := &FileSource{Path: path, Poll: 20 * time.Millisecond, FromStart: true, SourceOptions: c.options()}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { src.Run(ctx, c.handle); close(done) }()
			tt.run(t, path, c)
			cancel()
			<-done
			msgs, events := c.snapshot()
			for _, m := range msgs {
				if strings.Count(strings.Join(msgs, "|"), m) != 1 {
					t.Errorf("record %q read twice: %q", m, msgs)
				}
			}
			delete(events, EventError)
			// A file created before the first look is opened, not
			// rotated to; after it, it is both.
			if events[EventRotated] == events[EventOpened] && tt.wantEvents[EventRotated] < events[EventRotated] {
				events[EventRotated]--
			}
			if events[EventRotated] == 0 {
				delete(events, EventRotated)
			}
			if fmt.Sprint(events) != fmt.Sprint(tt.wantEvents) {
				t.Errorf("events = %v, want %v", events, tt.wantEvents)
			}
		})
	}
}

// TestFileSourceStartsAtEnd: the history of a file that exists when the
// source starts is not read again.
func TestFileSourceStartsAtEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odoo.log")
	appendFile(t, path, line(1, "history"))
	c := newCollected()
	src := &FileSource{Path: path, Poll: 20 * time.Millisecond, SourceOptions: c.options()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { src.Run(ctx, c.handle); close(done) }()
	waitFor(t, "the open", func() bool { _, e := c.snapshot(); return e[EventOpened] == 1 })
	appendFile(t, path, line(2, "new"))
	waitFor(t, "1 record", func() bool { m, _ := c.snapshot(); return len(m) == 1 })
	cancel()
	<-done
	if m, _ := c.snapshot(); m[0] != "new" {
		t.Errorf("records = %q, want only the new one", m)
	}
	if st := src.Stats(); st.Records != 1 || st.Lines != 1 {
		t.Errorf("stats = %+v", st)
	}
}
