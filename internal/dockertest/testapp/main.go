// Command testapp is the program of the test containers started by package
// dockertest. It is built as a static binary and copied into a FROM scratch
// image as /app, so it must not need a shell or a libc.
//
//	/app serve -addr 127.0.0.1:8080 [-alloc 10] [-start-unhealthy]
//	/app health -addr 127.0.0.1:8080
//	/app odoo -addr 127.0.0.1:8080 [-workers 2] [-reload-delay 500ms] [-ignore-hup]
//	          [--max-cron-threads 1] [-gevent] [-grow-mb 16] [-c odoo.conf]
//	          [--pidfile file] [-mount-proc]
//	/app print -addr 127.0.0.1:8080 (writes what it is given: see print.go)
//
// serve listens on addr (containers run with --network host) and answers:
//
//	/alloc?mb=N   allocates and touches N more MiB; answers the total held
//	/free         drops every allocation and returns the memory to the OS
//	/health?ok=0  makes /healthz fail (ok=1 makes it pass again)
//	/healthz      200 when healthy, 503 when not (-start-unhealthy: not
//	              healthy until /health?ok=1, as Odoo loading its registry)
//	/ping         200 (the program runs)
//	/exit?code=N  exits with status N after answering
//
// health is the container's HEALTHCHECK command: it exits 0 when /healthz
// answers 200 and 1 otherwise. SIGTERM and SIGINT end serve with status 0
// (as PID 1 of a container, a signal without a handler is ignored).
//
// odoo stands in for Odoo's prefork server (odoo/service/server.py): a
// master that starts -workers worker processes with its own command line
// (argv[0] "odoo-bin", as Odoo's forked workers look without
// setproctitle) and serves /healthz, /ping and /info (its pid and its
// workers' pids, in the container's PID namespace). On SIGHUP it does what
// Odoo's master does ("phoenix"): it stops listening, stops its workers,
// and after -reload-delay re-executes itself in the same process (same
// pid) with new workers. -ignore-hup makes it ignore SIGHUP (a signal that
// heals nothing). SIGTERM stops it and its workers.
//
// --max-cron-threads N adds N cron workers, which lower their priority by 10 as Odoo's
// WorkerCron does; -gevent adds the gevent process, started as
// "odoo-bin gevent <the master's flags>" as Odoo starts it; -c only
// shows a configuration file on the command line; --pidfile makes the
// master write its pid there as Odoo's does; -workers 0 is Odoo's
// threaded mode (a master alone); -mount-proc mounts /proc for the
// master's own PID namespace (see mountProc). /procs lists every
// process as "kind pid" lines (master first); /grow makes the first HTTP
// worker allocate -grow-mb MiB more (resident); /recycle?kind=http stops
// the first worker of the kind and starts a new one, as Odoo's master
// replaces a worker that exited (recycled or killed past a limit).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: app serve|health [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen (serve) or probe (health) address")
	alloc := fs.Int("alloc", 0, "MiB to allocate at start (serve)")
	unhealthy := fs.Bool("start-unhealthy", false, "serve: /healthz fails until /health?ok=1")
	workers := fs.Int("workers", 2, "odoo: worker processes")
	reloadDelay := fs.Duration("reload-delay", 500*time.Millisecond, "odoo: outage of a SIGHUP reload")
	ignoreHup := fs.Bool("ignore-hup", false, "odoo: ignore SIGHUP")
	cron := fs.Int("max-cron-threads", 0, "odoo: cron worker processes (niced by 10, as Odoo's; given as Odoo's --max-cron-threads)")
	gevent := fs.Bool("gevent", false, "odoo: also start the gevent process (odoo-bin gevent ...)")
	growMB := fs.Int("grow-mb", 16, "odoo: MiB a worker allocates on each SIGUSR1 (/grow)")
	_ = fs.String("c", "", "odoo: Odoo's configuration file (only shown on the command line, as Odoo's -c)")
	pidFile := fs.String("pidfile", "", "odoo: the master writes its pid there at each start, as Odoo's --pidfile")
	mountProc := fs.Bool("mount-proc", false, "odoo: the master mounts a proc file system for its PID namespace on /proc (run as PID 1 of new PID and mount namespaces)")
	_ = fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "serve":
		os.Exit(serve(*addr, *alloc, *unhealthy))
	case "odoo", "gevent": // gevent: the odoo mode's gevent process
		os.Exit(odoo(*addr, odooOptions{workers: *workers, cron: *cron, gevent: *gevent, growMB: *growMB,
			reloadDelay: *reloadDelay, ignoreHup: *ignoreHup, pidFile: *pidFile, mountProc: *mountProc}))
	case "health":
		os.Exit(health(*addr))
	case "print":
		os.Exit(printer(*addr))
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

