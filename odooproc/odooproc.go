// Package odooproc recognises Odoo's processes in a process list and
// classifies them by kind, as Odoo's prefork server
// (odoo/service/server.py, PreforkServer) starts them:
//
//   - master: the Odoo process whose parent is not an Odoo process (a
//     shell wrapper, tini, systemd or containerd-shim is its parent);
//   - gevent: the longpolling/websocket process, a child of the master
//     started with subprocess.Popen([sys.executable, sys.argv[0],
//     "gevent", ...]): "gevent" is the first argument after Odoo's
//     script;
//   - cron: a forked child of the master that runs WorkerCron, which calls
//     os.nice(10) as it starts: its nice value is above the master's;
//   - http: the other forked children of the master (WorkerHTTP).
//
// Forked workers keep the master's command line unless the setproctitle
// module is installed; with it they are titled "odoo: WorkerHTTP <pid> "
// and "odoo: WorkerCron <pid> <database>", and the title decides the kind.
// Without setproctitle (the real Odoo 17 and 18 of the development host,
// Odoo installed from source with pip), the nice value is the only
// difference between an HTTP and a cron worker: a master already at nice
// 19 cannot make its cron workers nicer, and they are then counted as
// http. A worker is counted as http between its fork and its os.nice call
// (a few milliseconds).
//
// This package is the one place that knows how Odoo's processes look; the
// process collector and the healer use it.
package odooproc

import (
	"slices"
	"strings"
	"time"
)

// Kind is the kind of an Odoo process.
type Kind string

// The kinds of Odoo's processes.
const (
	Master Kind = "master"
	HTTP   Kind = "http"
	Cron   Kind = "cron"
	Gevent Kind = "gevent"
)

// Kinds lists every kind, master first.
var Kinds = []Kind{Master, HTTP, Cron, Gevent}

// Process is one process of a process list (a /proc file system or the
// Docker Engine API's container top).
type Process struct {
	PID, PPID int
	// Nice is the nice value (-20..19).
	Nice int
	// Start is when the process started (zero: unknown).
	Start time.Time
	// RSS and VMS are the resident and virtual memory sizes in bytes;
	// Odoo's limit_memory_soft and limit_memory_hard apply to VMS.
	RSS, VMS uint64
	// Cmd is the command line, arguments separated by spaces (a title set
	// by setproctitle replaces it).
	Cmd string
}

// Worker is a child of an Odoo master and its kind.
type Worker struct {
	Process
	Kind Kind
}

// Server is one Odoo server: its master and the Odoo processes it started.
type Server struct {
	Master  Process
	Workers []Worker // sorted by PID
}

// odooName reports whether a (a program, a script or a title's first
// word) names Odoo's server.
func odooName(a string) bool {
	if strings.HasSuffix(a, "/odoo/__main__.py") {
		return true // python3 -m odoo: its gevent process runs the module's file
	}
	switch a[strings.LastIndexByte(a, '/')+1:] {
	case "odoo-bin", "odoo", "odoo:", "openerp-server":
		return true
	}
	return false
}

// script returns the index in f of Odoo's program or script: f[0] when it
// is odoo-bin, odoo, openerp-server or a setproctitle title; for a Python
// interpreter, its first argument that is not an option when that names
// Odoo. It returns -1 for anything else (a shell or tini whose arguments
// name odoo is not Odoo).
func script(f []string) int {
	if len(f) == 0 {
		return -1
	}
	if odooName(f[0]) {
		return 0
	}
	if !strings.HasPrefix(f[0][strings.LastIndexByte(f[0], '/')+1:], "python") {
		return -1
	}
	for i, a := range f[1:] {
		if !strings.HasPrefix(a, "-") {
			if odooName(a) {
				return i + 1
			}
			return -1
		}
	}
	return -1
}

// IsOdoo reports whether a command line runs Odoo's server: its program
// is odoo-bin, odoo or openerp-server, or a Python interpreter whose script
// is one of them (python3 /usr/bin/odoo), or it is a title set by
// setproctitle ("odoo: WorkerHTTP ...").
func IsOdoo(cmd string) bool { return script(strings.Fields(cmd)) >= 0 }

