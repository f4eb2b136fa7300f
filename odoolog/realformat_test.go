package odoolog

import (
	"os"
	"testing"
)

// TestRealLogs reads logs written by real Odoo servers (testdata/, see
// testdata/README.md) and checks what the catalog finds in them.
func TestRealLogs(t *testing.T) {
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file      string
		records   uint64
		matches   map[string]int
		exception map[string]string // entry id -> exception type
		jobs      map[string]string // entry id -> job of its last match
	}{
		{
			file: "testdata/odoo17.log", records: 34,
			matches:   map[string]int{"cron_started": 1, "cron_failed": 1, "worker_alive": 3, "server_start": 1, "asset_file_missing": 1},
			exception: map[string]string{"cron_failed": "odoo.exceptions.UserError", "asset_file_missing": "FileNotFoundError"},
			jobs:      map[string]string{"cron_started": "issue14 failing job", "cron_failed": "issue14 failing job"},
		},
		{
			file: "testdata/odoo18.log", records: 36,
			matches: map[string]int{"cron_started_18": 3, "cron_done_18": 3, "worker_alive": 3, "server_start": 1},
			jobs:    map[string]string{"cron_started_18": "Base: Portal Users Deletion", "cron_done_18": "Base: Portal Users Deletion"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			exc := map[string]string{}
			jobs := map[string]string{}
			var m Match
			p := NewParser(0, func(r *Record) {
				if e := cat.Match(r, &m); e != nil {
					got[e.ID]++
					exc[e.ID] = string(r.Exception)
					if len(m.Job) > 0 {
						jobs[e.ID] = string(m.Job)
					}
				}
			})
			s := NewLineSplitter(0, p.Line)
			s.Write(data)
			s.Flush()
			p.Flush()
			if st := p.Stats(); st.Records != tt.records || st.Orphans != 0 || st.Truncated != 0 {
				t.Errorf("stats = %+v, want %d records", st, tt.records)
			}
			if len(got) != len(tt.matches) {
				t.Errorf("matches = %v, want %v", got, tt.matches)
			}
			for id, n := range tt.matches {
				if got[id] != n {
					t.Errorf("%s: %d matches, want %d", id, got[id], n)
				}
			}
			for id, e := range tt.exception {
				if exc[id] != e {
					t.Errorf("%s: exception %q, want %q", id, exc[id], e)
				}
			}
			for id, j := range tt.jobs {
				if jobs[id] != j {
					t.Errorf("%s: job %q, want %q", id, jobs[id], j)
				}
			}
		})
	}
}
