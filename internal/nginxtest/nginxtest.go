// Package nginxtest starts a real nginx (Debian's /usr/sbin/nginx) on a
// free loopback port as a reverse proxy in front of an upstream, for
// tests: the public side of an Odoo behind a proxy. Its prefix, config,
// pid, logs and temp directories live in a temporary directory. The
// upstream can be switched (e.g. to a dead port, "broken proxy") with a
// reload, as an operator's bad config change would.
package nginxtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary finds nginx: $NGINX, then /usr/sbin/nginx, then $PATH.
func Binary() (string, error) {
	if p := os.Getenv("NGINX"); p != "" {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	p, err := exec.LookPath("nginx")
	if err != nil {
		return "", errors.New("nginxtest: nginx not found (install Debian's nginx package or set NGINX)")
	}
	return p, nil
}

// Proxy is a running nginx.
type Proxy struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
	mu       sync.Mutex
	upstream string // host:port of the web upstream
	gevent   string // host:port for /websocket, "" = same as upstream
	gen      int    // config generation, served at /__nginxtest/generation
	exited   chan struct{}
}

// Start starts nginx proxying to upstream (host:port) and, when gevent is
// not empty, /websocket to gevent (host:port) with the upgrade headers,
// as Odoo's documented nginx config does.
func Start(upstream, gevent string) (*Proxy, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nginxtest-")
	if err != nil {
		return nil, err
	}
	// Workers run as an unprivileged user unless told otherwise: run them
	// as the current user (root in CI) and let them read the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &Proxy{bin: bin, dir: dir, port: port, upstream: upstream, gevent: gevent, exited: make(chan struct{})}
	if err := p.writeConf(); err != nil {
		return nil, err
	}
	if out, err := exec.Command(bin, p.args("-t")...).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("nginxtest: nginx -t: %v: %s", err, out)
	}
	p.cmd = exec.Command(bin, p.args()...)
	var stderr bytes.Buffer
	p.cmd.Stderr = &stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("nginxtest: starting nginx: %w", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	if err := p.waitGeneration(5 * time.Second); err != nil {
		p.Stop()
		return nil, fmt.Errorf("nginxtest: %w: %s%s", err, stderr.String(), p.errorLog())
	}
	return p, nil
}

// New starts a proxy for tb and stops it when tb ends.
func New(tb testing.TB, upstream, gevent string) *Proxy {
	tb.Helper()
	p, err := Start(upstream, gevent)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Stop)
	return p
}

func (p *Proxy) args(extra ...string) []string {
	return append([]string{"-p", p.dir + "/", "-c", filepath.Join(p.dir, "nginx.conf"),
		"-e", filepath.Join(p.dir, "error.log")}, extra...)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (p *Proxy) writeConf() error {
	p.gen++
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;"
	}
	gevent := p.gevent
	if gevent == "" {
		gevent = p.upstream
	}
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
%[1]s
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    upstream odoo { server %[4]s; }
    upstream odoochat { server %[5]s; }
    server {
        listen 127.0.0.1:%[3]d;
        proxy_connect_timeout 2s;
        proxy_read_timeout 60s;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        location = /__nginxtest/generation { return 200 "%[6]d"; }
        location /websocket {
            proxy_pass http://odoochat;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
        }
        location / { proxy_pass http://odoo; }
    }
}
`, user, p.dir, p.port, p.upstream, gevent, p.gen)
	return os.WriteFile(filepath.Join(p.dir, "nginx.conf"), []byte(conf), 0o644)
}

// waitGeneration waits until nginx serves the current config generation.
func (p *Proxy) waitGeneration(timeout time.Duration) error {
	want := strconv.Itoa(p.gen)
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-p.exited:
			return errors.New("nginx exited")
		default:
		}
		resp, err := client.Get(p.URL() + "/__nginxtest/generation")
		if err == nil {
			var b [16]byte
			n, _ := resp.Body.Read(b[:])
			resp.Body.Close()
			if strings.TrimSpace(string(b[:n])) == want {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nginx did not serve config generation %s within %v (last error: %v)", want, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is the proxy's base URL (http://127.0.0.1:port).
func (p *Proxy) URL() string { return "http://127.0.0.1:" + strconv.Itoa(p.port) }

// SetUpstream points the proxy at another web upstream (host:port) and
// reloads nginx, waiting until the new config is served.
func (p *Proxy) SetUpstream(upstream string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.upstream = upstream
	if err := p.writeConf(); err != nil {
		return err
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("nginxtest: reload: %w", err)
	}
	if err := p.waitGeneration(5 * time.Second); err != nil {
		return fmt.Errorf("nginxtest: reload: %w%s", err, p.errorLog())
	}
	return nil
}

// Break points the web upstream at a port nobody listens on, so that the
// proxy answers 502 while the upstream itself is fine.
func (p *Proxy) Break() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	return p.SetUpstream("127.0.0.1:" + strconv.Itoa(port))
}

func (p *Proxy) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "error.log"))
	if len(b) == 0 {
		return ""
	}
	return "\nnginx error.log:\n" + string(b)
}

// Stop stops nginx (fast shutdown) and removes its directory.
func (p *Proxy) Stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	os.RemoveAll(p.dir)
}