func health(addr string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}

type app struct {
	mu      sync.Mutex
	held    [][]byte
	healthy atomic.Bool
	exit    chan int
}

// allocate holds mb more MiB, every page written so that it is resident.
func (a *app) allocate(mb int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	for range mb {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		a.held = append(a.held, b)
	}
	return len(a.held)
}

func (a *app) free() {
	a.mu.Lock()
	a.held = nil
	a.mu.Unlock()
	debug.FreeOSMemory()
}

func serve(addr string, alloc int, unhealthy bool) int {
	a := &app{exit: make(chan int, 1)}
	a.healthy.Store(!unhealthy)
	a.allocate(alloc)

	mux := http.NewServeMux()
	mux.HandleFunc("/alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, err := strconv.Atoi(r.FormValue("mb"))
		if err != nil || mb < 0 {
			http.Error(w, "mb must be a count of MiB", http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, a.allocate(mb))
	})
	mux.HandleFunc("/free", func(w http.ResponseWriter, r *http.Request) {
		a.free()
		fmt.Fprintln(w, 0)
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		a.healthy.Store(r.FormValue("ok") != "0")
		fmt.Fprintln(w, a.healthy.Load())
	})
	mux.HandleFunc("/ping", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !a.healthy.Load() {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	handleExit(mux, a.exit)
	return listenUntilExit(addr, mux, a.exit)
}

// handleExit answers /exit?code=N by sending N on exit.
func handleExit(mux *http.ServeMux, exit chan<- int) {
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.FormValue("code"))
		fmt.Fprintln(w, code)
		select {
		case exit <- code:
		default:
		}
	})
}

// listenUntilExit serves mux on addr until SIGTERM or SIGINT (status 0)
// or a code on exit, and returns the status.
func listenUntilExit(addr string, mux *http.ServeMux, exit <-chan int) int {
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	code := 0
	select {
	case <-sig:
	case code = <-exit:
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	return code
}

// workerEnv marks a worker process of odoo; kindEnv says its kind.
const (
	workerEnv = "TESTAPP_ODOO_WORKER=1"
	kindEnv   = "TESTAPP_ODOO_KIND="
)

// odooOptions are the odoo mode's flags.
type odooOptions struct {
	workers, cron int
	gevent        bool
	growMB        int
	reloadDelay   time.Duration
	ignoreHup     bool
	pidFile       string
	mountProc     bool
}

// odooProc is a process the odoo master started.
type odooProc struct {
	kind string // http, cron or gevent
	cmd  *exec.Cmd
}

// odooWorker is a worker process: it lives until its master stops it (or
// dies). A cron worker lowers its priority by 10 as Odoo's WorkerCron
// does (os.nice(10)); SIGUSR1 makes a worker allocate -grow-mb MiB more.
func odooWorker(growMB int) int {
	if os.Getenv(strings.TrimSuffix(kindEnv, "=")) == "cron" {
		// The raw getpriority returns 20 - nice.
		if prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0); err == nil {
			_ = syscall.Setpriority(syscall.PRIO_PROCESS, 0, min(20-prio+10, 19))
		}
	}
	a := &app{}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	for s := range sig {
		if s != syscall.SIGUSR1 {
			break
		}
		a.allocate(growMB)
	}
	return 0
}

// spawn starts a process of kind with the master's command line (the
// gevent process with "gevent" instead of the mode, as Odoo's
// [sys.executable, sys.argv[0], 'gevent'] + arguments).
func spawn(kind string) (*exec.Cmd, error) {
	args := os.Args[1:]
	if kind == "gevent" {
		args = append([]string{"gevent"}, os.Args[2:]...)
	}
	c := exec.Command("/proc/self/exe", args...)
	c.Args[0] = "odoo-bin"
	c.Env = append(os.Environ(), workerEnv, kindEnv+kind)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("starting a %s worker: %w", kind, err)
	}
	return c, nil
}

