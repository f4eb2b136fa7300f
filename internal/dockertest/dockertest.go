// Package dockertest starts a private Docker daemon for tests and builds
// FROM scratch images of this module's Go programs in it.
//
// The daemon is Debian's dockerd (package docker.io), run as root with its
// own data root, exec root, pid file, configuration and socket in a
// temporary directory, no bridge network and no iptables rules, so that it
// neither needs nor touches the machine's Docker. containerd is started and
// stopped by dockerd. No registry is needed: images are built from a tar
// context through the Engine API.
//
// A test binary usually starts one daemon:
//
//	func TestDocker(t *testing.T) {
//		d := dockertest.New(t) // skipped (or failed when CI=true) without dockerd
//		app, err := d.RunApp(ctx, dockertest.AppConfig{Name: "odoo-web-1"})
//		...
//	}
package dockertest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
)

// Daemon is a private dockerd.
type Daemon struct {
	dir    string // temporary directory holding everything of the daemon
	bin    string
	client *client.Client

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited

	appOnce  sync.Once
	appImage string
	appErr   error

	odooOnce sync.Once
	odooErr  error
}

// InCI reports whether the tests run in CI (the CI environment variable is
// "true" or "1"), where a missing Docker daemon is a failure, not a skip.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// Require ends tb when err, the error of Start, is not nil: with a failure
// in CI (see InCI), with a skip elsewhere. The message says why dockerd
// could not start.
func Require(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if InCI() {
		tb.Fatalf("dockertest: a Docker daemon is required in CI: %v", err)
	}
	tb.Skipf("dockertest: skipping, no Docker daemon: %v", err)
}

// New starts a daemon for tb and removes it when tb ends. Without a daemon
// tb is skipped, or failed in CI (see Require).
func New(tb testing.TB) *Daemon {
	tb.Helper()
	d, err := Start()
	Require(tb, err)
	tb.Cleanup(d.Close)
	return d
}

// Start starts a daemon; the caller must Close it.
func Start() (*Daemon, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("dockerd must run as root")
	}
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/dockerd"); serr != nil {
			return nil, fmt.Errorf("dockerd not found (install Debian's docker.io, see scripts/install-deps.sh): %w", err)
		}
		bin = "/usr/sbin/dockerd"
	}
	// Unix socket paths are limited to 108 bytes: keep the directory short.
	parent := os.TempDir()
	if len(parent) > 40 {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "dockertest-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	d := &Daemon{dir: dir, bin: bin}
	d.client, err = client.NewClientWithOpts(client.WithHost(d.Host()), client.WithAPIVersionNegotiation())
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := d.Start(); err != nil {
		d.Close()
		return nil, err
	}
	// Negotiate the API version now: the client's lazy negotiation races
	// with concurrent requests.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ping, err := d.client.Ping(ctx)
	if err != nil {
		d.Close()
		return nil, err
	}
	d.client.NegotiateAPIVersionPing(ping)
	return d, nil
}

// Host is the daemon's address in DOCKER_HOST form (unix:///.../docker.sock).
func (d *Daemon) Host() string { return "unix://" + filepath.Join(d.dir, "docker.sock") }

// Client returns a client of the daemon, shared by the callers; it
// survives Stop and Start.
func (d *Daemon) Client() *client.Client { return d.client }

// Dir is the daemon's temporary directory (its log is dockerd.log there).
func (d *Daemon) Dir() string { return d.dir }

// Start (re)starts a stopped daemon and waits until it answers.
func (d *Daemon) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return errors.New("dockertest: daemon already running")
	}
	log, err := os.OpenFile(filepath.Join(d.dir, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(d.bin,
		"--config-file", filepath.Join(d.dir, "daemon.json"),
		"--host", d.Host(),
		"--data-root", filepath.Join(d.dir, "data"),
		"--exec-root", filepath.Join(d.dir, "exec"),
		"--pidfile", filepath.Join(d.dir, "docker.pid"),
		"--bridge=none", "--iptables=false", "--ip6tables=false",
	)
	cmd.Stdout, cmd.Stderr = log, log
	// If the test binary dies without cleaning up, dockerd is told to stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dockertest: starting dockerd: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	d.cmd, d.done = cmd, done

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := d.client.Ping(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			d.cmd, d.done = nil, nil
			return fmt.Errorf("dockertest: dockerd exited: %v\n%s", cmd.ProcessState, d.logTail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stopLocked()
			return fmt.Errorf("dockertest: dockerd did not answer within 60s: %v\n%s", err, d.logTail())
		}
	}
}

// Stop stops the daemon (SIGTERM: containers are stopped, as on a host
// shutdown) and keeps its data for Start.
func (d *Daemon) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopLocked()
}

