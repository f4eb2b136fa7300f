package odoolog

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/odoo-exporter/odoo_exporter/internal/dockertest"
)

// TestDockerSource follows a real container's log (the private dockerd of
// internal/dockertest) across a restart and a stop: records of both
// streams, a traceback joined, no line read twice, the lines written while
// detached read.
func TestDockerSource(t *testing.T) {
	d := dockertest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	app, err := d.RunApp(ctx, dockertest.AppConfig{Name: "odoo-log-1", Mode: "print"})
	if err != nil {
		t.Fatal(err)
	}
	c := newCollected()
	src := &DockerSource{Client: d.Client(), Container: "odoo-log-1", Retry: 100 * time.Millisecond, SourceOptions: c.options()}
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { src.Run(sctx, c.handle); close(done) }()
	waitFor(t, "the attach", func() bool { _, e := c.snapshot(); return e[EventOpened] == 1 })

	print := func(stream, text string) {
		t.Helper()
		if err := app.Print(ctx, stream, text); err != nil {
			t.Fatal(err)
		}
	}
	print("stderr", line(1, "one")+line(2, "two")+"Traceback (most recent call last):\n  File \"x.py\", line 1, in f\nValueError: x\n")
	print("stdout", line(3, "on stdout"))
	waitFor(t, "3 records", func() bool { m, _ := c.snapshot(); return len(m) == 3 })

	// A 1 MiB line, then binary garbage: bounded, counted, no crash.
	garbage := make([]byte, 256<<10)
	for i := range garbage {
		garbage[i] = byte(i*7 + 1)
		if garbage[i] == '\n' {
			garbage[i] = 0
		}
	}
	print("stderr", line(4, "huge "+strings.Repeat("x", 1<<20))+string(garbage)+"\n"+line(5, "after the garbage"))
	waitFor(t, "5 records", func() bool { m, _ := c.snapshot(); return len(m) == 5 })
	if st := src.Stats(); st.Truncated != 1 {
		t.Errorf("stats %+v: the 1 MiB record is not counted as truncated", st)
	}
	c.mu.Lock()
	if len(c.messages[3]) > DefaultMaxLine || len(c.texts[3]) > DefaultMaxRecord {
		t.Errorf("the 1 MiB record is not bounded: message %d bytes, text %d bytes", len(c.messages[3]), len(c.texts[3]))
	}
	c.mu.Unlock()

	if err := d.Client().ContainerRestart(ctx, app.ID, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := app.WaitReady(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	print("stderr", line(6, "after the restart"))
	waitFor(t, "6 records", func() bool { m, _ := c.snapshot(); return len(m) == 6 })
	waitFor(t, "the re-attach", func() bool { _, e := c.snapshot(); return e[EventDetached] >= 1 && e[EventOpened] >= 2 })

	// Written, then stopped: the last line is read before the detach.
	print("stderr", line(7, "last words"))
	if err := d.Client().ContainerStop(ctx, app.ID, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "7 records", func() bool { m, _ := c.snapshot(); return len(m) == 7 })
	// A stopped container is not attached again and again.
	_, before := c.snapshot()
	time.Sleep(500 * time.Millisecond) // five retry periods
	_, after := c.snapshot()
	if after[EventOpened] > before[EventOpened]+1 {
		t.Errorf("attached %d times to a stopped container", after[EventOpened]-before[EventOpened])
	}
	scancel()
	<-done

	// Each stream is parsed on its own: stdout's record may come before
	// stderr's last one.
	msgs, _ := c.snapshot()
	huge := 0
	msgs = slices.DeleteFunc(msgs, func(m string) bool {
		if strings.HasPrefix(m, "huge xxx") {
			huge++
			return true
		}
		return false
	})
	if huge != 1 {
		t.Errorf("%d records of the 1 MiB line, want 1", huge)
	}
	sorted := slices.Sorted(slices.Values(msgs))
	want := []string{"after the garbage", "after the restart", "last words", "on stdout", "one", "two"}
	if strings.Join(sorted, "|") != strings.Join(want, "|") {
		t.Errorf("records = %q, want %q", msgs, want)
	}
	c.mu.Lock()
	if i := slices.Index(c.messages, "two"); i < 0 || c.texts[i] != "Traceback (most recent call last):\n  File \"x.py\", line 1, in f\nValueError: x" {
		t.Errorf("traceback not joined: %q", c.texts)
	}
	c.mu.Unlock()
	if st := src.Stats(); st.Records != 7 || st.Lines < 11 || st.Orphans != 0 {
		t.Errorf("stats = %+v, want 7 records of 11 lines or more (Docker may cut the long line)", st)
	}
	t.Logf("stats: %+v", src.Stats())
}

func TestDedup(t *testing.T) {
	var d dedup
	steps := []struct {
		ts    int64
		reset bool // re-attach before this line
		want  bool
	}{
		{10, false, true}, {20, false, true}, {20, false, true}, // two lines at 20
		{20, true, false}, {20, false, false}, {20, false, true}, // re-attached since 20: the two known ones dropped, a third one new
		{15, false, false}, {30, false, true},
	}
	for i, s := range steps {
		if s.reset {
			d.skip = d.atLast
		}
		if got := d.accept(s.ts); got != s.want {
			t.Errorf("step %d (ts %d): accept = %v, want %v", i, s.ts, got, s.want)
		}
	}
}

func TestParseDockerTime(t *testing.T) {
	for in, want := range map[string]string{
		"2026-12-02T17:25:33.123456789Z":  "2026-12-02T17:25:33.123456789Z",
		"2026-12-02T17:25:33.1Z":          "2026-12-02T17:25:33.1Z",
		"2026-12-02T17:25:33Z":            "2026-12-02T17:25:33Z",
		"2026-12-02T17:25:33.Z":           "",
		"2026-12-02 17:25:33,123":         "",
		"2026-12-02T17:25:33.1234567890Z": "",
		"garbage":                         "",
	} {
		ns, ok := parseDockerTime([]byte(in))
		got := ""
		if ok {
			got = time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
		}
		if got != want {
			t.Errorf("parseDockerTime(%q) = %q, want %q", in, got, want)
		}
	}
}
