package heal

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odoo-exporter/odoo_exporter/odooproc"
)

// statLine is a /proc/<pid>/stat line of pid with parent ppid and start
// time start, in the format of procListScript's output.
func statLine(pid, ppid int, start uint64, cmd string) string {
	return fmt.Sprintf("%d\t%d (x) S %d %d %d 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 1 0 %d 1 1 1 1 1 1\t%s \n", pid, pid, ppid, pid, pid, start, cmd)
}

// TestOdooMaster: Odoo's master is found among real and typical process
// lists: the host running the real Odoo 17 and 18 of the development
// machine (captured with procListScript; two masters: refused), Odoo 17
// alone, the official image (python3 /usr/bin/odoo as PID 1), a shell
// wrapper whose script names odoo, and workers titled by setproctitle.
func TestOdooMaster(t *testing.T) {
	host, err := os.ReadFile("testdata/procs-host-odoo17-odoo18.txt")
	if err != nil {
		t.Fatal(err)
	}
	var only17 strings.Builder
	for line := range strings.Lines(string(host)) {
		if !strings.Contains(line, "odoo-real-18") {
			only17.WriteString(line)
		}
	}
	for _, tc := range []struct {
		name    string
		ps      string
		master  int
		workers []int
		err     string
	}{
		{name: "host: Odoo 17 and 18", ps: string(host), err: "2 Odoo processes look like a master"},
		{name: "real Odoo 17", ps: only17.String(), master: 5180, workers: []int{5435, 5437, 5438, 32163}},
		{name: "official image, master is PID 1", ps: statLine(1, 0, 100, "/usr/bin/python3 /usr/bin/odoo --db_host db") +
			statLine(7, 1, 200, "/usr/bin/python3 /usr/bin/odoo --db_host db") +
			statLine(8, 1, 200, "/usr/bin/python3 /usr/bin/odoo gevent --db_host db") +
			statLine(30, 0, 900, "/bin/sh -c for d in /proc/[0-9]*; do ...; done"),
			master: 1, workers: []int{7, 8}},
		{name: "shell wrapper naming odoo", ps: statLine(1, 0, 100, "/bin/sh -c odoo -c /etc/odoo/odoo.conf") +
			statLine(6, 1, 150, "/usr/bin/python3 /usr/bin/odoo -c /etc/odoo/odoo.conf") +
			statLine(9, 6, 200, "odoo: WorkerHTTP 9 ") +
			statLine(10, 6, 200, "odoo: WorkerCron 10 mydb"),
			master: 6, workers: []int{9, 10}},
		{name: "odoo-bin run directly", ps: statLine(1, 0, 100, "tini -- odoo-bin -c /etc/odoo.conf") +
			statLine(5, 1, 120, "odoo-bin -c /etc/odoo.conf") + statLine(12, 5, 300, "odoo-bin -c /etc/odoo.conf"),
			master: 5, workers: []int{12}},
		{name: "no Odoo", ps: statLine(1, 0, 100, "/app serve -addr x"), err: "no Odoo master process"},
		{name: "not a process list", ps: "sh: tr: not found\n", err: "no process found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := parseProcs(tc.ps)
			var s odooproc.Server
			if err == nil {
				s, err = pickMaster(ps, 0)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := pids(s.Workers)
			slices.Sort(got)
			if m := s.Master; m.PID != tc.master || !slices.Equal(got, tc.workers) || m.Start.IsZero() {
				t.Errorf("master %+v workers %v, want %d %v", m, got, tc.master, tc.workers)
			}
		})
	}
}

// TestCheckRecycled: a recycle is verified only when the same master
// (pid and start time) has new workers of every kind it had, and once
// those workers stayed the same for settle.
func TestCheckRecycled(t *testing.T) {
	master := statLine(10, 1, 100, "/usr/bin/python3 /usr/bin/odoo -c /etc/odoo/odoo.conf")
	http := func(pid int, start uint64) string {
		return statLine(pid, 10, start, "/usr/bin/python3 /usr/bin/odoo -c /etc/odoo/odoo.conf")
	}
	gevent := func(pid int, start uint64) string {
		return statLine(pid, 10, start, "/usr/bin/python3 /usr/bin/odoo gevent -c /etc/odoo/odoo.conf")
	}
	parse := func(t *testing.T, s string) []odooproc.Process {
		t.Helper()
		ps, err := parseProcs("btime 1700000000\n" + s)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	before, err := pickMaster(parse(t, master+http(11, 200)+http(12, 200)+gevent(13, 200)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1700000001, 0); !before.Master.Start.Equal(want) {
		t.Errorf("master start %v, want %v (btime + 100 ticks)", before.Master.Start, want)
	}
	for _, tc := range []struct {
		name, ps, err string
	}{
		{"all new", master + http(21, 300) + http(22, 300) + gevent(23, 300), ""},
		{"a pid reused by a new worker", master + http(11, 300) + http(22, 300) + gevent(23, 300), ""},
		{"a worker not replaced", master + http(11, 200) + http(22, 300) + gevent(23, 300), "worker pid 11 was not replaced"},
		{"gevent not back", master + http(21, 300) + http(22, 300), "has 0 gevent process(es), it had 1"},
		{"an http worker not back", master + http(21, 300) + gevent(23, 300), "has 1 http process(es), it had 2"},
		{"no worker yet", master, "has no workers yet"},
		{"master replaced", statLine(30, 1, 400, "/usr/bin/python3 /usr/bin/odoo") + statLine(31, 30, 500, "/usr/bin/python3 /usr/bin/odoo"), "now pid 30, not pid 10"},
		{"master pid reused", statLine(10, 1, 400, "/usr/bin/python3 /usr/bin/odoo") + http(21, 500), "is another Odoo master now"},
		{"master gone", statLine(1, 0, 1, "/sbin/init"), "does not run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now, err := checkRecycled(before, parse(t, tc.ps))
			if tc.err == "" {
				if err != nil || now.Master.PID != 10 {
					t.Fatalf("%v %+v", err, now)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}

	// Settle: the same workers must be seen for the whole period; a
	// worker spawned again (crashing as it starts) begins it anew.
	ok, _ := checkRecycled(before, parse(t, master+http(21, 300)+http(22, 300)+gevent(23, 300)))
	again, _ := checkRecycled(before, parse(t, master+http(21, 300)+http(22, 300)+gevent(24, 310)))
	w := &settleWatch{settle: time.Hour}
	if err := w.check(ok); err == nil || !strings.Contains(err.Error(), "settling") {
		t.Fatalf("settled at once: %v", err)
	}
	first := w.key
	if err := w.check(again); err == nil || w.key == first {
		t.Fatalf("a new gevent process did not restart the period: %v (%q)", err, w.key)
	}
	if w2 := (&settleWatch{}); w2.check(ok) != nil {
		t.Error("settle 0 does not pass")
	}
}
