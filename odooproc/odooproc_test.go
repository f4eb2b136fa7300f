package odooproc

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// kinds renders servers as "master:pid http:pid,pid cron:pid gevent:pid"
// per server, separated by "; ".
func kinds(servers []Server) string {
	var out []string
	for _, s := range servers {
		by := map[Kind][]string{}
		for _, w := range s.Workers {
			by[w.Kind] = append(by[w.Kind], fmt.Sprint(w.PID))
		}
		parts := []string{fmt.Sprintf("master:%d", s.Master.PID)}
		for _, k := range Kinds[1:] {
			if len(by[k]) > 0 {
				parts = append(parts, string(k)+":"+strings.Join(by[k], ","))
			}
		}
		out = append(out, strings.Join(parts, " "))
	}
	return strings.Join(out, "; ")
}

// TestReadProcFSRealOdoo classifies the processes of the development host
// running the real Odoo 17 (master 5180) and Odoo 18 (master 5138), both
// with workers = 2 and max_cron_threads = 1, installed from source without
// setproctitle: testdata/proc holds copies of their /proc/<pid>/stat and
// cmdline (and of PID 1 and a shell, which are not Odoo). The HTTP and cron
// workers have the same command line; the cron workers (4619, 5319) have
// nice 10.
func TestReadProcFSRealOdoo(t *testing.T) {
	ps, err := ReadProcFS("testdata/proc")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 10 {
		t.Fatalf("%d Odoo processes, want 10: %+v", len(ps), ps)
	}
	servers := Find(ps)
	want := "master:5138 http:5311,5313 cron:5319 gevent:5314; master:5180 http:5435,5437 cron:4619 gevent:5438"
	if got := kinds(servers); got != want {
		t.Errorf("classification:\n got %s\nwant %s", got, want)
	}
	m := servers[1].Master
	if m.RSS != 33828*4096 || m.VMS != 193478656 || m.Nice != 0 || m.PPID != 1 {
		t.Errorf("Odoo 17 master: %+v", m)
	}
	// btime of testdata/proc/stat plus the start time in ticks / 100.
	st, _ := os.ReadFile("testdata/proc/5180/stat")
	if !strings.Contains(string(st), " 45189 ") {
		t.Fatalf("fixture changed: %s", st)
	}
	var btime int64
	b, _ := os.ReadFile("testdata/proc/stat")
	for l := range strings.Lines(string(b)) {
		if _, err := fmt.Sscanf(l, "btime %d", &btime); err == nil {
			break
		}
	}
	if want := time.Unix(btime, 0).Add(45189 * 10 * time.Millisecond); !m.Start.Equal(want) {
		t.Errorf("master start %v, want %v", m.Start, want)
	}
	agg := Aggregate(servers)
	for k, n := range map[Kind]int{Master: 2, HTTP: 4, Cron: 2, Gevent: 2} {
		if agg[k].Count != n {
			t.Errorf("%s: %d processes, want %d", k, agg[k].Count, n)
		}
	}
	if got, want := agg[Cron].VMSMax, uint64(268996608); got != want {
		t.Errorf("cron VMS max %d, want %d", got, want)
	}
}

func TestReadProcFSErrors(t *testing.T) {
	if _, err := ReadProcFS(t.TempDir()); err == nil || !strings.Contains(err.Error(), "boot time") {
		t.Errorf("an empty directory as /proc: %v", err)
	}
	if _, err := ReadProcFS("/nonexistent/proc"); err == nil {
		t.Error("a missing /proc read without error")
	}
}

func p(pid, ppid, nice int, cmd string) Process {
	return Process{PID: pid, PPID: ppid, Nice: nice, Cmd: cmd}
}

