package heal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/odoo-exporter/odoo_exporter/odooproc"
)

// inspectTarget inspects the container named name. Docker resolves a
// reference as an ID, a name or an ID prefix; only the container whose
// name is name is accepted, so that an allow-listed target never
// resolves to another container. The actions then act on, and verify,
// the returned container's ID: a container recreated under the same name
// in between (a new ID) is not the one that was inspected.
func inspectTarget(ctx context.Context, env *Env, name string) (container.InspectResponse, error) {
	if env.Docker == nil {
		return container.InspectResponse{}, errors.New("no Docker API configured")
	}
	c, err := env.Docker.ContainerInspect(ctx, name)
	if err != nil {
		return c, fmt.Errorf("inspecting container %q: %w", name, err)
	}
	if got := strings.TrimPrefix(c.Name, "/"); got != name {
		return c, fmt.Errorf("target %q resolves to container %q (ID %.12s), not %s: targets must be container names", name, got, c.ID, name)
	}
	if c.State == nil {
		return c, fmt.Errorf("container %q: Docker returned no state", name)
	}
	return c, nil
}

// checkRunning inspects container id (named name) and checks that it
// runs, is healthy when it has a health check, and meets extra.
func checkRunning(ctx context.Context, env *Env, name, id string, extra func(*container.State) error) error {
	c, err := env.Docker.ContainerInspect(ctx, id)
	if err != nil {
		return fmt.Errorf("inspecting container %q: %w", name, err)
	}
	s := c.State
	if s == nil || !s.Running || s.Restarting {
		return fmt.Errorf("container %q is not running", name)
	}
	if err := extra(s); err != nil {
		return err
	}
	if s.Health != nil && s.Health.Status != container.Healthy {
		return fmt.Errorf("container %q is %s", name, s.Health.Status)
	}
	return nil
}

// HealthParams say how the Docker actions check that Odoo answers again:
// a GET of HealthURL (with "{target}" replaced by the container name) or
// of the target's entry in HealthURLs must answer 2xx. Every target of
// the rule must have one.
type HealthParams struct {
	HealthURL  string            `yaml:"health_url"`
	HealthURLs map[string]string `yaml:"health_urls"`
}

func (p HealthParams) checkTargets(targets []string) error {
	if err := p.checkURLs(); err != nil {
		return err
	}
	for _, t := range targets {
		if p.url(t) == "" {
			return fmt.Errorf("no health_url for container %q: set health_url (e.g. http://{target}:8069/web/health) or health_urls; a Docker action succeeds only once Odoo answers again", t)
		}
	}
	return nil
}

// checkURLs checks that the health URLs set are http(s) URLs.
func (p HealthParams) checkURLs() error {
	for _, u := range append([]string{p.HealthURL}, mapValues(p.HealthURLs)...) {
		if u == "" {
			continue
		}
		pu, err := url.Parse(strings.ReplaceAll(u, "{target}", "x"))
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return fmt.Errorf("health URL %q: want an http(s) URL", u)
		}
	}
	return nil
}

func mapValues(m map[string]string) []string {
	var vs []string
	for _, v := range m {
		vs = append(vs, v)
	}
	return vs
}

func (p HealthParams) url(target string) string {
	if u, ok := p.HealthURLs[target]; ok {
		return u
	}
	if p.HealthURL == "" {
		return ""
	}
	return strings.ReplaceAll(p.HealthURL, "{target}", target)
}

