package heal

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/prometheus/common/model"

	"github.com/odoo-exporter/odoo_exporter/internal/dockertest"
)

// The package's tests share one private dockerd, started by the first
// test that needs it and closed by TestMain.
var (
	dockerOnce   sync.Once
	dockerDaemon *dockertest.Daemon
	dockerErr    error
)

func docker(t *testing.T) *dockertest.Daemon {
	t.Helper()
	dockerOnce.Do(func() { dockerDaemon, dockerErr = dockertest.Start() })
	dockertest.Require(t, dockerErr)
	return dockerDaemon
}

func closeDocker() {
	if dockerDaemon != nil {
		dockerDaemon.Close()
	}
}

// restartPayload is a notification of OdooLongpollDown for container
// name, with heal label restart_container.
func restartPayload(fp, name string) string {
	return strings.Replace(strings.Replace(payload(firing("OdooLongpollDown", fp, "")), `"heal":"clear_assets"`, `"heal":"restart_container","name":"`+name+`"`, 1), `"database":"",`, "", 1)
}

func inspect(t *testing.T, d *dockertest.Daemon, name string) *container.State {
	t.Helper()
	c, err := d.Client().ContainerInspect(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return c.State
}

// TestRestartContainer: the restart is verified only once Odoo answers
// its health URL again: the test app starts unhealthy (as Odoo loading
// its registry), and verify fails until it is healthy.
func TestRestartContainer(t *testing.T) {
	d := docker(t)
	ctx := t.Context()
	app, err := d.RunApp(ctx, dockertest.AppConfig{Name: "odoo-gevent", StartUnhealthy: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.SetHealthy(ctx, true); err != nil {
		t.Fatal(err)
	}
	// Memory held by the process tells its run apart from the next.
	if n, err := app.Alloc(ctx, 4); err != nil || n != 4 {
		t.Fatalf("alloc: %d %v", n, err)
	}
	before := inspect(t, d, app.Name)
	env := &Env{Docker: d.Client(), Logger: testLogger()}
	a := &RestartContainer{RestartContainerParams{StopTimeout: model.Duration(5 * time.Second),
		HealthParams: HealthParams{HealthURLs: map[string]string{app.Name: "http://" + app.Addr + "/healthz"}}}}

	rep, verify, err := runAction(t, a, env, app.Name, true)
	if err != nil || verify != nil || !hasStep(rep, "would restart container") {
		t.Fatalf("dry run: %v %q", err, rep.Steps())
	}
	if st := inspect(t, d, app.Name); st.StartedAt != before.StartedAt {
		t.Fatal("dry run restarted the container")
	}

	rep, verify, err = runAction(t, a, env, app.Name, false)
	if err != nil || !hasStep(rep, "restarted container") || !rep.hasActed() {
		t.Fatalf("%v %q", err, rep.Steps())
	}
	if err := app.WaitReady(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// Running again, but Odoo does not answer yet: not verified.
	if err := verify(ctx); err == nil || !strings.Contains(err.Error(), "does not answer yet") {
		t.Fatalf("verify passed while Odoo's health URL fails: %v", err)
	}
	if err := app.SetHealthy(ctx, true); err != nil {
		t.Fatal(err)
	}
	verifyWithin(t, verify)
	if st := inspect(t, d, app.Name); st.StartedAt == before.StartedAt || !st.Running {
		t.Fatalf("not restarted: %+v", st)
	}
	if n, err := app.Alloc(ctx, 0); err != nil || n != 0 {
		t.Fatalf("the process still holds %d MiB (%v): it was not restarted", n, err)
	}

	// A later attempt of an episode that began before this restart (its
	// request timed out, the daemon restarted the container anyway) does
	// not restart it a second time.
	restarted := inspect(t, d, app.Name)
	rep = &Report{}
	verify, err = a.Run(withEpisodeBegan(ctx, time.Now().Add(-time.Hour)), env, app.Name, false, rep)
	if err != nil || !hasStep(rep, "not restarting it again") || !rep.hasActed() {
		t.Fatalf("%v %q", err, rep.Steps())
	}
	verifyWithin(t, verify)
	if st := inspect(t, d, app.Name); st.StartedAt != restarted.StartedAt {
		t.Fatal("restarted twice in one episode")
	}
}

// TestRecycleWorkers: recycle_workers finds Odoo's master in the
// container, also when PID 1 is a shell wrapper that drops SIGHUP, and
// succeeds only once every worker was replaced and Odoo answers; a master
// that ignores the signal ends verify_failed, never success.
func TestRecycleWorkers(t *testing.T) {
	d := docker(t)
	for _, tc := range []struct {
		name       string
		odoo       dockertest.OdooConfig
		wantMaster int // 0: not PID 1
		replaced   bool
	}{
		{"master is PID 1", dockertest.OdooConfig{}, 1, true},
		{"shell wrapper as PID 1", dockertest.OdooConfig{ShellWrapper: true}, 0, true},
		{"master ignores SIGHUP", dockertest.OdooConfig{IgnoreHUP: true}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			name := "odoo-" + strings.ReplaceAll(tc.name, " ", "-")
			app, err := d.RunApp(ctx, dockertest.AppConfig{Name: name, Odoo: &tc.odoo})
			if err != nil {
				t.Fatal(err)
			}
			master, workers, err := app.OdooInfo(ctx)
			if err != nil || len(workers) != 2 {
				t.Fatalf("info: %d %v %v", master, workers, err)
			}
			if (tc.wantMaster == 1) != (master == 1) {
				t.Fatalf("master pid %d", master)
			}
			before := inspect(t, d, name)
			env := &Env{Docker: d.Client(), Logger: testLogger()}
			a := &RecycleWorkers{RecycleWorkersParams{Mode: "signal", Signal: "SIGHUP", Settle: model.Duration(300 * time.Millisecond),
				HealthParams: HealthParams{HealthURL: "http://" + app.Addr + "/healthz"}}}

			rep, verify, err := runAction(t, a, env, name, true)
			if err != nil || verify != nil || !hasStep(rep, fmt.Sprintf("would send SIGHUP to Odoo's master (pid %d in the container", master)) {
				t.Fatalf("dry run: %v %q", err, rep.Steps())
			}
			if _, w, _ := app.OdooInfo(ctx); fmt.Sprint(w) != fmt.Sprint(workers) {
				t.Fatalf("dry run replaced the workers: %v -> %v", workers, w)
			}

			if checkRecycle(t, a, env, name, "the container", master, workers, 2, tc.replaced, app.OdooInfo) == nil {
				return
			}
			if st := inspect(t, d, name); st.StartedAt != before.StartedAt || !st.Running {
				t.Fatalf("the container restarted: %+v", st)
			}
		})
	}
}

// TestHealerRestartsContainerFromLabel: the whole chain: the alert's
// label name picks an allow-listed container, which is restarted once.
func TestHealerRestartsContainerFromLabel(t *testing.T) {
	d := docker(t)
	ctx := t.Context()
	app, err := d.RunApp(ctx, dockertest.AppConfig{Name: "odoo-web"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := d.RunApp(ctx, dockertest.AppConfig{Name: "postgres-db"})
	if err != nil {
		t.Fatal(err)
	}
	before, otherBefore := inspect(t, d, app.Name), inspect(t, d, other.Name)
	th := newTestHealer(t, `
verify_interval: 100ms
rules:
  - name: restart
    match: {heal: restart_container}
    action: restart_container
    targets: [odoo-web]
    params: {stop_timeout: 5s, health_urls: {odoo-web: "http://`+app.Addr+`/healthz"}}
`)
	th.Env().Docker = d.Client()
	mk := restartPayload
	for range 2 {
		if code, body := th.post(t, mk("fp1", "odoo-web")); code != http.StatusOK {
			t.Fatalf("%d %v", code, body)
		}
	}
	th.post(t, mk("fp2", "postgres-db"))
	th.Wait()
	if got := th.actions("restart_container", ResultSuccess); got != 1 {
		t.Errorf("success = %v, want 1; audit %+v", got, th.auditRecords(t))
	}
	if got := th.actions("restart_container", ResultRejectedTarget); got != 1 {
		t.Errorf("rejected_target = %v, want 1", got)
	}
	if inspect(t, d, app.Name).StartedAt == before.StartedAt {
		t.Error("odoo-web was not restarted")
	}
	if inspect(t, d, other.Name).StartedAt != otherBefore.StartedAt {
		t.Error("postgres-db (not allow-listed) was restarted")
	}
}

// TestDockerActionsNeedTheContainerName: Docker resolves a reference as
// a name or as an ID prefix; a target that is not the container's name
// (here a prefix of its ID) is refused, and nothing is restarted or
// signalled.
func TestDockerActionsNeedTheContainerName(t *testing.T) {
	d := docker(t)
	app, err := d.RunApp(t.Context(), dockertest.AppConfig{Name: "odoo-byid"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Client().ContainerInspect(t.Context(), app.Name)
	if err != nil {
		t.Fatal(err)
	}
	before := c.State
	env := &Env{Docker: d.Client(), Logger: testLogger()}
	for _, tc := range []struct {
		name string
		a    Action
	}{
		{"restart_container", &RestartContainer{RestartContainerParams{StopTimeout: model.Duration(time.Second), HealthParams: HealthParams{HealthURL: "http://" + app.Addr + "/healthz"}}}},
		{"recycle_workers signal", &RecycleWorkers{RecycleWorkersParams{Mode: "signal", Signal: "SIGHUP"}}},
		{"recycle_workers restart", &RecycleWorkers{RecycleWorkersParams{Mode: "restart", StopTimeout: model.Duration(time.Second)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runAction(t, tc.a, env, c.ID[:12], false)
			if err == nil || !strings.Contains(err.Error(), "not "+c.ID[:12]) {
				t.Errorf("err = %v, want a refusal naming the container", err)
			}
			if st := inspect(t, d, app.Name); st.StartedAt != before.StartedAt || !st.Running {
				t.Fatalf("the container was restarted or killed: %+v", st)
			}
		})
	}
}

// TestHealerRetriesFailedRestart: a container restart that fails against
// a frozen dockerd does not act, so it starts no cooldown: a second alert
// for the container meanwhile is not skipped. Once dockerd answers again,
// the open episodes are re-evaluated: one restart happens (verified by
// Odoo's health URL) and starts the cooldown, which the other episode
// then meets.
func TestHealerRetriesFailedRestart(t *testing.T) {
	d := docker(t)
	ctx := t.Context()
	app, err := d.RunApp(ctx, dockertest.AppConfig{Name: "odoo-frozen"})
	if err != nil {
		t.Fatal(err)
	}
	before := inspect(t, d, app.Name)
	th := newTestHealer(t, `
verify_interval: 100ms
rules:
  - name: restart
    match: {heal: restart_container}
    action: restart_container
    targets: [odoo-frozen]
    timeout: 2s
    cooldown: 1h
    retry_interval: 1s
    retry_max_interval: 1s
    max_attempts: 100
    params: {stop_timeout: 5s, health_url: "http://`+app.Addr+`/healthz"}
`)
	th.Env().Docker = d.Client()
	mk := func(fp string) string { return restartPayload(fp, "odoo-frozen") }
	if err := d.Freeze(); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			if err := d.Thaw(); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer thaw()
	th.post(t, mk("fp1"))
	eventually(t, 30*time.Second, "the first restart to fail", func() bool { return th.actions("restart_container", ResultFailed) >= 1 })
	code, body := th.post(t, mk("fp2"))
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(body), ResultStarted) {
		t.Errorf("second alert while the restart could not happen: %d %v (a failed restart must not start the cooldown)", code, body)
	}
	eventually(t, 30*time.Second, "the second restart to fail", func() bool { return th.actions("restart_container", ResultFailed) >= 2 })
	thaw()
	eventually(t, time.Minute, "a restart to succeed and the other episode to meet its cooldown", func() bool {
		return th.actions("restart_container", ResultSuccess) == 1 && th.actions("restart_container", ResultSkippedCooldown) == 1
	})
	after := inspect(t, d, app.Name)
	if after.StartedAt == before.StartedAt || !after.Running {
		t.Fatalf("not restarted: %+v", after)
	}
	th.Wait()
	if st := inspect(t, d, app.Name); st.StartedAt != after.StartedAt {
		t.Error("restarted twice")
	}
	t.Logf("audit: %v", th.results(t, "restart"))
}