func odoo(addr string, o odooOptions) int {
	if filepath.Base(os.Args[0]) != "odoo-bin" {
		// Look like Odoo: argv[0] odoo-bin, same pid.
		err := syscall.Exec("/proc/self/exe", append([]string{"odoo-bin"}, os.Args[1:]...), os.Environ())
		fmt.Fprintln(os.Stderr, "re-exec:", err)
		return 1
	}
	if slices.Contains(os.Environ(), workerEnv) {
		return odooWorker(o.growMB)
	}
	if o.mountProc {
		if err := mountProc(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if o.pidFile != "" {
		// As Odoo's server (odoo/cli/server.py): the master writes its pid
		// at each start (again after a SIGHUP reload) and removes the file
		// when it stops.
		if err := os.WriteFile(o.pidFile, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	var (
		mu    sync.Mutex
		procs []odooProc
	)
	kinds := slices.Repeat([]string{"http"}, o.workers)
	kinds = append(kinds, slices.Repeat([]string{"cron"}, o.cron)...)
	if o.gevent {
		kinds = append(kinds, "gevent")
	}
	for _, k := range kinds {
		c, err := spawn(k)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		procs = append(procs, odooProc{k, c})
	}
	stopWorkers := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range procs {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			_ = p.cmd.Wait()
		}
	}
	// first returns the index of the first process of kind, or -1.
	first := func(kind string) int {
		return slices.IndexFunc(procs, func(p odooProc) bool { return p.kind == kind })
	}
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/ping", ok)
	mux.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprint(w, os.Getpid())
		for _, p := range procs {
			if p.kind == "http" {
				fmt.Fprint(w, " ", p.cmd.Process.Pid)
			}
		}
		fmt.Fprintln(w)
	})
	mux.HandleFunc("/procs", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(w, "master", os.Getpid())
		for _, p := range procs {
			fmt.Fprintln(w, p.kind, p.cmd.Process.Pid)
		}
	})
	mux.HandleFunc("/grow", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		i := first("http")
		if i < 0 {
			http.Error(w, "no http worker", http.StatusConflict)
			return
		}
		_ = procs[i].cmd.Process.Signal(syscall.SIGUSR1)
		fmt.Fprintln(w, procs[i].cmd.Process.Pid)
	})
	mux.HandleFunc("/recycle", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		i := first(r.FormValue("kind"))
		if i < 0 {
			http.Error(w, "no such worker", http.StatusConflict)
			return
		}
		p := procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		_ = p.cmd.Wait()
		c, err := spawn(p.kind)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		procs[i].cmd = c
		fmt.Fprintln(w, c.Process.Pid)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	if o.ignoreHup {
		signal.Ignore(syscall.SIGHUP)
	} else {
		signal.Notify(sig, syscall.SIGHUP)
	}
	select {
	case s := <-sig:
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = srv.Shutdown(ctx)
		cancel()
		stopWorkers()
		if s != syscall.SIGHUP {
			if o.pidFile != "" {
				_ = os.Remove(o.pidFile)
			}
			return 0
		}
		time.Sleep(o.reloadDelay)
		err := syscall.Exec("/proc/self/exe", os.Args, os.Environ())
		fmt.Fprintln(os.Stderr, "phoenix:", err)
		return 1
	case err := <-errc:
		fmt.Fprintln(os.Stderr, err)
		stopWorkers()
		return 1
	}
}

// mountProc mounts a proc file system on /proc for the PID namespace of
// the process, unless /proc already shows it (after a SIGHUP reload): with
// -mount-proc the master runs as PID 1 of new PID and mount namespaces
// (see dockertest.OdooConfig.PIDNamespace), and its processes are seen
// from outside at /proc/<its pid outside>/root/proc. The mounts are made
// private first, so that nothing propagates to the parent namespace.
func mountProc() error {
	if self, _ := os.Readlink("/proc/self"); self == strconv.Itoa(os.Getpid()) {
		return nil
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making the mounts private: %w", err)
	}
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	return nil
}