// healthClient is the HTTP client of health checks: no redirects, one
// check bounded by 5 s (and by the verify deadline).
var healthClient = &http.Client{
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// checkHealth fails unless a GET of u answers 2xx.
func checkHealth(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("health URL %s: %w", u, err)
	}
	resp, err := healthClient.Do(req)
	if err != nil {
		return fmt.Errorf("the health URL does not answer yet, Odoo does not (%s): %w", u, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the health URL does not answer yet: %s answered %s", u, resp.Status)
	}
	return nil
}

// execIn runs cmd in container id (docker exec, no TTY) and returns its
// standard output; a non-zero exit status is an error with its standard
// error.
func execIn(ctx context.Context, env *Env, id string, cmd []string) (string, error) {
	ex, err := env.Docker.ContainerExecCreate(ctx, id, container.ExecOptions{
		Cmd: cmd, AttachStdout: true, AttachStderr: true,
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"},
	})
	if err != nil {
		return "", fmt.Errorf("docker exec: %w", err)
	}
	att, err := env.Docker.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return "", fmt.Errorf("docker exec: %w", err)
	}
	defer att.Close()
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(&limitedWriter{w: &stdout, n: 1 << 20}, &limitedWriter{w: &stderr, n: 4096}, att.Reader)
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		return "", fmt.Errorf("docker exec: %w", ctx.Err())
	}
	if err != nil {
		return "", fmt.Errorf("docker exec: reading the output: %w", err)
	}
	ins, err := env.Docker.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return "", fmt.Errorf("docker exec: %w", err)
	}
	if ins.Running {
		return "", errors.New("docker exec: still running after its output ended")
	}
	if ins.ExitCode != 0 {
		return stdout.String(), fmt.Errorf("docker exec %s: exit status %d: %s", cmd[0], ins.ExitCode, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if len(q) > l.n {
		q = q[:l.n]
	}
	l.n -= len(q)
	_, err := l.w.Write(q)
	return len(p), err
}

// procListScript lists the container's processes from /proc of its PID
// namespace: first the boot time ("btime N", from /proc/stat), then one
// process a line: pid, the /proc/<pid>/stat line, the command line (NULs
// as spaces). It needs only a POSIX sh and tr (Debian's dash and coreutils
// in Odoo's image; busybox elsewhere).
const procListScript = `while read -r k v _; do
	if [ "$k" = btime ]; then echo "btime $v"; break; fi
done < /proc/stat
for d in /proc/[0-9]*; do
	p=${d#/proc/}
	s=$(cat "$d/stat" 2>/dev/null) || continue
	c=$(tr '\000' ' ' < "$d/cmdline" 2>/dev/null) || continue
	printf '%s\t%s\t%s\n' "$p" "$s" "$c"
done`

// listProcs lists the processes of container id, in the container's PID
// namespace.
func listProcs(ctx context.Context, env *Env, id string) ([]odooproc.Process, error) {
	out, err := execIn(ctx, env, id, []string{"/bin/sh", "-c", procListScript})
	if err != nil {
		return nil, fmt.Errorf("listing the container's processes: %w", err)
	}
	return parseProcs(out)
}

// parseProcs parses the output of procListScript into the processes
// odooproc.Find classifies: pid, parent, nice value, start time (it tells
// a reused pid apart), virtual memory and command line. Without a btime
// line the start times count from the Unix epoch instead of the boot:
// they still tell processes apart.
func parseProcs(out string) ([]odooproc.Process, error) {
	var (
		ps   []odooproc.Process
		boot = time.Unix(0, 0)
	)
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		if b, ok := strings.CutPrefix(line, "btime "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(b), 10, 64); err == nil {
				boot = time.Unix(n, 0)
			}
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		// stat: pid (comm) state ppid ... nice (field 19) ... starttime
		// (22) vsize (23); comm may hold spaces and parentheses, so split
		// after the last ')': field n is sf[n-3].
		i := strings.LastIndexByte(f[1], ')')
		if i < 0 {
			continue
		}
		sf := strings.Fields(f[1][i+1:])
		if len(sf) < 21 {
			continue
		}
		ppid, err1 := strconv.Atoi(sf[1])
		nice, err2 := strconv.Atoi(sf[16])
		start, err3 := strconv.ParseUint(sf[19], 10, 64)
		vms, err4 := strconv.ParseUint(sf[20], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			continue
		}
		ps = append(ps, odooproc.Process{
			PID: pid, PPID: ppid, Nice: nice, VMS: vms,
			Start: boot.Add(time.Duration(start) * (time.Second / clockTicks)),
			Cmd:   strings.TrimSpace(f[2]),
		})
	}
	if len(ps) == 0 {
		return nil, errors.New("no process found in /proc (is /bin/sh in the container?)")
	}
	return ps, nil
}

// clockTicks is the unit of /proc/<pid>/stat's start time (USER_HZ, 100
// on every Linux architecture Odoo runs on).
const clockTicks = 100
