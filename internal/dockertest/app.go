package dockertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
)

// AppPackage is the import path of the test containers' program.
const AppPackage = "github.com/odoo-exporter/odoo_exporter/internal/dockertest/testapp"

// AppImage is the tag of the image TestAppImage builds.
const AppImage = "dockertest-app:latest"

// TestAppImage builds the image of the test program (see package testapp)
// once per daemon and returns its tag.
func (d *Daemon) TestAppImage(ctx context.Context) (string, error) {
	d.appOnce.Do(func() {
		d.appErr = d.BuildImage(ctx, AppImage, AppPackage)
		d.appImage = AppImage
	})
	return d.appImage, d.appErr
}

// OdooImage is the tag of the image OdooAppImage builds.
const OdooImage = "dockertest-odoo:latest"

// OdooAppImage builds, once per daemon, the image of the test program with
// a POSIX shell (/bin/sh, from busybox-static: Odoo's Debian image has
// sh, cat and tr, which the healer's recycle_workers uses through docker
// exec) and returns its tag.
func (d *Daemon) OdooAppImage(ctx context.Context) (string, error) {
	d.odooOnce.Do(func() {
		bb, err := exec.LookPath("busybox")
		if err != nil {
			if _, serr := os.Stat("/bin/busybox"); serr != nil {
				d.odooErr = fmt.Errorf("dockertest: busybox not found (install Debian's busybox-static, see scripts/install-deps.sh): %w", err)
				return
			}
			bb = "/bin/busybox"
		}
		b, err := os.ReadFile(bb)
		if err != nil {
			d.odooErr = err
			return
		}
		d.odooErr = d.BuildImage(ctx, OdooImage, AppPackage, File{Name: "bin/sh", Mode: 0o755, Data: b})
	})
	return OdooImage, d.odooErr
}

// OdooConfig makes a test container a stand-in for Odoo's prefork server
// (see package testapp, mode odoo).
type OdooConfig struct {
	// Workers is the number of worker processes (default 2).
	Workers int
	// ShellWrapper makes PID 1 a shell (sh -c '...; echo exited') whose
	// child is the master, as with an entrypoint script that does not exec
	// Odoo: PID 1 ignores SIGHUP, it does not forward signals.
	ShellWrapper bool
	// IgnoreHUP makes the master ignore SIGHUP.
	IgnoreHUP bool
	// ReloadDelay is the outage of a SIGHUP reload (default 500ms).
	ReloadDelay time.Duration
	// Cron is the number of cron workers (niced by 10, as Odoo's).
	Cron int
	// Gevent adds the gevent process ("odoo-bin gevent ...").
	Gevent bool
	// GrowMB is what App.OdooGrow makes a worker allocate (default 16).
	GrowMB int
	// ConfigFile is shown on the command line as Odoo's -c FILE.
	ConfigFile string
	// Threaded runs no worker at all, as Odoo's threaded mode (workers =
	// 0): the master alone (Workers, Cron and Gevent are then ignored).
	Threaded bool
	// PIDFile makes the master write its pid there at each start, as
	// Odoo's --pidfile (the pid in its own PID namespace).
	PIDFile string
	// PIDNamespace (StartOdooOnHost only) runs the master as PID 1 of new
	// PID and mount namespaces, with a /proc of its own: its processes are
	// then the only ones of HostApp.ProcRoot.
	PIDNamespace bool
}

// args returns the command line of the odoo mode.
func (o *OdooConfig) args(addr string) []string {
	workers, delay := o.Workers, o.ReloadDelay
	if workers == 0 {
		workers = 2
	}
	if o.Threaded {
		workers = 0
	}
	if delay == 0 {
		delay = 500 * time.Millisecond
	}
	args := []string{"odoo", "-addr", addr, "-workers", strconv.Itoa(workers), "-reload-delay", delay.String()}
	if o.IgnoreHUP {
		args = append(args, "-ignore-hup")
	}
	if o.Cron > 0 && !o.Threaded {
		args = append(args, "--max-cron-threads", strconv.Itoa(o.Cron))
	}
	if o.Gevent && !o.Threaded {
		args = append(args, "-gevent")
	}
	if o.GrowMB > 0 {
		args = append(args, "-grow-mb", strconv.Itoa(o.GrowMB))
	}
	if o.ConfigFile != "" {
		args = append(args, "-c", o.ConfigFile)
	}
	if o.PIDFile != "" {
		args = append(args, "--pidfile", o.PIDFile)
	}
	if o.PIDNamespace {
		args = append(args, "-mount-proc")
	}
	return args
}

// AppConfig describes a test container running the test program.
type AppConfig struct {
	Name   string
	Labels map[string]string
	// Memory is the memory limit in bytes (swap included); 0 is unlimited.
	Memory int64
	// RestartPolicy is Docker's restart policy; empty is "no".
	RestartPolicy container.RestartPolicyMode
	// Healthcheck adds a HEALTHCHECK (every 200ms, unhealthy after one
	// failure) that follows App.SetHealthy.
	Healthcheck bool
	// AllocMB is allocated when the program starts.
	AllocMB int
	// StartUnhealthy: /healthz fails after each start until SetHealthy.
	StartUnhealthy bool
	// Odoo, when set, runs the Odoo prefork stand-in instead.
	Odoo *OdooConfig
	// Mode is the program's mode: "serve" (the default) or "print" (a
	// container that writes the lines App.Print gives it).
	Mode string
}

// App is a running test container. It uses the host's network and is
// controlled over HTTP on 127.0.0.1.
type App struct {
	ID   string
	Name string
	Addr string // host:port of its control endpoint
}

