package dockertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// StartOdooOnHost builds the test program and runs its Odoo prefork
// stand-in (see package testapp, mode odoo) on the host, as a child
// process of the test, the way Odoo runs without Docker (a systemd
// service). The master and its workers are stopped when tb ends. The
// returned App has no container ID; Exit is not served by the stand-in:
// stop it with Stop.
func StartOdooOnHost(ctx context.Context, tb testing.TB, cfg OdooConfig) (*HostApp, error) {
	bin := filepath.Join(tb.TempDir(), "odoo-bin")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, AppPackage)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dockertest: go build %s: %v\n%s", AppPackage, err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, cfg.args(addr)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// Its own process group: Stop ends the master and its workers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cfg.PIDNamespace {
		// PID 1 of its own PID namespace; a mount namespace for its /proc.
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID | syscall.CLONE_NEWNS
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dockertest: starting the Odoo stand-in: %w", err)
	}
	h := &HostApp{App: App{Name: "odoo-on-host", Addr: addr}, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(h.done) }()
	tb.Cleanup(h.Stop)
	if err := h.WaitReady(ctx, 30*time.Second); err != nil {
		h.Stop()
		return nil, err
	}
	return h, nil
}

// HostApp is the Odoo stand-in running on the host.
type HostApp struct {
	App
	cmd  *exec.Cmd
	done chan struct{}
}

// PID is the master's pid (in the test's PID namespace).
func (h *HostApp) PID() int { return h.cmd.Process.Pid }

// ProcRoot is the proc file system showing the stand-in's processes with
// the pids it knows (App.OdooInfo): /proc, or with
// OdooConfig.PIDNamespace the /proc it mounted in its namespaces, reached
// through its root (/proc/<pid>/root/proc).
func (h *HostApp) ProcRoot() string {
	if h.cmd.SysProcAttr.Cloneflags&syscall.CLONE_NEWPID != 0 {
		return fmt.Sprintf("/proc/%d/root/proc", h.cmd.Process.Pid)
	}
	return "/proc"
}

// Stop ends the master (SIGTERM: it stops its workers) and waits for it;
// whatever is left of its process group is killed.
func (h *HostApp) Stop() {
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
	<-h.done
}
