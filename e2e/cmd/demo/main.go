// Command demo runs the end-to-end stack of package e2e on this machine
// and leaves it running until SIGTERM/SIGINT (make demo, make demo-stop),
// with a small control endpoint to inject incidents (make incident
// NAME=...). It must run from the module's directory (it builds the
// binaries and images) as root (dockerd).
//
//	demo -dir /tmp/odoo_exporter_demo [-for-max 30s]   # serve
//	demo -dir /tmp/odoo_exporter_demo -incident cron-jam # inject
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/odoo-exporter/odoo_exporter/e2e"
)

func main() {
	var (
		dir      = flag.String("dir", "/tmp/odoo_exporter_demo", "directory of the demo's files (URLs, logs, configurations)")
		forMax   = flag.String("for-max", "30s", `cap of every alert's "for" (rules.Shorten); "shipped" keeps the rule pack's durations`)
		version  = flag.String("version", "18.0", "Odoo series the stand-in and the database imitate: 16.0, 17.0 or 18.0")
		longpoll = flag.String("longpoll-interval", "1s", `interval of the exporter's bus prober; "shipped" keeps the exporter's default (15s), against which the alerts are judged`)
		incident = flag.String("incident", "", "inject this incident into the running demo and exit: "+strings.Join(e2e.Incidents, ", "))
	)
	flag.Parse()
	if *incident != "" {
		if err := inject(*dir, *incident); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			os.Exit(1)
		}
		return
	}
	if err := serve(*dir, *forMax, *version, *longpoll); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func controlFile(dir string) string { return filepath.Join(dir, "control.addr") }

func inject(dir, name string) error {
	addr, err := os.ReadFile(controlFile(dir))
	if err != nil {
		return fmt.Errorf("no running demo in %s (make demo first): %w", dir, err)
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Post("http://"+strings.TrimSpace(string(addr))+"/incident/"+name, "text/plain", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	fmt.Print(string(b))
	return nil
}

// hints says what each incident does and what should follow.
var hints = map[string]string{
	"lock-contention": "a transaction holds a row lock, another waits: OdooDbLockContention after 30 s of waiting, then end_blockers",
	"cron-jam":        "the cron worker is stuck in a job, another job waits: OdooCronStuck after ~1 min, then unlock_cron",
	"longpoll-stall":  "the gevent port answers after 3 s: OdooLongpollLatencyHigh, then restart_container of odoo-sim",
	"assets-broken":   "a bundle's file is deleted (500): OdooAssetsBroken, then clear_assets",
	"module-stuck":    "mail stuck in 'to upgrade' for an hour: OdooModulesStuckInTransition, then reset_module_states",
	"oom":             "the worker container allocates past its limit: OdooContainerOOMKilled (no auto-heal)",
	"proxy-down":      "nginx points at a dead upstream: OdooProxyDown (fix: NAME=fix)",
	"odoo-down":       "the stand-in's container is stopped: OdooDown (fix: NAME=fix)",
	"fix":             "ends every incident",
}

func serve(dir, forMax, version, longpoll string) error {
	opts := e2e.Options{
		Version: version,
		Dir:     filepath.Join(dir, "stack"),
		Logf:    func(f string, a ...any) { fmt.Printf("demo: "+f+"\n", a...) },
		Ports:   e2e.Ports{Exporter: 9769, Healer: 9770, Prometheus: 9090, Alertmanager: 9093, Web: 8069, Gevent: 8072},
		// The demo's bus prober runs at a human pace.
		LongpollInterval: time.Second,
	}
	if longpoll == "shipped" {
		opts.LongpollInterval = e2e.ShippedInterval
	} else {
		d, err := time.ParseDuration(longpoll)
		if err != nil || d <= 0 {
			return fmt.Errorf("-longpoll-interval: %q is neither a positive duration nor \"shipped\"", longpoll)
		}
		opts.LongpollInterval = d
	}
	if forMax == "shipped" {
		opts.ForMax = -1
	} else {
		d, err := time.ParseDuration(forMax)
		if err != nil {
			return fmt.Errorf("-for-max: %w", err)
		}
		opts.ForMax = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	s, err := e2e.Start(startCtx, opts)
	cancel()
	if err != nil {
		return err
	}
	defer s.Close()

	l, err := net.Listen("tcp", "127.0.0.1:9779")
	if err != nil {
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /incident/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if err := s.Inject(r.Context(), name); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "injected %s: %s\n", name, hints[name])
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	var b strings.Builder
	fmt.Fprintf(&b, "odoo_exporter demo is running (rules' \"for\" capped at %s)\n\n", forMax)
	fmt.Fprintf(&b, "  exporter      %s/metrics\n", s.Exporter)
	fmt.Fprintf(&b, "  Prometheus    %s/alerts   (rules: alerts_odoo.yml)\n", s.Prom.URL())
	fmt.Fprintf(&b, "  Alertmanager  %s\n", s.AM.URL())
	fmt.Fprintf(&b, "  healer        %s/webhook  (bearer token in %s; audit log %s)\n", s.Healer, s.TokenFile, s.AuditFile)
	fmt.Fprintf(&b, "  Odoo direct   %s/web/login   (stand-in, container %s)\n", s.WebURL, e2e.SimContainer)
	fmt.Fprintf(&b, "  Odoo public   %s/web/login   (nginx)\n", s.Proxy.URL())
	fmt.Fprintf(&b, "  gevent        %s/websocket\n", s.Gevent)
	fmt.Fprintf(&b, "  PostgreSQL    %s\n", s.PG.DSN(e2e.Database, e2e.AppRole))
	fmt.Fprintf(&b, "  docker        DOCKER_HOST=%s docker ps\n\n", s.Docker.Host())
	fmt.Fprintf(&b, "Inject an incident (then watch Prometheus' alerts and the audit log):\n")
	for _, n := range e2e.Incidents {
		fmt.Fprintf(&b, "  make incident NAME=%-16s # %s\n", n, hints[n])
	}
	fmt.Fprintf(&b, "\nStop everything: make demo-stop\n")
	if err := os.WriteFile(filepath.Join(dir, "urls.txt"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(controlFile(dir), []byte(l.Addr().String()), 0o644); err != nil {
		return err
	}
	fmt.Print(b.String())
	<-ctx.Done()
	fmt.Println("demo: stopping")
	os.Remove(controlFile(dir))
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil
	}
	return ctx.Err()
}
