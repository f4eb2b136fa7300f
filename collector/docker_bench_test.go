package collector

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/internal/dockertest"
)

// BenchmarkDockerScrape measures, in each stats mode, one Update of the
// docker collector over 50 running containers (list, 50 inspects, 50
// stats: one-shot requests, or the latest samples of the open streams),
// then the real exporter binary scraped over HTTP on the same containers:
// its scrape time and resident memory. In stream mode it also reports the
// machine's CPU (in cores) while the 50 streams are open and nothing is
// scraped, and after they are closed.
//
//	go test -run '^$' -bench DockerScrape -benchtime 10x ./collector/
func BenchmarkDockerScrape(b *testing.B) {
	const n = 50
	d := dockertest.New(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := d.TestAppImage(ctx); err != nil {
		b.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
		mu   sync.Mutex
		errs []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, err := d.RunApp(ctx, dockertest.AppConfig{
				Name:   fmt.Sprintf("odoo-bench-%02d", i),
				Labels: map[string]string{composeProjectLabel: "odoo", composeServiceLabel: fmt.Sprintf("web%02d", i)},
			})
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		b.Fatal(errs[0])
	}
	for _, mode := range []string{StatsOneShot, StatsStream} {
		b.Run(mode, func(b *testing.B) { benchDockerMode(b, d, mode, n) })
	}
}

func benchDockerMode(b *testing.B, d *dockertest.Daemon, mode string, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := NewDockerCollector(DockerOptions{Host: d.Host(), NamePattern: "odoo", StatsMode: mode, Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	update := func() {
		ch := make(chan prometheus.Metric, 1024)
		done := make(chan int)
		go func() {
			k := 0
			for range ch {
				k++
			}
			done <- k
		}()
		err := c.Update(ctx, ch)
		close(ch)
		if k := <-done; err != nil || k < 6*n {
			b.Fatalf("Update: %d metrics, %v", k, err)
		}
	}
	update() // in stream mode: opens the streams, as the first scrape does
	b.ResetTimer()
	for b.Loop() {
		update()
	}
	b.StopTimer()
	if mode == StatsStream {
		b.ReportMetric(busyCores(b, 10*time.Second), "cpu_cores_streams_open")
		c.Close()
		b.ReportMetric(busyCores(b, 10*time.Second), "cpu_cores_streams_closed")
	}

	scrape, rss, hwm := benchExporterBinary(b, d.Host(), mode)
	b.ReportMetric(scrape.Seconds(), "exporter_scrape_seconds")
	b.ReportMetric(float64(rss), "exporter_rss_bytes")
	b.ReportMetric(float64(hwm), "exporter_rss_peak_bytes")
}

// busyCores is the machine's CPU use over d, in cores (from /proc/stat).
func busyCores(b *testing.B, d time.Duration) float64 {
	read := func() (busy, total float64) {
		raw, err := os.ReadFile("/proc/stat")
		if err != nil {
			b.Fatal(err)
		}
		line, _, _ := strings.Cut(string(raw), "\n")
		for i, f := range strings.Fields(line)[1:] {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				b.Fatal(err)
			}
			total += v
			if i != 3 && i != 4 { // idle, iowait
				busy += v
			}
		}
		return busy, total
	}
	b0, t0 := read()
	time.Sleep(d)
	b1, t1 := read()
	return (b1 - b0) / (t1 - t0) * float64(runtime.NumCPU())
}

// benchExporterBinary builds and runs cmd/odoo_exporter with only the
// docker collector, scrapes it 10 times and returns the mean scrape time
// and its VmRSS and VmHWM afterwards.
func benchExporterBinary(b *testing.B, host, mode string) (time.Duration, int64, int64) {
	bin := filepath.Join(b.TempDir(), "odoo_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/odoo_exporter").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--collector.docker", "--docker.host="+host, "--collector.docker.stats-mode="+mode, "--log.level=warn")
	cmd.Env = append(os.Environ(), "ODOO_EXPORTER_PG_DSN=")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	get := func() error {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `odoo_exporter_collector_success{collector="docker"} 1`) {
			return fmt.Errorf("scrape: %s\n%.2000s", resp.Status, body)
		}
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for get() != nil {
		if time.Now().After(deadline) {
			b.Fatalf("exporter not answering: %v", get())
		}
		time.Sleep(100 * time.Millisecond)
	}
	const scrapes = 10
	begin := time.Now()
	for range scrapes {
		if err := get(); err != nil {
			b.Fatal(err)
		}
	}
	mean := time.Since(begin) / scrapes
	return mean, procStatus(b, cmd.Process.Pid, "VmRSS"), procStatus(b, cmd.Process.Pid, "VmHWM")
}

func procStatus(b *testing.B, pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb * 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
