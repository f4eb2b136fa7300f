package heal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/odoo-exporter/odoo_exporter/odooproc"
)

// runHost is recycle_workers' host mode, for Odoo running without Docker
// (the Debian package's systemd unit, a source install) or in a PID
// namespace the healer sees (a sidecar sharing it, or a container's
// /proc/<pid>/root/proc): it reads Odoo's processes from ProcRoot with
// odooproc.ReadProcFS and classifies them with odooproc.Find, as the
// process collector does, picks the master (the pid of PIDFile, or the
// only master), refuses a threaded Odoo (no workers: SIGHUP would restart
// it whole), and sends the master SIGHUP. Verify: the same master (pid
// and start time) runs, every worker it has is new and each kind it had
// (http, cron, gevent) is back, Odoo answers its health URL when one is
// set, and the new workers stayed the same for Settle.
func (r *RecycleWorkers) runHost(ctx context.Context, name, health string, dryRun bool, rep *Report) (func(context.Context) error, error) {
	root := r.p.ProcRoot
	srv, err := r.hostMaster(name)
	if err != nil {
		return nil, err
	}
	if err := checkPrefork(srv); err != nil {
		return nil, fmt.Errorf("%q: %w", name, err)
	}
	m := srv.Master
	if dryRun {
		rep.Step("would send %s to Odoo's master (pid %d in %s, %q) of %q, replacing its %d worker(s) %v", r.p.Signal, m.PID, root, m.Cmd, name, len(srv.Workers), pids(srv.Workers))
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := signalMaster(root, m); err != nil {
		return nil, fmt.Errorf("%q: sending %s to Odoo's master (pid %d in %s): %w", name, r.p.Signal, m.PID, root, err)
	}
	rep.Acted("sent %s to Odoo's master (pid %d in %s) of %q; its worker(s) were %v", r.p.Signal, m.PID, root, name, pids(srv.Workers))
	settled := &settleWatch{settle: time.Duration(r.p.Settle)}
	return func(ctx context.Context) error {
		ps, err := odooproc.ReadProcFS(root)
		if err != nil {
			return err
		}
		now, err := checkRecycled(srv, ps)
		if err != nil {
			return err
		}
		if health != "" {
			if err := checkHealth(ctx, health); err != nil {
				return err
			}
		}
		return settled.check(now)
	}, nil
}

// hostMaster finds the Odoo server to recycle for target name.
func (r *RecycleWorkers) hostMaster(name string) (odooproc.Server, error) {
	pid := 0
	pidFile := strings.ReplaceAll(r.p.PIDFile, "{target}", name)
	if pidFile != "" {
		var err error
		if pid, err = readPIDFile(pidFile); err != nil {
			return odooproc.Server{}, fmt.Errorf("%q: %w", name, err)
		}
	}
	ps, err := odooproc.ReadProcFS(r.p.ProcRoot)
	if err != nil {
		return odooproc.Server{}, fmt.Errorf("%q: %w", name, err)
	}
	srv, err := pickMaster(ps, pid)
	switch {
	case err != nil && pidFile != "":
		return srv, fmt.Errorf("%q: pid_file %s: %w", name, pidFile, err)
	case err != nil:
		return srv, fmt.Errorf("%q: in %s: %w (with several Odoo servers, set pid_file)", name, r.p.ProcRoot, err)
	}
	return srv, nil
}

// readPIDFile reads the pid written by Odoo's --pidfile.
func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading Odoo's pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s holds %q, not a pid", path, strings.TrimSpace(string(b)))
	}
	return pid, nil
}

// signalMaster sends SIGHUP to master, a process of the proc file system
// at root. It opens root/<pid> first: that descriptor refers to this one
// process (pidfd_send_signal(2) takes it), so a pid reused after the
// check below is never signalled. It then reads root again and checks that
// the pid is still the same master (same start time). The descriptor also
// translates the pid of root's PID namespace: the healer may run in the
// namespace of root or in an ancestor (the host's, for a container's
// /proc/<pid>/root/proc); for a namespace it is not in (a container
// reading the host's /proc) the kernel refuses.
func signalMaster(root string, master odooproc.Process) error {
	dir := filepath.Join(root, strconv.Itoa(master.PID))
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s (did the master exit?): %w", dir, err)
	}
	defer unix.Close(fd)
	ps, err := odooproc.ReadProcFS(root)
	if err != nil {
		return err
	}
	now, err := pickMaster(ps, master.PID)
	if err != nil {
		return err
	}
	if !now.Master.Start.Equal(master.Start) {
		return fmt.Errorf("pid %d is another process than the Odoo master found (started %s, not %s)", master.PID, now.Master.Start.Format(time.RFC3339), master.Start.Format(time.RFC3339))
	}
	err = unix.PidfdSendSignal(fd, unix.SIGHUP, nil, 0)
	if errors.Is(err, unix.ENOSYS) {
		// Linux before 5.1: kill(2), only when root shows the healer's own
		// PID namespace (the pid means the same process to the kernel).
		if self, _ := os.Readlink(filepath.Join(root, "self")); self != strconv.Itoa(os.Getpid()) {
			return fmt.Errorf("this kernel has no pidfd_send_signal and %s is not the healer's PID namespace: cannot signal its processes safely", root)
		}
		err = syscall.Kill(master.PID, syscall.SIGHUP)
	}
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w: the healer must run as Odoo's user or as root, or have the capability CAP_KILL", err)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("%w: %s shows a PID namespace the healer is not in (run it in Odoo's PID namespace or an ancestor, e.g. the host's)", err, root)
	case errors.Is(err, unix.ESRCH):
		return fmt.Errorf("%w: the master exited", err)
	}
	return err
}
