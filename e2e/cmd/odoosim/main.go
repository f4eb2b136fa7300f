// Command odoosim runs the Odoo HTTP-surface stand-in (package
// e2e/odoosim) as a process, for end-to-end tests that run it in a
// container (FROM scratch, --network host). Faults are set through
// POST /__odoosim/fault on the web port; see docs/probes.md. Its stderr is
// Odoo's log, in Odoo's format (start, cron runs, a failing run with its
// traceback, boot errors).
//
//	odoosim -dsn postgres://odoo@127.0.0.1:5432/odoo?sslmode=disable \
//	    -web-addr :8069 -gevent-addr :8072 -version 17.0 -filestore /tmp/filestore
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/odoo-exporter/odoo_exporter/e2e/odoosim"
)

func main() {
	var (
		webAddr   = flag.String("web-addr", ":8069", "listen address of the web (HTTP workers) port")
		geventAdr = flag.String("gevent-addr", ":8072", "listen address of the gevent (websocket) port")
		dsn       = flag.String("dsn", os.Getenv("ODOOSIM_DSN"), "DSN of the Odoo database (env ODOOSIM_DSN)")
		notifyDSN = flag.String("notify-dsn", os.Getenv("ODOOSIM_NOTIFY_DSN"), "DSN of the database the dispatcher LISTENs on (default: -dsn with database postgres; env ODOOSIM_NOTIFY_DSN)")
		version   = flag.String("version", "17.0", "Odoo series to imitate: 16.0, 17.0 or 18.0")
		filestore = flag.String("filestore", "/tmp/odoosim-filestore", "filestore root directory")
		debug     = flag.Bool("debug", false, "log debug messages")
		cronEvery = flag.Duration("cron-interval", time.Minute, "log a successful cron job run this often (0: never)")
	)
	flag.Parse()
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	// stderr is Odoo's log, in Odoo's format; the stand-in's own messages
	// are records of the logger odoosim.
	odooLog := odoosim.NewOdooLog(os.Stderr, os.Getpid())
	logger := slog.New(odooLog.SlogHandler("odoosim", level))
	if *dsn == "" {
		fmt.Fprintln(os.Stderr, "odoosim: -dsn (or ODOOSIM_DSN) is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var srv *odoosim.Server
	var err error
	// PostgreSQL may still be starting next to us: retry for a while.
	for i := 0; ; i++ {
		startCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		srv, err = odoosim.Start(startCtx, odoosim.Config{
			DSN: *dsn, NotifyDSN: *notifyDSN, Version: *version,
			WebAddr: *webAddr, GeventAddr: *geventAdr, FilestoreDir: *filestore, Logger: logger,
			Log: odooLog, CronInterval: *cronEvery,
		})
		cancel()
		if errors.Is(err, odoosim.ErrBootFailed) {
			os.Exit(1) // as Odoo does after "Failed to initialize database"
		}
		if err == nil || i == 30 || ctx.Err() != nil {
			break
		}
		logger.Warn("cannot start yet, retrying", "err", err)
		time.Sleep(time.Second)
	}
	if err != nil {
		logger.Error("cannot start", "err", err)
		os.Exit(1)
	}
	logger.Info("odoosim listening", "web", srv.WebURL(), "gevent", srv.GeventURL(),
		"database", srv.Database(), "version", srv.Version())
	code := 0
	select {
	case <-ctx.Done():
	case <-srv.Exited():
		code = 1
	}
	srv.Close()
	os.Exit(code)
}
