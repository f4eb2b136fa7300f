package heal

import (
	"context"
	"fmt"
	"io"
	"net"
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

const sigappImage = "heal-sigapp:latest"

var sigappOnce sync.Once

// runSigapp starts a container of heal/internal/sigapp, the stand-in for
// Odoo's master that counts SIGHUPs, and returns its control address.
func runSigapp(t *testing.T, d *dockertest.Daemon, name string) string {
	t.Helper()
	ctx := t.Context()
	var err error
	sigappOnce.Do(func() {
		err = d.BuildImage(ctx, sigappImage, "github.com/odoo-exporter/odoo_exporter/heal/internal/sigapp")
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := d.Client().ContainerCreate(ctx, &container.Config{Image: sigappImage, Cmd: []string{"-addr", addr}},
		&container.HostConfig{NetworkMode: "host"}, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Client().ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, name+" to answer", func() bool { _, err := httpGet(addr, "/healthz"); return err == nil })
	return addr
}

func httpGet(addr, path string) (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", path, resp.Status)
	}
	return strings.TrimSpace(string(b)), err
}

func inspect(t *testing.T, d *dockertest.Daemon, name string) *container.State {
	t.Helper()
	c, err := d.Client().ContainerInspect(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return c.State
}

func TestRestartContainer(t *testing.T) {
	d := docker(t)
	ctx := t.Context()
	app, err := d.RunApp(ctx, dockertest.AppConfig{Name: "odoo-gevent", Healthcheck: true})
	if err != nil {
		t.Fatal(err)
	}
	// Memory held by the process tells its run apart from the next.
	if n, err := app.Alloc(ctx, 4); err != nil || n != 4 {
		t.Fatalf("alloc: %d %v", n, err)
	}
	before := inspect(t, d, app.Name)
	env := &Env{Docker: d.Client(), Logger: testLogger()}
	a := &RestartContainer{RestartContainerParams{StopTimeout: model.Duration(5 * time.Second)}}

	rep, verify, err := runAction(t, a, env, app.Name, true)
	if err != nil || verify != nil || !hasStep(rep, "would restart container") {
		t.Fatalf("dry run: %v %q", err, rep.Steps())
	}
	if st := inspect(t, d, app.Name); st.StartedAt != before.StartedAt {
		t.Fatal("dry run restarted the container")
	}

	rep, verify, err = runAction(t, a, env, app.Name, false)
	if err != nil || !hasStep(rep, "restarted container") {
		t.Fatalf("%v %q", err, rep.Steps())
	}
	verifyWithin(t, verify)
	if st := inspect(t, d, app.Name); st.StartedAt == before.StartedAt || !st.Running {
		t.Fatalf("not restarted: %+v", st)
	}
	if err := app.WaitReady(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if n, err := app.Alloc(ctx, 0); err != nil || n != 0 {
		t.Fatalf("the process still holds %d MiB (%v): it was not restarted", n, err)
	}
}

func TestRecycleWorkers(t *testing.T) {
	d := docker(t)
	addr := runSigapp(t, d, "odoo-master")
	before := inspect(t, d, "odoo-master")
	env := &Env{Docker: d.Client(), Logger: testLogger()}
	a := &RecycleWorkers{RecycleWorkersParams{Mode: "signal", Signal: "SIGHUP", Settle: model.Duration(300 * time.Millisecond)}}

	rep, verify, err := runAction(t, a, env, "odoo-master", true)
	if err != nil || verify != nil || !hasStep(rep, "would send SIGHUP") {
		t.Fatalf("dry run: %v %q", err, rep.Steps())
	}
	if n, _ := httpGet(addr, "/hups"); n != "0" {
		t.Fatalf("dry run: %s SIGHUPs received", n)
	}

	rep, verify, err = runAction(t, a, env, "odoo-master", false)
	if err != nil || !hasStep(rep, "sent SIGHUP") {
		t.Fatalf("%v %q", err, rep.Steps())
	}
	eventually(t, 10*time.Second, "the SIGHUP to arrive", func() bool { n, _ := httpGet(addr, "/hups"); return n == "1" })
	verifyWithin(t, verify)
	if st := inspect(t, d, "odoo-master"); st.StartedAt != before.StartedAt || !st.Running {
		t.Fatalf("the container restarted: %+v", st)
	}
}

// TestRecycleWorkersVerifyFailed: a main process that does not handle
// SIGHUP dies of it (the test app is a Go program without a SIGHUP
// handler); the verify step sees it.
func TestRecycleWorkersVerifyFailed(t *testing.T) {
	d := docker(t)
	app, err := d.RunApp(t.Context(), dockertest.AppConfig{Name: "odoo-nohup"})
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Docker: d.Client(), Logger: testLogger()}
	a := &RecycleWorkers{RecycleWorkersParams{Mode: "signal", Signal: "SIGHUP", Settle: model.Duration(300 * time.Millisecond)}}
	_, verify, err := runAction(t, a, env, app.Name, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if err := pollUntil(ctx, 100*time.Millisecond, verify); err == nil {
		t.Fatalf("verify passed, container state %+v", inspect(t, d, app.Name))
	} else {
		t.Logf("verify: %v", err)
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
    params: {stop_timeout: 5s}
`)
	th.Env().Docker = d.Client()
	mk := func(fp, name string) string {
		return strings.Replace(strings.Replace(payload(firing("OdooLongpollDown", fp, "")), `"heal":"clear_assets"`, `"heal":"restart_container","name":"`+name+`"`, 1), `"database":"",`, "", 1)
	}
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
		{"restart_container", &RestartContainer{RestartContainerParams{StopTimeout: model.Duration(time.Second)}}},
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
