package odoosim

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/odoo-exporter/odoo_exporter/internal/pgtest"
	"github.com/odoo-exporter/odoo_exporter/odoolog"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// TestOdooLog checks the stand-in's log with the reader and catalog that
// read real Odoo logs (odoolog, tested on logs of real Odoo 17 and 18): per
// series, its start, a good and a failing cron run (with the traceback of
// a real Odoo 17), and a boot error that fails the next start too.
func TestOdooLog(t *testing.T) {
	c := pgtest.New(t)
	cat, err := odoolog.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		version               string
		started, done, failed string
	}{
		{"16.0", "cron_started", "cron_done_16", "cron_failed"},
		{"17.0", "cron_started", "cron_done", "cron_failed"},
		{"18.0", "cron_started_18", "cron_done_18", "cron_failed_18"},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			db := c.OdooDB(t, tt.version)
			var out syncBuffer
			log := NewOdooLog(&out, 4242)
			dir := t.TempDir()
			start := func() (*Server, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				return Start(ctx, Config{DSN: c.DSN(db, ""), Version: tt.version, FilestoreDir: dir, Log: log})
			}
			s, err := start()
			if err != nil {
				t.Fatal(err)
			}
			s.LogCronRun(true)
			if resp, err := http.Get(s.WebURL() + "/web/health"); err != nil {
				t.Fatal(err)
			} else {
				resp.Body.Close()
			}
			resp, err := http.Post(s.WebURL()+"/__odoosim/fault?fault=cron_failure", "", nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("cron_failure: %v %v", resp, err)
			}
			resp.Body.Close()
			resp, err = http.Post(s.WebURL()+"/__odoosim/fault?fault=boot_error&starts=1", "", nil)
			if err != nil || resp.StatusCode != http.StatusAccepted {
				t.Fatalf("boot_error: %v %v", resp, err)
			}
			resp.Body.Close()
			select {
			case <-s.Exited():
			case <-time.After(time.Minute):
				t.Fatal("a boot error does not end the process")
			}
			s.Close()
			if _, err := start(); !errors.Is(err, ErrBootFailed) {
				t.Fatalf("the start after the boot error: %v, want ErrBootFailed", err)
			}
			s, err = start()
			if err != nil {
				t.Fatalf("the boot error outlived its starts: %v", err)
			}
			s.Close()

			got := map[string]int{}
			exc := map[string]string{}
			var m odoolog.Match
			p := odoolog.NewParser(0, func(r *odoolog.Record) {
				if string(r.Logger) == "werkzeug" {
					got["werkzeug "+string(r.DB)+" "+string(r.Message)]++
				}
				if e := cat.Match(r, &m); e != nil {
					got[e.ID]++
					exc[e.ID] = string(r.Exception)
					if e.Event != "" && len(m.Job) > 0 && string(m.Job) != cronJob {
						t.Errorf("%s: job %q", e.ID, m.Job)
					}
				}
			})
			sp := odoolog.NewLineSplitter(0, p.Line)
			sp.Write(out.Bytes())
			p.Flush()
			if st := p.Stats(); st.Orphans != 0 || st.Truncated != 0 {
				t.Errorf("stats %+v: lines not in Odoo's format", st)
			}
			want := map[string]int{
				"server_start": 3, "worker_alive": 2,
				tt.started: 2, tt.done: 1, tt.failed: 1,
				"boot_module_load_failed": 2, "boot_import_error": 4,
			}
			// A werkzeug access line as a real Odoo 17 writes it:
			// 127.0.0.1 - - [02/Dec/2026 17:26:37] "GET /web/health HTTP/1.1" 200 - 6 0.011 0.119
			access := 0
			for k := range got {
				if ok, _ := regexp.MatchString(`^werkzeug `+db+` 127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d\] "GET /web/health HTTP/1\.1" 200 - \d+ \d+\.\d{3} \d+\.\d{3}$`, k); ok {
					access++
				}
			}
			if access != 1 {
				t.Errorf("no werkzeug access line of /web/health in %v", got)
			}
			for id, n := range want {
				if got[id] != n {
					t.Errorf("%s: %d records, want %d (all: %v)", id, got[id], n, got)
				}
			}
			if exc[tt.failed] != "odoo.exceptions.UserError" || exc["boot_import_error"] != "ModuleNotFoundError" {
				t.Errorf("exceptions: %v", exc)
			}
		})
	}
}
