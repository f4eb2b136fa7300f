package odoolog

import (
	"bytes"
	"math/rand"
	"runtime"
	"strings"
	"testing"
)

// rec is a record copied out of the handler.
type rec struct {
	stamp, db, logger, message, text, exception string
	pid, lines                                  int
	level                                       Level
	truncated                                   bool
}

// parseAll feeds input to a splitter and a parser and returns the records.
func parseAll(t testing.TB, input string, maxLine, maxRecord int) ([]rec, Stats) {
	t.Helper()
	var out []rec
	p := NewParser(maxRecord, func(r *Record) {
		out = append(out, rec{
			stamp: string(r.Stamp), db: string(r.DB), logger: string(r.Logger), message: string(r.Message),
			text: string(r.Text), exception: string(r.Exception), pid: r.PID, lines: r.Lines,
			level: r.Level, truncated: r.Truncated,
		})
	})
	s := NewLineSplitter(maxLine, p.Line)
	if _, err := s.Write([]byte(input)); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	p.Flush()
	return out, p.Stats()
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name string
		line string
		ok   bool
		want rec
	}{
		{"info line with the empty perf_info's space",
			"2026-12-02 17:25:33,123 4711 INFO odoo odoo.addons.base.models.ir_cron: Job done: `Mail: Email Queue Manager` (0.129s). ",
			true, rec{stamp: "2026-12-02 17:25:33,123", pid: 4711, level: LevelInfo, db: "odoo", logger: "odoo.addons.base.models.ir_cron", message: "Job done: `Mail: Email Queue Manager` (0.129s)."}},
		{"no database",
			"2026-12-02 17:25:33,123 1 WARNING ? odoo.service.server: Thread <Thread(odoo.service.cron.cron0, started daemon 140)> virtual real time limit (121/120s) reached. ",
			true, rec{stamp: "2026-12-02 17:25:33,123", pid: 1, level: LevelWarning, db: "?", logger: "odoo.service.server", message: "Thread <Thread(odoo.service.cron.cron0, started daemon 140)> virtual real time limit (121/120s) reached."}},
		{"werkzeug access line keeps its perf fields",
			`2026-12-02 17:25:33,123 88 INFO odoo werkzeug: 127.0.0.1 - - [02/Dec/2026 17:25:33] "GET /web/login HTTP/1.1" 200 - 12 0.004 0.031`,
			true, rec{stamp: "2026-12-02 17:25:33,123", pid: 88, level: LevelInfo, db: "odoo", logger: "werkzeug", message: `127.0.0.1 - - [02/Dec/2026 17:25:33] "GET /web/login HTTP/1.1" 200 - 12 0.004 0.031`}},
		{"colored level (tty or ODOO_PY_COLORS)",
			"2026-12-02 17:25:33,123 7 \x1b[1;31m\x1b[1;49mERROR\x1b[0m odoo odoo.http: Exception during request handling. ",
			true, rec{stamp: "2026-12-02 17:25:33,123", pid: 7, level: LevelError, db: "odoo", logger: "odoo.http", message: "Exception during request handling."}},
		{"critical, empty message",
			"2026-12-02 17:25:33,123 7 CRITICAL odoo odoo.modules.module: ",
			true, rec{stamp: "2026-12-02 17:25:33,123", pid: 7, level: LevelCritical, db: "odoo", logger: "odoo.modules.module", message: ""}},
		{"unknown level is kept as unknown",
			"2026-12-02 17:25:33,123 7 NOTICE odoo odoo.x: y ",
			true, rec{stamp: "2026-12-02 17:25:33,123", pid: 7, level: LevelUnknown, db: "odoo", logger: "odoo.x", message: "y"}},
		{"traceback line", "Traceback (most recent call last):", false, rec{}},
		{"stamp without pid", "2026-12-02 17:25:33,123 INFO odoo odoo.x: y", false, rec{}},
		{"no logger colon", "2026-12-02 17:25:33,123 7 INFO odoo odoo.x y", false, rec{}},
		{"dockerd's time format", "2026-12-02T17:25:33.123456789Z 7 INFO odoo odoo.x: y", false, rec{}},
		{"truncated header", "2026-12-02 17:25:33,123 7 INFO", false, rec{}},
		{"empty", "", false, rec{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Record
			ok := parseHeader([]byte(tt.line), &r)
			if ok != tt.ok {
				t.Fatalf("parseHeader ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			got := rec{stamp: string(r.Stamp), pid: r.PID, level: r.Level, db: string(r.DB), logger: string(r.Logger), message: string(r.Message)}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestRecordTime(t *testing.T) {
	r := Record{Stamp: []byte("2026-12-02 17:25:33,123")}
	got, err := r.Time(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.UnixMilli() != 1796232333123 {
		t.Errorf("Time = %v (%d)", got, got.UnixMilli())
	}
}

// A failing cron job in Odoo 17, as its log has it: the record, its
// traceback with a chained exception, then the next record.
const cronFailure17 = "2026-12-02 17:31:00,517 4242 INFO odoo odoo.addons.base.models.ir_cron: Starting job `Failing job`. \n" +
	"2026-12-02 17:31:00,540 4242 ERROR odoo odoo.addons.base.models.ir_cron: Call from cron Failing job for server action #812 failed in Job #27 \n" +
	"Traceback (most recent call last):\n" +
	"  File \"/opt/odoo/odoo/tools/safe_eval.py\", line 391, in safe_eval\n" +
	"    return unsafe_eval(c, globals_dict, locals_dict)\n" +
	"  File \"ir.actions.server(812,)\", line 1, in <module>\n" +
	"KeyError: 'boom'\n" +
	"\n" +
	"During handling of the above exception, another exception occurred:\n" +
	"\n" +
	"Traceback (most recent call last):\n" +
	"  File \"/opt/odoo/odoo/addons/base/models/ir_cron.py\", line 393, in _callback\n" +
	"    self.env['ir.actions.server'].browse(server_action_id).run()\n" +
	"  File \"/opt/odoo/odoo/tools/safe_eval.py\", line 405, in safe_eval\n" +
	"    raise ValueError('%s: \"%s\" while evaluating\\n%r' % (ustr(type(e)), ustr(e), expr))\n" +
	"ValueError: <class 'KeyError'>: \"'boom'\" while evaluating\n" +
	"\"raise UserError('boom')\"\n" +
	"2026-12-02 17:31:00,541 4242 INFO odoo odoo.addons.base.models.ir_cron: Job `Other` done. \n"

func TestParserJoinsTracebacks(t *testing.T) {
	recs, st := parseAll(t, cronFailure17, 0, 0)
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3: %+v", len(recs), recs)
	}
	r := recs[1]
	if r.level != LevelError || r.message != "Call from cron Failing job for server action #812 failed in Job #27" {
		t.Errorf("record 2 = %+v", r)
	}
	if r.lines != 16 {
		t.Errorf("lines = %d, want 16", r.lines)
	}
	if r.exception != "ValueError" {
		t.Errorf("exception = %q, want ValueError (the last of the chain)", r.exception)
	}
	if !strings.HasPrefix(r.text, "Traceback (most recent call last):\n") || !strings.HasSuffix(r.text, "\"raise UserError('boom')\"") {
		t.Errorf("text = %q", r.text)
	}
	if recs[2].message != "Job `Other` done." || recs[2].lines != 1 {
		t.Errorf("record 3 = %+v", recs[2])
	}
	if st.Lines != 18 || st.Records != 3 || st.Orphans != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestParserExceptionTypes(t *testing.T) {
	tests := []struct{ last, want string }{
		{"psycopg2.errors.SerializationFailure: could not serialize access due to concurrent update", "psycopg2.errors.SerializationFailure"},
		{"FileNotFoundError: [Errno 2] No such file or directory: '/var/lib/odoo/filestore/odoo/7c/7c2f'", "FileNotFoundError"},
		{"KeyboardInterrupt", "KeyboardInterrupt"},
		{"odoo.tools.convert.ParseError: while parsing /mnt/extra-addons/x/views.xml:3", "odoo.tools.convert.ParseError"},
		{"lxml.etree.XMLSyntaxError: Opening and ending tag mismatch: record line 3 and odoo, line 5, column 8", "lxml.etree.XMLSyntaxError"},
		{"<not an exception>", ""},
	}
	for _, tt := range tests {
		in := "2026-12-02 17:31:00,540 1 ERROR odoo odoo.http: Exception during request handling. \n" +
			"Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n    g()\n" + tt.last + "\n"
		recs, _ := parseAll(t, in, 0, 0)
		if len(recs) != 1 || recs[0].exception != tt.want {
			t.Errorf("%q: got %+v, want exception %q", tt.last, recs, tt.want)
		}
	}
}

func TestParserBounds(t *testing.T) {
	t.Run("1 MiB line", func(t *testing.T) {
		huge := "2026-12-02 17:31:00,540 1 ERROR odoo odoo.http: " + strings.Repeat("x", 1<<20) + " \nnext\n" +
			"2026-12-02 17:31:01,000 1 INFO odoo odoo.x: after \n"
		recs, st := parseAll(t, huge, 4096, 8192)
		if len(recs) != 2 {
			t.Fatalf("got %d records, want 2", len(recs))
		}
		if !recs[0].truncated || len(recs[0].message) > 4096 || recs[0].text != "next" {
			t.Errorf("huge record: truncated=%v len(message)=%d text=%q", recs[0].truncated, len(recs[0].message), recs[0].text)
		}
		if recs[1].message != "after" || recs[1].truncated {
			t.Errorf("next record = %+v", recs[1])
		}
		if st.Truncated != 1 {
			t.Errorf("stats = %+v", st)
		}
	})
	t.Run("long traceback keeps its exception", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("2026-12-02 17:31:00,540 1 ERROR odoo odoo.http: Exception during request handling. \nTraceback (most recent call last):\n")
		for range 10000 {
			b.WriteString("  File \"/opt/odoo/odoo/models.py\", line 1, in f\n    g()\n")
		}
		b.WriteString("RecursionError: maximum recursion depth exceeded\n")
		recs, _ := parseAll(t, b.String(), 0, 1024)
		if len(recs) != 1 || !recs[0].truncated || len(recs[0].text) > 1024 || recs[0].exception != "RecursionError" {
			t.Fatalf("got %d records: truncated=%v len(text)=%d exception=%q", len(recs), recs[0].truncated, len(recs[0].text), recs[0].exception)
		}
	})
	t.Run("binary garbage", func(t *testing.T) {
		rnd := rand.New(rand.NewSource(1))
		garbage := make([]byte, 4<<20)
		rnd.Read(garbage)
		in := string(garbage) + "\n2026-12-02 17:31:00,540 1 INFO odoo odoo.x: after garbage \n" + string(garbage[:1<<20])
		recs, st := parseAll(t, in, 4096, 8192)
		if len(recs) != 1 || recs[0].message != "after garbage" {
			t.Fatalf("records = %d, first %+v", len(recs), recs)
		}
		if st.Orphans == 0 {
			t.Errorf("the garbage before the record was not counted: %+v", st)
		}
		if len(recs[0].text) > 8192 || !recs[0].truncated {
			t.Errorf("the garbage after the record is not bounded: %d bytes, truncated %v", len(recs[0].text), recs[0].truncated)
		}
	})
}

// TestParserMemoryFlat writes 64 MiB of log, lines of 1 KiB to 1 MiB and
// tracebacks, and checks that the heap stays bounded by the limits.
func TestParserMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var n int
	p := NewParser(0, func(r *Record) { n++ })
	s := NewLineSplitter(0, p.Line)
	chunk := []byte("2026-12-02 17:31:00,540 1 ERROR odoo odoo.http: " + strings.Repeat("y", 1<<20) + " \n" +
		"Traceback (most recent call last):\n" + strings.Repeat("  File \"x.py\", line 1, in f\n", 5000) + "ValueError: x\n")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 64 {
		s.Write(chunk)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	p.Flush()
	if n != 64 {
		t.Fatalf("records = %d, want 64", n)
	}
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 1<<20 {
		t.Errorf("heap grew by %d bytes over 64 MiB of input", grown)
	}
}

func TestLineSplitter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		max    int
		want   []string // "!" prefix: truncated
	}{
		{"lines across writes", []string{"ab", "c\nd", "e\r\nf"}, 10, []string{"abc", "de", "f"}},
		{"long line cut in one write", []string{"0123456789abc\nx\n"}, 5, []string{"!01234", "x"}},
		{"long line cut across writes", []string{"012", "3456", "789\nx"}, 5, []string{"!01234", "x"}},
		{"exactly max", []string{"01234\n"}, 5, []string{"01234"}},
		{"empty lines", []string{"\n\n"}, 5, []string{"", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			s := NewLineSplitter(tt.max, func(l []byte, tr bool) {
				if tr {
					got = append(got, "!"+string(l))
				} else {
					got = append(got, string(l))
				}
			})
			for _, w := range tt.writes {
				s.Write([]byte(w))
			}
			s.Flush()
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParser(f *testing.F) {
	f.Add([]byte(cronFailure17), 64, 128)
	f.Add([]byte("2026-12-02 17:25:33,123 7 \x1b[1;31m\x1b[1;49mERROR\x1b[0m odoo odoo.http: x \n\x00\xff\n"), 16, 16)
	cat, err := LoadCatalog()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, maxLine, maxRecord int) {
		maxLine = 1 + abs(maxLine)%4096
		maxRecord = 1 + abs(maxRecord)%4096
		var m Match
		p := NewParser(maxRecord, func(r *Record) {
			if len(r.Text) > maxRecord {
				t.Fatalf("text of %d bytes beyond %d", len(r.Text), maxRecord)
			}
			if len(r.Message) > maxLine {
				t.Fatalf("message of %d bytes beyond %d", len(r.Message), maxLine)
			}
			if r.Lines < 1 {
				t.Fatalf("record of %d lines", r.Lines)
			}
			cat.Match(r, &m)
		})
		s := NewLineSplitter(maxLine, p.Line)
		// Write in two parts to cross a write boundary.
		half := len(data) / 2
		s.Write(data[:half])
		s.Write(data[half:])
		s.Flush()
		p.Flush()
		st := p.Stats()
		if want := uint64(bytes.Count(data, []byte("\n"))); st.Lines < want {
			t.Fatalf("lines = %d, want at least %d", st.Lines, want)
		}
		if st.Records+st.Orphans > st.Lines {
			t.Fatalf("stats %+v", st)
		}
	})
}

func abs(i int) int {
	if i < 0 {
		if i == -i {
			return 0
		}
		return -i
	}
	return i
}
