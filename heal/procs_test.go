package heal

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
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
			var m proc
			var ws []proc
			if err == nil {
				m, ws, err = odooMaster(ps)
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
			got := pids(ws)
			slices.Sort(got)
			if m.PID != tc.master || !slices.Equal(got, tc.workers) || m.Start == 0 {
				t.Errorf("master %+v workers %v, want %d %v", m, got, tc.master, tc.workers)
			}
		})
	}
}