// isGevent reports whether cmd is Odoo's gevent process: "gevent" follows
// Odoo's script (server.py: [sys.executable, sys.argv[0], 'gevent'] +
// the master's other arguments).
func isGevent(cmd string) bool {
	f := strings.Fields(cmd)
	i := script(f)
	return i >= 0 && i+1 < len(f) && f[i+1] == "gevent"
}

// title returns the worker class of a setproctitle title ("odoo:
// WorkerHTTP 12 " gives WorkerHTTP), or "".
func title(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) >= 2 && f[0] == "odoo:" {
		return f[1]
	}
	return ""
}

// KindOf returns the kind of child, an Odoo process started by master.
func KindOf(master, child Process) Kind {
	switch {
	case isGevent(child.Cmd):
		return Gevent
	case title(child.Cmd) == "WorkerCron":
		return Cron
	case title(child.Cmd) == "WorkerHTTP":
		return HTTP
	case child.Nice > master.Nice:
		// WorkerCron.start: os.nice(10).
		return Cron
	}
	return HTTP
}

// Find returns the Odoo servers of ps, sorted by their master's PID. A
// master is an Odoo process whose parent is not one, that is not the
// gevent process and not titled as a worker (an orphaned worker, whose
// master died, stays a worker: it exits at its next check); its workers
// are its Odoo children. Other processes (Odoo's own children such as
// wkhtmltopdf, or anything else) are left out.
func Find(ps []Process) []Server {
	odoo := make(map[int]bool, len(ps))
	for _, p := range ps {
		if IsOdoo(p.Cmd) {
			odoo[p.PID] = true
		}
	}
	var servers []Server
	index := map[int]int{}
	for _, p := range ps {
		if odoo[p.PID] && !odoo[p.PPID] && !isGevent(p.Cmd) && !strings.HasPrefix(title(p.Cmd), "Worker") {
			index[p.PID] = len(servers)
			servers = append(servers, Server{Master: p})
		}
	}
	for _, p := range ps {
		i, ok := index[p.PPID]
		if !ok || !odoo[p.PID] || p.PID == p.PPID {
			continue
		}
		s := &servers[i]
		s.Workers = append(s.Workers, Worker{Process: p, Kind: KindOf(s.Master, p)})
	}
	for i := range servers {
		slices.SortFunc(servers[i].Workers, func(a, b Worker) int { return a.PID - b.PID })
	}
	slices.SortFunc(servers, func(a, b Server) int { return a.Master.PID - b.Master.PID })
	return servers
}

// Stats aggregate the processes of one kind.
type Stats struct {
	// Count is the number of processes.
	Count int
	// RSSSum, RSSMax and VMSMax are in bytes.
	RSSSum, RSSMax, VMSMax uint64
	// Oldest and Youngest are the earliest and latest start times (zero
	// when no process of the kind has a known start).
	Oldest, Youngest time.Time
}

func (s *Stats) add(p Process) {
	s.Count++
	s.RSSSum += p.RSS
	s.RSSMax = max(s.RSSMax, p.RSS)
	s.VMSMax = max(s.VMSMax, p.VMS)
	if p.Start.IsZero() {
		return
	}
	if s.Oldest.IsZero() || p.Start.Before(s.Oldest) {
		s.Oldest = p.Start
	}
	if p.Start.After(s.Youngest) {
		s.Youngest = p.Start
	}
}

// Aggregate sums the processes of servers by kind; every kind is in the
// result, with a zero Count when none runs.
func Aggregate(servers []Server) map[Kind]*Stats {
	out := make(map[Kind]*Stats, len(Kinds))
	for _, k := range Kinds {
		out[k] = &Stats{}
	}
	for _, s := range servers {
		out[Master].add(s.Master)
		for _, w := range s.Workers {
			out[w.Kind].add(w.Process)
		}
	}
	return out
}
