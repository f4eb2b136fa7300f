// Command testapp is the program of the test containers started by package
// dockertest. It is built as a static binary and copied into a FROM scratch
// image as /app, so it must not need a shell or a libc.
//
//	/app serve -addr 127.0.0.1:8080 [-alloc 10]
//	/app health -addr 127.0.0.1:8080
//	/app print -addr 127.0.0.1:8080 (writes what it is given: see print.go)
//
// serve listens on addr (containers run with --network host) and answers:
//
//	/alloc?mb=N   allocates and touches N more MiB; answers the total held
//	/free         drops every allocation and returns the memory to the OS
//	/health?ok=0  makes /healthz fail (ok=1 makes it pass again)
//	/healthz      200 when healthy, 503 when not
//	/exit?code=N  exits with status N after answering
//
// health is the container's HEALTHCHECK command: it exits 0 when /healthz
// answers 200 and 1 otherwise. SIGTERM and SIGINT end serve with status 0
// (as PID 1 of a container, a signal without a handler is ignored).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
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
	_ = fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "serve":
		os.Exit(serve(*addr, *alloc))
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

func serve(addr string, alloc int) int {
	a := &app{exit: make(chan int, 1)}
	a.healthy.Store(true)
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