func (d *Daemon) stopLocked() error {
	if d.cmd == nil {
		return nil
	}
	cmd, done := d.cmd, d.done
	d.cmd, d.done = nil, nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("dockertest: dockerd did not stop within 60s, killed")
	}
	// Drop the connections to the old daemon.
	d.client.HTTPClient().CloseIdleConnections()
	return nil
}

// Freeze stops the daemon's process (SIGSTOP), as a daemon that hangs:
// its API accepts connections and answers nothing; containers keep
// running. Thaw resumes it.
func (d *Daemon) Freeze() error {
	if err := d.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	// The signal is only queued when kill returns: wait until every thread
	// of the daemon is stopped, or a request sent at once may be answered.
	d.mu.Lock()
	pid := d.cmd.Process.Pid
	d.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for !allThreadsStopped(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("dockertest: dockerd (pid %d) not stopped 5s after SIGSTOP", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// allThreadsStopped reports whether every thread of pid is in state T
// (stopped), read from /proc/<pid>/task/*/stat.
func allThreadsStopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			return false
		}
		// The state follows the command, which is in parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// Thaw resumes a daemon stopped by Freeze.
func (d *Daemon) Thaw() error { return d.signal(syscall.SIGCONT) }

func (d *Daemon) signal(s syscall.Signal) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return errors.New("dockertest: daemon not running")
	}
	return d.cmd.Process.Signal(s)
}

// Close stops the daemon and removes its files.
func (d *Daemon) Close() {
	_ = d.Stop()
	_ = d.client.Close()
	unmountUnder(d.dir)
	_ = os.RemoveAll(d.dir)
}

// unmountUnder detaches every mount below dir (the daemon's network
// namespace file, overlays left by a killed daemon), deepest first.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}

func (d *Daemon) logTail() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "dockerd.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// File is an extra file of an image built by BuildImage.
type File struct {
	Name string // path in the image, e.g. "etc/app.conf"
	Mode int64  // 0 means 0o644
	Data []byte
}

// BuildImage builds goPackage (an import path of this module, e.g.
// "github.com/odoo-exporter/odoo_exporter/internal/dockertest/testapp") as
// a static binary and builds the image tag FROM scratch with it as /app,
// the entrypoint, plus files.
func (d *Daemon) BuildImage(ctx context.Context, tag, goPackage string, files ...File) error {
	bin := filepath.Join(d.dir, "build-"+strings.NewReplacer("/", "_", ":", "_").Replace(tag))
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, goPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dockertest: go build %s: %v\n%s", goPackage, err, out)
	}
	defer os.Remove(bin)
	app, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	dockerfile := "FROM scratch\nCOPY app /app\n"
	all := []File{{Name: "app", Mode: 0o755, Data: app}}
	for _, f := range files {
		name := strings.TrimPrefix(f.Name, "/")
		dockerfile += fmt.Sprintf("COPY %s /%s\n", name, name)
		all = append(all, File{Name: name, Mode: f.Mode, Data: f.Data})
	}
	dockerfile += "ENTRYPOINT [\"/app\"]\n"
	all = append(all, File{Name: "Dockerfile", Data: []byte(dockerfile)})
	return d.BuildContext(ctx, tag, all...)
}

// BuildContext builds the image tag from a build context of files, which
// must hold the Dockerfile, with the classic builder.
func (d *Daemon) BuildContext(ctx context.Context, tag string, all ...File) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range all {
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.Name, Mode: mode, Size: int64(len(f.Data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	resp, err := d.client.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags:        []string{tag},
		Version:     build.BuilderV1, // BuildKit needs a session; the classic builder does not
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return fmt.Errorf("dockertest: building %s: %w", tag, err)
	}
	defer resp.Body.Close()
	// The build's outcome is in the stream of JSON messages.
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("dockertest: building %s: %w", tag, err)
		}
		if msg.Error != "" {
			return fmt.Errorf("dockertest: building %s: %s", tag, msg.Error)
		}
	}
}
