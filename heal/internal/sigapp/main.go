// Command sigapp stands in for Odoo's prefork master in the healer's
// Docker tests: it counts the SIGHUPs it receives (Odoo reloads its
// workers on SIGHUP) and exits on SIGTERM or SIGINT. It runs as /app in a
// FROM scratch image built by internal/dockertest.
//
//	/app -addr 127.0.0.1:8080
//
// GET /hups answers the number of SIGHUPs received; /healthz answers 200.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	var hups atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/hups", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, hups.Load()) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != http.ErrServerClosed {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	for s := range sig {
		if s == syscall.SIGHUP {
			hups.Add(1)
			continue
		}
		break
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}