// RunApp creates and starts a test container and waits until it answers.
func (d *Daemon) RunApp(ctx context.Context, cfg AppConfig) (*App, error) {
	image, err := d.TestAppImage(ctx)
	if cfg.Odoo != nil {
		image, err = d.OdooAppImage(ctx)
	}
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	mode := cfg.Mode
	if mode == "" {
		mode = "serve"
	}
	cc := &container.Config{
		Image:  image,
		Cmd:    []string{mode, "-addr", addr, "-alloc", strconv.Itoa(cfg.AllocMB)},
		Labels: cfg.Labels,
	}
	if cfg.StartUnhealthy {
		cc.Cmd = append(cc.Cmd, "-start-unhealthy")
	}
	if o := cfg.Odoo; o != nil {
		if o.PIDNamespace {
			return nil, errors.New("dockertest: OdooConfig.PIDNamespace is for StartOdooOnHost (a container has its PID namespace)")
		}
		args := o.args(addr)
		cc.Entrypoint, cc.Cmd = []string{"/app"}, args
		if o.ShellWrapper {
			cc.Entrypoint = []string{"/bin/sh"}
			cc.Cmd = []string{"-c", "/app " + strings.Join(args, " ") + "; echo odoo exited"}
		}
	}
	if cfg.Healthcheck {
		cc.Healthcheck = &container.HealthConfig{
			Test:     []string{"CMD", "/app", "health", "-addr", addr},
			Interval: 200 * time.Millisecond,
			Timeout:  2 * time.Second,
			Retries:  1,
		}
	}
	hc := &container.HostConfig{NetworkMode: "host"}
	if cfg.RestartPolicy != "" {
		hc.RestartPolicy = container.RestartPolicy{Name: cfg.RestartPolicy}
	}
	if cfg.Memory > 0 {
		hc.Memory = cfg.Memory
		hc.MemorySwap = cfg.Memory
	}
	created, err := d.client.ContainerCreate(ctx, cc, hc, nil, nil, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("dockertest: creating %s: %w", cfg.Name, err)
	}
	if err := d.client.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return nil, fmt.Errorf("dockertest: starting %s: %w", cfg.Name, err)
	}
	app := &App{ID: created.ID, Name: cfg.Name, Addr: addr}
	if err := app.WaitReady(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	return app, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitReady waits until the program answers (after a start or restart).
func (a *App) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := a.call(ctx, "/ping", nil)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dockertest: %s not ready after %v: %w", a.Name, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Alloc makes the program allocate mb more MiB (resident) and returns the
// total it holds. Beyond the memory limit the container is OOM-killed and
// Alloc returns an error.
func (a *App) Alloc(ctx context.Context, mb int) (int, error) {
	body, err := a.call(ctx, "/alloc", url.Values{"mb": {strconv.Itoa(mb)}})
	if err != nil {
		return 0, err
	}
	var total int
	_, err = fmt.Sscan(body, &total)
	return total, err
}

// Free makes the program drop its allocations and return them to the OS.
func (a *App) Free(ctx context.Context) error {
	_, err := a.call(ctx, "/free", nil)
	return err
}

// SetHealthy switches the answer of the health check.
func (a *App) SetHealthy(ctx context.Context, ok bool) error {
	v := "1"
	if !ok {
		v = "0"
	}
	_, err := a.call(ctx, "/health", url.Values{"ok": {v}})
	return err
}

// OdooInfo returns the pid of the Odoo stand-in's master and its
// workers' pids, in the container's PID namespace.
func (a *App) OdooInfo(ctx context.Context) (master int, workers []int, err error) {
	body, err := a.call(ctx, "/info", nil)
	if err != nil {
		return 0, nil, err
	}
	for i, f := range strings.Fields(body) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return 0, nil, fmt.Errorf("dockertest: /info: %q", body)
		}
		if i == 0 {
			master = n
		} else {
			workers = append(workers, n)
		}
	}
	return master, workers, nil
}

// OdooProcs returns the pids of the Odoo stand-in's processes by kind
// (master, http, cron, gevent), in its PID namespace.
func (a *App) OdooProcs(ctx context.Context) (map[string][]int, error) {
	body, err := a.call(ctx, "/procs", nil)
	if err != nil {
		return nil, err
	}
	out := map[string][]int{}
	for line := range strings.Lines(body) {
		var kind string
		var pid int
		if _, err := fmt.Sscan(line, &kind, &pid); err != nil {
			return nil, fmt.Errorf("dockertest: /procs: %q", line)
		}
		out[kind] = append(out[kind], pid)
	}
	return out, nil
}

// OdooGrow makes the stand-in's first HTTP worker allocate
// OdooConfig.GrowMB MiB more (resident), and returns its pid; the worker
// allocates after the call returns.
func (a *App) OdooGrow(ctx context.Context) (int, error) {
	body, err := a.call(ctx, "/grow", nil)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(body))
}

// OdooRecycle makes the stand-in's master replace its first worker of
// kind (http, cron or gevent) with a new process, and returns its pid.
func (a *App) OdooRecycle(ctx context.Context, kind string) (int, error) {
	body, err := a.call(ctx, "/recycle", url.Values{"kind": {kind}})
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(body))
}

// Exit makes the program exit with code.
func (a *App) Exit(ctx context.Context, code int) error {
	_, err := a.call(ctx, "/exit", url.Values{"code": {strconv.Itoa(code)}})
	return err
}

func (a *App) call(ctx context.Context, path string, q url.Values) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u := "http://" + a.Addr + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("dockertest: %s %s: %w", a.Name, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("dockertest: %s %s: %s", a.Name, path, resp.Status)
	}
	return string(b), nil
}
