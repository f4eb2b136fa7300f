package heal

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/odoo-exporter/odoo_exporter/internal/dockertest"
)

// startOdooOnHost runs the prefork stand-in on the host (a child of the
// test) and returns it with its master's and workers' pids, as seen in
// its ProcRoot.
func startOdooOnHost(t *testing.T, cfg dockertest.OdooConfig) (*dockertest.HostApp, int, []int) {
	t.Helper()
	h, err := dockertest.StartOdooOnHost(t.Context(), t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	master, workers, err := h.OdooInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return h, master, workers
}

// hostRecycle is recycle_workers in host mode on h.
func hostRecycle(h *dockertest.HostApp, pidFile string) *RecycleWorkers {
	return &RecycleWorkers{RecycleWorkersParams{Mode: "host", Signal: "SIGHUP", Settle: model.Duration(300 * time.Millisecond),
		ProcRoot: h.ProcRoot(), PIDFile: pidFile, HealthParams: HealthParams{HealthURL: "http://" + h.Addr + "/healthz"}}}
}

// TestRecycleWorkersOnHost: host mode finds Odoo's master in a proc file
// system (its own PID namespace, where it is the only master and PID 1,
// or the host's /proc through Odoo's pid file), a dry run signals nothing,
// and the recycle succeeds only once every worker was replaced under the
// same master and Odoo answers; a master that ignores SIGHUP never
// verifies.
func TestRecycleWorkersOnHost(t *testing.T) {
	for _, tc := range []struct {
		name     string
		odoo     dockertest.OdooConfig
		pidFile  bool // the rule names the stand-in's pid file
		replaced bool
	}{
		{"own PID namespace, the only master", dockertest.OdooConfig{PIDNamespace: true}, false, true},
		{"host /proc, pid_file", dockertest.OdooConfig{Cron: 1, Gevent: true}, true, true},
		{"master ignores SIGHUP", dockertest.OdooConfig{PIDNamespace: true, IgnoreHUP: true}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			var pidFile string
			if tc.pidFile {
				tc.odoo.PIDFile = filepath.Join(t.TempDir(), "odoo.pid")
				pidFile = tc.odoo.PIDFile
			}
			h, master, workers := startOdooOnHost(t, tc.odoo)
			if tc.odoo.PIDNamespace && master != 1 {
				t.Fatalf("master pid %d in its own PID namespace", master)
			}
			a := hostRecycle(h, pidFile)
			env := &Env{Logger: testLogger()} // no Docker, no PostgreSQL
			procs := func() string {
				ps, err := h.OdooProcs(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return fmt.Sprint(ps)
			}
			before := procs()

			rep, verify, err := runAction(t, a, env, "odoo", true)
			if err != nil || verify != nil || !hasStep(rep, fmt.Sprintf("would send SIGHUP to Odoo's master (pid %d in %s", master, h.ProcRoot())) {
				t.Fatalf("dry run: %v %q", err, rep.Steps())
			}
			if now := procs(); now != before {
				t.Fatalf("dry run replaced processes: %s -> %s", before, now)
			}

			w2 := checkRecycle(t, a, env, "odoo", h.ProcRoot(), master, workers, len(workers), tc.replaced, h.OdooInfo)
			if !tc.replaced {
				return
			}
			t.Logf("master %d; workers %v -> %v; processes %s -> %s", master, workers, w2, before, procs())
		})
	}
}

// TestRecycleWorkersOnHostRefuses: host mode refuses to guess, and signals
// nothing: several Odoo masters and no pid_file, a pid_file naming a
// worker or a process that is not Odoo, an Odoo in threaded mode (SIGHUP
// would restart it whole).
func TestRecycleWorkersOnHostRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		odoo    dockertest.OdooConfig
		second  bool                                            // a second Odoo server runs on the host
		pidFile func(t *testing.T, master int, ws []int) string // the pid_file's content, "" for none
		err     string
	}{
		{name: "two masters, no pid_file", second: true, err: "look like a master (pids"},
		{name: "pid_file names a worker", pidFile: func(_ *testing.T, _ int, ws []int) string { return strconv.Itoa(ws[0]) }, err: "is Odoo's http process of master pid"},
		{name: "pid_file names no Odoo process", pidFile: func(*testing.T, int, []int) string { return strconv.Itoa(os.Getpid()) }, err: "is not an Odoo master process"},
		{name: "pid_file holds no pid", pidFile: func(*testing.T, int, []int) string { return "odoo\n" }, err: "not a pid"},
		{name: "threaded Odoo", odoo: dockertest.OdooConfig{Threaded: true, PIDNamespace: true}, err: "no worker processes: Odoo does not run in prefork mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			h, master, workers := startOdooOnHost(t, tc.odoo)
			apps := []*dockertest.HostApp{h}
			if tc.second {
				h2, _, _ := startOdooOnHost(t, dockertest.OdooConfig{Workers: 1})
				apps = append(apps, h2)
			}
			var before []string
			for _, a := range apps {
				ps, err := a.OdooProcs(ctx)
				if err != nil {
					t.Fatal(err)
				}
				before = append(before, fmt.Sprint(ps))
			}
			var pidFile string
			if tc.pidFile != nil {
				pidFile = filepath.Join(t.TempDir(), "odoo.pid")
				if err := os.WriteFile(pidFile, []byte(tc.pidFile(t, master, workers)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			env := &Env{Logger: testLogger()}
			for _, dry := range []bool{true, false} {
				rep, verify, err := runAction(t, hostRecycle(h, pidFile), env, "odoo", dry)
				if err == nil || !strings.Contains(err.Error(), tc.err) || verify != nil || rep.hasActed() {
					t.Fatalf("dry run %v: err = %v, want %q; steps %q", dry, err, tc.err, rep.Steps())
				}
			}
			for i, a := range apps {
				ps, err := a.OdooProcs(ctx)
				if err != nil || fmt.Sprint(ps) != before[i] {
					t.Fatalf("Odoo server %d: %s -> %v %v", i, before[i], ps, err)
				}
			}
		})
	}
}

// recyclePayload is a notification of OdooMemoryLeak (fingerprint fp)
// with heal label recycle_workers.
func recyclePayload(fp string) string {
	return strings.Replace(payload(firing("OdooMemoryLeak", fp, "")), `"heal":"clear_assets"`, `"heal":"recycle_workers"`, 1)
}

// TestHealerRecyclesOnHost: the whole chain in host mode: an alert
// recycles the workers of Odoo on the host once (a second alert meets the
// cooldown and signals nothing), and a master that ignores SIGHUP ends
// verify_failed.
func TestHealerRecyclesOnHost(t *testing.T) {
	for _, tc := range []struct {
		name   string
		odoo   dockertest.OdooConfig
		alerts int
		want   []string // audit results of the rule, in order
	}{
		{"recycled once, then cooldown", dockertest.OdooConfig{}, 2, []string{ResultSuccess, ResultSkippedCooldown}},
		{"master ignores SIGHUP", dockertest.OdooConfig{IgnoreHUP: true}, 1, []string{ResultVerifyFailed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			tc.odoo.PIDFile = filepath.Join(t.TempDir(), "odoo.pid")
			h, master, workers := startOdooOnHost(t, tc.odoo)
			th := newTestHealer(t, fmt.Sprintf(`
verify_interval: 100ms
rules:
  - name: recycle-host
    match: {heal: recycle_workers}
    action: recycle_workers
    target: odoo
    targets: [odoo]
    cooldown: 1h
    verify_timeout: 3s
    params:
      mode: host
      proc_root: %s
      pid_file: %s
      settle: 200ms
      health_url: http://%s/healthz
`, h.ProcRoot(), tc.odoo.PIDFile, h.Addr))
			var after []int
			for i := range tc.alerts {
				if code, body := th.post(t, recyclePayload(fmt.Sprintf("fp%d", i))); code != http.StatusOK {
					t.Fatalf("%d %v", code, body)
				}
				th.Wait()
				m, ws, err := h.OdooInfo(ctx)
				if err != nil || m != master {
					t.Fatalf("master %d (before %d): %v", m, master, err)
				}
				if i == 0 {
					after = ws
				} else if !slices.Equal(ws, after) {
					t.Errorf("alert %d replaced the workers again (%v -> %v) within the cooldown", i, after, ws)
				}
			}
			if got := th.results(t, "recycle-host"); !slices.Equal(got, tc.want) {
				t.Errorf("audit results %v, want %v", got, tc.want)
			}
			replaced := !slices.ContainsFunc(after, func(p int) bool { return slices.Contains(workers, p) })
			if replaced != (tc.want[0] == ResultSuccess) {
				t.Errorf("workers %v -> %v", workers, after)
			}
		})
	}
}