// TestFind: typical layouts of Odoo's processes.
func TestFind(t *testing.T) {
	for _, tc := range []struct {
		name string
		ps   []Process
		want string
	}{
		{name: "official image, master is PID 1, no setproctitle", ps: []Process{
			p(1, 0, 0, "/usr/bin/python3 /usr/bin/odoo --db_host db --workers=2"),
			p(7, 1, 0, "/usr/bin/python3 /usr/bin/odoo --db_host db --workers=2"),
			p(8, 1, 0, "/usr/bin/python3 /usr/bin/odoo gevent --db_host db --workers=2"),
			p(9, 1, 10, "/usr/bin/python3 /usr/bin/odoo --db_host db --workers=2"),
			p(11, 7, 0, "/usr/bin/wkhtmltopdf --quiet - -"),
		}, want: "master:1 http:7 cron:9 gevent:8"},
		{name: "setproctitle titles, shell wrapper naming odoo", ps: []Process{
			p(1, 0, 0, "/bin/sh -c odoo -c /etc/odoo/odoo.conf"),
			p(6, 1, 0, "/usr/bin/python3 /usr/bin/odoo -c /etc/odoo/odoo.conf"),
			p(9, 6, 0, "odoo: WorkerHTTP 9 "),
			p(10, 6, 10, "odoo: WorkerCron 10 mydb"),
			p(12, 6, 0, "/usr/bin/python3 /usr/bin/odoo gevent -c /etc/odoo/odoo.conf"),
		}, want: "master:6 http:9 cron:10 gevent:12"},
		{name: "master at nice 19: cron not told apart without a title", ps: []Process{
			p(5, 1, 19, "odoo-bin -c /etc/odoo.conf"),
			p(6, 5, 19, "odoo-bin -c /etc/odoo.conf"),
			p(7, 5, 19, "odoo: WorkerCron 7 "),
		}, want: "master:5 http:6 cron:7"},
		{name: "master niced by systemd (Nice=5): cron at 15", ps: []Process{
			p(5, 1, 5, "/usr/bin/python3 -u /usr/bin/odoo --config /etc/odoo/odoo.conf"),
			p(6, 5, 5, "/usr/bin/python3 -u /usr/bin/odoo --config /etc/odoo/odoo.conf"),
			p(7, 5, 15, "/usr/bin/python3 -u /usr/bin/odoo --config /etc/odoo/odoo.conf"),
		}, want: "master:5 http:6 cron:7"},
		{name: "threaded mode: a master alone", ps: []Process{
			p(1, 0, 0, "/usr/bin/python3 /usr/bin/odoo"),
		}, want: "master:1"},
		{name: "orphaned worker and gevent after the master died are no master", ps: []Process{
			p(7, 1, 0, "odoo: WorkerHTTP 7 "),
			p(8, 1, 0, "/usr/bin/python3 /usr/bin/odoo gevent"),
		}, want: ""},
		{name: "not Odoo: a shell, tini, a Python script named otherwise", ps: []Process{
			p(1, 0, 0, "tini -- odoo-bin -c x"),
			p(2, 1, 0, "/usr/bin/python3 /srv/odoo_exporter.py"),
			p(3, 1, 0, "bash -c odoo"),
		}, want: ""},
		{name: "python3 -m odoo: the gevent process runs odoo/__main__.py", ps: []Process{
			p(4, 1, 0, "/usr/bin/python3 -m odoo -c /etc/odoo.conf"),
			p(5, 4, 0, "/usr/bin/python3 /opt/odoo/odoo/__main__.py gevent -c /etc/odoo.conf"),
		}, want: "master:4 gevent:5"},
		{name: "gevent only right after the script", ps: []Process{
			p(5, 1, 0, "odoo-bin -c /etc/odoo.conf --db-filter gevent"),
			p(6, 5, 0, "odoo-bin -c /etc/odoo.conf --db-filter gevent"),
		}, want: "master:5 http:6"},
		{name: "two servers (Odoo 17 and 18 on one host)", ps: []Process{
			p(20, 1, 0, "python3 /opt/18/odoo-bin"), p(21, 20, 0, "python3 /opt/18/odoo-bin"),
			p(10, 1, 0, "python3 /opt/17/odoo-bin"), p(12, 10, 10, "python3 /opt/17/odoo-bin"),
		}, want: "master:10 cron:12; master:20 http:21"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := kinds(Find(tc.ps)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAggregate(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	ps := []Process{
		{PID: 1, Cmd: "odoo-bin", RSS: 100, VMS: 1000, Start: t0},
		{PID: 2, PPID: 1, Cmd: "odoo-bin", RSS: 300, VMS: 3000, Start: t0.Add(time.Minute)},
		{PID: 3, PPID: 1, Cmd: "odoo-bin", RSS: 500, VMS: 2000, Start: t0.Add(time.Hour)},
		{PID: 4, PPID: 1, Cmd: "odoo-bin", RSS: 200, VMS: 9000}, // start unknown
	}
	agg := Aggregate(Find(ps))
	h := agg[HTTP]
	if h.Count != 3 || h.RSSSum != 1000 || h.RSSMax != 500 || h.VMSMax != 9000 ||
		!h.Oldest.Equal(t0.Add(time.Minute)) || !h.Youngest.Equal(t0.Add(time.Hour)) {
		t.Errorf("http: %+v", h)
	}
	if agg[Master].Count != 1 || agg[Cron].Count != 0 || agg[Gevent].Count != 0 || !agg[Cron].Oldest.IsZero() {
		t.Errorf("master %+v cron %+v gevent %+v", agg[Master], agg[Cron], agg[Gevent])
	}
	if got := Aggregate(nil); len(got) != len(Kinds) || got[Master].Count != 0 {
		t.Errorf("no server: %+v", got)
	}
}

// TestParseTop reads the answer of Docker's container top with TopArgs
// (the format of Docker 20.10's parsePSOutput: the last column holds the
// rest of the line).
func TestParseTop(t *testing.T) {
	now := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	titles := []string{"PID", "PPID", "NI", "RSS", "VSZ", "ELAPSED", "COMMAND"}
	rows := [][]string{
		{"4100", "4080", "0", "135428", "188944", "2688", "/usr/bin/python3 /usr/bin/odoo -c /etc/odoo/odoo.conf"},
		{"4200", "4100", "0", "150500", "268836", "60", "/usr/bin/python3 /usr/bin/odoo -c /etc/odoo/odoo.conf"},
		{"4201", "4100", "10", "113104", "262692", "30", "/usr/bin/python3 /usr/bin/odoo -c /etc/odoo/odoo.conf"},
		{"4202", "4100", "0", "142456", "269684", "2675", "/usr/bin/python3 /usr/bin/odoo gevent -c /etc/odoo/odoo.conf"},
		{"4300", "4200", "-", "9000", "90000", "1", "/usr/local/bin/wkhtmltopdf - -"},
	}
	ps, err := ParseTop(titles, rows, now)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kinds(Find(ps)), "master:4100 http:4200 cron:4201 gevent:4202"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if ps[1].RSS != 150500<<10 || ps[1].VMS != 268836<<10 || !ps[1].Start.Equal(now.Add(-time.Minute)) {
		t.Errorf("worker: %+v", ps[1])
	}
	for _, tc := range []struct {
		name   string
		titles []string
		rows   [][]string
		err    string
	}{
		{"default ps columns", []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}, nil, "no NI column"},
		{"short row", titles, [][]string{{"1", "0", "0"}}, "a row of 3 fields"},
		{"not a number", titles, [][]string{{"1", "0", "0", "x", "1", "1", "odoo-bin"}}, `column RSS: "x"`},
	} {
		if _, err := ParseTop(tc.titles, tc.rows, now); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestConfig(t *testing.T) {
	read := func(name string) Config {
		t.Helper()
		c := DefaultConfig()
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := c.ReadConfigFile(f); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The real Odoo 17 and 18 of the development host.
	c17 := read("testdata/odoo17.conf")
	if c17.Workers != 2 || c17.MaxCronThreads != 1 || c17.LimitMemorySoft != 2048<<20 || c17.TimeReal(Cron) != 120 {
		t.Errorf("odoo17.conf: %+v", c17)
	}
	c18 := read("testdata/odoo18.conf")
	if c18.TimeReal(Cron) != 900 || c18.TimeReal(HTTP) != 120 {
		t.Errorf("odoo18.conf: %+v", c18)
	}
	for k, n := range map[Kind]int{Master: 1, HTTP: 2, Cron: 1, Gevent: 1} {
		if c18.Expected(k) != n {
			t.Errorf("expected %s: %d, want %d", k, c18.Expected(k), n)
		}
	}
	if DefaultConfig().Expected(Gevent) != 0 || DefaultConfig().Expected(Cron) != 0 {
		t.Error("threaded mode (workers = 0) expects workers")
	}

	c := DefaultConfig()
	err := c.ReadConfigFile(strings.NewReader("[options]\nlimit_memory_soft = False\nlimit_memory_soft_gevent: 1073741824\n; workers = 9\n[other]\nworkers = 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MemorySoft(HTTP) != 0 || c.MemorySoft(Gevent) != 1<<30 || c.MemoryHard(Gevent) != 2560<<20 || c.Workers != 0 {
		t.Errorf("False, gevent limit, other section: %+v", c)
	}
	if err := c.ReadConfigFile(strings.NewReader("[options]\nworkers = four\n")); err == nil || !strings.Contains(err.Error(), `line 2: workers = "four"`) {
		t.Errorf("a bad value: %v", err)
	}

	cmd := "/usr/bin/python3 /usr/bin/odoo -c /etc/odoo/odoo.conf --workers=4 --max-cron-threads 3 --limit-memory-soft 1000 --db-filter=^x$ --limit-time-real-cron=0"
	if got := ConfigFileArg(cmd); got != "/etc/odoo/odoo.conf" {
		t.Errorf("config file %q", got)
	}
	for cmd, want := range map[string]string{"odoo --config=/a.conf": "/a.conf", "odoo -c/b.conf": "/b.conf", "odoo --config /c": "/c", "odoo --db_host x": ""} {
		if got := ConfigFileArg(cmd); got != want {
			t.Errorf("ConfigFileArg(%q) = %q, want %q", cmd, got, want)
		}
	}
	c = DefaultConfig()
	if err := c.ApplyArgs(cmd); err != nil {
		t.Fatal(err)
	}
	if c.Workers != 4 || c.MaxCronThreads != 3 || c.LimitMemorySoft != 1000 || c.TimeReal(Cron) != 0 || c.LimitMemoryHard != 2560<<20 {
		t.Errorf("args: %+v", c)
	}
	c = DefaultConfig()
	if err := c.ApplyArgs("odoo --workers 3 --no-http"); err != nil || c.Expected(HTTP) != 0 || c.Expected(Gevent) != 0 || c.Expected(Cron) != 2 {
		t.Errorf("a cron-only server (--no-http): %+v %v", c, err)
	}
	c = DefaultConfig()
	if err := c.ReadConfigFile(strings.NewReader("[options]\nworkers = 3\nhttp_enable = False\n")); err != nil || c.Expected(Gevent) != 0 {
		t.Errorf("http_enable = False: %+v %v", c, err)
	}
	if err := c.ApplyArgs("odoo --workers=x"); err == nil {
		t.Error("a bad --workers accepted")
	}
	if !slices.Equal(TopArgs, []string{"-o", "pid,ppid,ni,rss,vsz,etimes,args"}) {
		t.Errorf("TopArgs %q", TopArgs)
	}
}
