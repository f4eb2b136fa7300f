package dockertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/odoo-exporter/odoo_exporter/odooproc"
)

// TestDaemon checks the harness itself: a FROM scratch container runs and
// is controlled, the memory limit OOM-kills it, the daemon stops and
// comes back.
func TestDaemon(t *testing.T) {
	d := New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli := d.Client()

	app, err := d.RunApp(ctx, AppConfig{Name: "harness", Healthcheck: true, Labels: map[string]string{"test": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := app.Alloc(ctx, 8); err != nil || n != 8 {
		t.Fatalf("Alloc(8) = %d, %v; want 8", n, err)
	}
	if err := app.SetHealthy(ctx, false); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, cli, app.ID, "unhealthy", func(s *container.State) bool {
		return s.Health != nil && s.Health.Status == container.Unhealthy
	})

	oom, err := d.RunApp(ctx, AppConfig{Name: "harness-oom", Memory: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oom.Alloc(ctx, 64); err == nil {
		t.Fatal("allocating 64 MiB under a 32 MiB limit succeeded")
	}
	waitState(t, ctx, cli, oom.ID, "OOMKilled", func(s *container.State) bool { return !s.Running && s.OOMKilled })

	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Ping(ctx); err == nil {
		t.Fatal("daemon answers after Stop")
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerInspect(ctx, app.ID); err != nil {
		t.Fatalf("container lost across a daemon restart: %v", err)
	}
}

func waitState(t *testing.T, ctx context.Context, cli interface {
	ContainerInspect(context.Context, string) (container.InspectResponse, error)
}, id, what string, cond func(*container.State) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := cli.ContainerInspect(ctx, id)
		if err == nil && cond(c.State) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s not %s after 30s (err %v)", id, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOdooStandIn: the Odoo prefork stand-in reloads on SIGHUP like Odoo's
// master (same pid, new workers). Behind a shell wrapper as PID 1, the
// SIGHUP Docker sends (docker kill --signal HUP reaches PID 1 only) is
// dropped: the master keeps its workers. A frozen daemon answers nothing
// until thawed.
func TestOdooStandIn(t *testing.T) {
	d := New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name     string
		cfg      OdooConfig
		reloaded bool
	}{
		{"odoo-pid1", OdooConfig{}, true},
		{"odoo-wrapped", OdooConfig{ShellWrapper: true}, false},
	} {
		app, err := d.RunApp(ctx, AppConfig{Name: tc.name, Odoo: &tc.cfg})
		if err != nil {
			t.Fatal(err)
		}
		master, workers, err := app.OdooInfo(ctx)
		if err != nil || len(workers) != 2 || (master == 1) != !tc.cfg.ShellWrapper {
			t.Fatalf("%s: master %d, workers %v, %v", tc.name, master, workers, err)
		}
		if err := d.Client().ContainerKill(ctx, app.ID, "SIGHUP"); err != nil {
			t.Fatal(err)
		}
		if !tc.reloaded {
			// Nothing to wait for: ask the master a few times; its workers
			// stay.
			for range 5 {
				m, w, err := app.OdooInfo(ctx)
				if err != nil || m != master || w[0] != workers[0] || w[1] != workers[1] {
					t.Fatalf("%s: a SIGHUP to the wrapper reached the master: %d %v %v", tc.name, m, w, err)
				}
			}
			continue
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			m, w, err := app.OdooInfo(ctx)
			if err == nil && m == master && len(w) == 2 && w[0] != workers[0] && w[1] != workers[1] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reloaded: %d %v %v", tc.name, m, w, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	if err := d.Freeze(); err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithTimeout(ctx, time.Second)
	_, err := d.Client().ContainerInspect(fctx, "odoo-pid1")
	fcancel()
	if err := d.Thaw(); err != nil {
		t.Fatal(err)
	}
	if err == nil {
		t.Error("a frozen daemon answered")
	}
	if _, err := d.Client().Ping(ctx); err != nil {
		t.Errorf("after Thaw: %v", err)
	}
}

// TestOdooOnHost: the stand-in on the host, in the test's PID namespace
// or in its own (PID 1, the only Odoo server of its ProcRoot), in prefork
// or threaded mode, writes its pid file and shows its processes in
// ProcRoot as odooproc classifies Odoo's.
func TestOdooOnHost(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  OdooConfig
	}{
		{"host PID namespace", OdooConfig{Workers: 2, Cron: 1}},
		{"own PID namespace", OdooConfig{Workers: 2, Cron: 1, PIDNamespace: true}},
		{"own PID namespace, threaded", OdooConfig{Threaded: true, PIDNamespace: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.PIDFile = filepath.Join(t.TempDir(), "odoo.pid")
			h, err := StartOdooOnHost(t.Context(), t, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			procs, err := h.OdooProcs(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			master := procs["master"][0]
			if b, err := os.ReadFile(tc.cfg.PIDFile); err != nil || string(b) != strconv.Itoa(master) {
				t.Errorf("pid file %q (%v), want %d", b, err, master)
			}
			ps, err := odooproc.ReadProcFS(h.ProcRoot())
			if err != nil {
				t.Fatal(err)
			}
			servers := odooproc.Find(ps)
			if tc.cfg.PIDNamespace && (len(servers) != 1 || master != 1) {
				t.Fatalf("own PID namespace: master %d, servers %+v", master, servers)
			}
			i := slices.IndexFunc(servers, func(s odooproc.Server) bool { return s.Master.PID == master })
			if i < 0 {
				t.Fatalf("master %d not found in %s: %+v", master, h.ProcRoot(), servers)
			}
			got := map[string][]int{"master": {master}}
			for _, w := range servers[i].Workers {
				got[string(w.Kind)] = append(got[string(w.Kind)], w.PID)
			}
			if fmt.Sprint(got) != fmt.Sprint(procs) {
				t.Errorf("classified %v, the stand-in has %v", got, procs)
			}
		})
	}
}
