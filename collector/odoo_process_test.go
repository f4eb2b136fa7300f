package collector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/odoo-exporter/odoo_exporter/internal/dockertest"
	"github.com/odoo-exporter/odoo_exporter/odooproc"
)

// odooConf is the configuration file the stand-in's command line names.
const odooConf = `[options]
workers = 2
max_cron_threads = 1
limit_memory_soft = 1073741824
limit_memory_soft_gevent = 536870912
limit_time_real_cron = 900
`

func procScrape(t testing.TB, c *OdooProcessCollector) metrics {
	t.Helper()
	return scrapeOnce(t, &Exporter{logger: testLogger(), collectors: map[string]Collector{"odoo_process": c}})
}

// checkOdooProcesses drives the Odoo stand-in app (master, 2 HTTP
// workers, 1 cron worker, the gevent process) and checks what the
// collector c reports under name: the classification against the
// stand-in's own list of its pids, memory growth of one worker, a worker
// replaced, the configuration's limits (when withConfig).
func checkOdooProcesses(t *testing.T, c *OdooProcessCollector, app *dockertest.App, name string, withConfig bool) {
	ctx := context.Background()
	procs, err := app.OdooProcs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs["http"]) != 2 || len(procs["cron"]) != 1 || len(procs["gevent"]) != 1 {
		t.Fatalf("stand-in processes: %v", procs)
	}
	m := procScrape(t, c)
	if v := m.value(t, "odoo_exporter_collector_success", "collector", "odoo_process"); v != 1 {
		t.Fatalf("collector failed:\n%s", m.names())
	}
	if v := m.value(t, "odoo_process_masters", "name", name); v != 1 {
		t.Fatalf("%v masters", v)
	}
	for kind, n := range map[string]float64{"master": 1, "http": 2, "cron": 1, "gevent": 1} {
		if v := m.value(t, "odoo_processes", "name", name, "kind", kind); v != n {
			t.Errorf("%s: %v processes, want %v", kind, v, n)
		}
		if v := m.value(t, "odoo_process_replacements_total", "name", name, "kind", kind); v != 0 {
			t.Errorf("%s: %v replacements at the first look", kind, v)
		}
	}
	// In host mode pids are the test's; in a container the stand-in sees
	// its namespace's and the collector the host's: compare counts there.
	if name == "" {
		for kind, pids := range procs {
			for _, pid := range pids {
				if !m.has("odoo_process_pid_resident_memory_bytes", "kind", kind, "pid", strconv.Itoa(pid)) {
					t.Errorf("%s pid %d not classified as %s:\n%s", kind, pid, kind, m.names())
				}
			}
		}
	}
	rss0 := m.value(t, "odoo_process_resident_memory_max_bytes", "name", name, "kind", "http")
	if old := m.value(t, "odoo_process_oldest_age_seconds", "name", name, "kind", "master"); old < 0 || old > 600 {
		t.Errorf("master age %v", old)
	}

	// One worker grows by 64 MiB (twice 32). Each growth is awaited before
	// the next: two SIGUSR1 sent before the worker runs are one signal to
	// the kernel (standard signals do not queue), as seen once under load.
	for i := range 2 {
		if _, err := app.OdooGrow(ctx); err != nil {
			t.Fatal(err)
		}
		want := rss0 + float64((i+1)*30<<20)
		eventually(t, 20*time.Second, fmt.Sprintf("the HTTP worker's memory to grow by %d MiB", (i+1)*32), func() bool {
			m = procScrape(t, c)
			return m.value(t, "odoo_process_resident_memory_max_bytes", "name", name, "kind", "http") >= want
		})
	}
	if v := m.value(t, "odoo_process_virtual_memory_max_bytes", "name", name, "kind", "http"); v < 64<<20 {
		t.Errorf("virtual memory max %v below the growth", v)
	}

	// The master replaces an HTTP worker, then the cron worker.
	newPID, err := app.OdooRecycle(ctx, "http")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.OdooRecycle(ctx, "cron"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the replaced workers to be counted", func() bool {
		m = procScrape(t, c)
		return m.value(t, "odoo_process_replacements_total", "name", name, "kind", "http") >= 1 &&
			m.value(t, "odoo_process_replacements_total", "name", name, "kind", "cron") >= 1
	})
	for kind, n := range map[string]float64{"master": 0, "http": 1, "cron": 1, "gevent": 0} {
		if v := m.value(t, "odoo_process_replacements_total", "name", name, "kind", kind); v != n {
			t.Errorf("%s: %v replacements, want %v", kind, v, n)
		}
	}
	if v := m.value(t, "odoo_processes", "name", name, "kind", "http"); v != 2 {
		t.Errorf("%v HTTP workers after the replacement", v)
	}
	if y, o := m.value(t, "odoo_process_youngest_age_seconds", "name", name, "kind", "http"),
		m.value(t, "odoo_process_oldest_age_seconds", "name", name, "kind", "http"); y > o {
		t.Errorf("youngest HTTP worker %vs older than the oldest %vs", y, o)
	}
	if name == "" && !m.has("odoo_process_pid_resident_memory_bytes", "kind", "http", "pid", strconv.Itoa(newPID)) {
		t.Errorf("the new worker %d is not listed as http", newPID)
	}
	if v := m.value(t, "odoo_process_master_starts_total", "name", name); v != 0 {
		t.Errorf("%v master starts", v)
	}

	if !withConfig {
		if m.has("odoo_process_limit_memory_soft_bytes") || m.value(t, "odoo_process_config_file_read", "name", name) != 0 {
			t.Error("limits exported without the configuration file")
		}
		return
	}
	if v := m.value(t, "odoo_process_config_file_read", "name", name); v != 1 {
		t.Fatalf("configuration file not read")
	}
	for _, tc := range []struct {
		metric, kind string
		want         float64
	}{
		{"odoo_process_expected", "http", 2}, {"odoo_process_expected", "cron", 1}, {"odoo_process_expected", "gevent", 1},
		{"odoo_process_limit_memory_soft_bytes", "http", 1 << 30}, {"odoo_process_limit_memory_soft_bytes", "gevent", 512 << 20},
		{"odoo_process_limit_memory_hard_bytes", "cron", 2560 << 20},
		{"odoo_process_limit_time_real_seconds", "cron", 900}, {"odoo_process_limit_time_real_seconds", "http", 120},
	} {
		if v := m.value(t, tc.metric, "name", name, "kind", tc.kind); v != tc.want {
			t.Errorf("%s{kind=%q} = %v, want %v", tc.metric, tc.kind, v, tc.want)
		}
	}
	if v := m.value(t, "odoo_process_limit_time_cpu_seconds", "name", name); v != 60 {
		t.Errorf("limit_time_cpu %v", v)
	}
}

// TestOdooProcessHost runs the Odoo stand-in on the host, as a child
// process of the test, and reads it through /proc, its configuration file
// through /proc/<pid>/root as the master's -c names it.
func TestOdooProcessHost(t *testing.T) {
	ctx := context.Background()
	conf := filepath.Join(t.TempDir(), "odoo.conf")
	if err := os.WriteFile(conf, []byte(odooConf), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := dockertest.StartOdooOnHost(ctx, t, dockertest.OdooConfig{Workers: 2, Cron: 1, Gevent: true, GrowMB: 32, ConfigFile: conf})
	if err != nil {
		t.Fatal(err)
	}
	// Only this stand-in: other tests or a real Odoo may run on the host.
	c, err := NewOdooProcessCollector(OdooProcessOptions{Match: regexp.QuoteMeta(h.Addr), PerPID: true, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	checkOdooProcesses(t, c, &h.App, "", true)

	// The master stops (Odoo down), then a new one starts: one master start.
	addr := h.Addr
	h.Stop()
	m := procScrape(t, c)
	if m.value(t, "odoo_process_masters", "name", "") != 0 || m.value(t, "odoo_processes", "name", "", "kind", "gevent") != 0 {
		t.Errorf("Odoo stopped but processes found:\n%s", m.names())
	}
	h2, err := dockertest.StartOdooOnHost(ctx, t, dockertest.OdooConfig{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.match = regexp.MustCompile(regexp.QuoteMeta(addr) + "|" + regexp.QuoteMeta(h2.Addr))
	m = procScrape(t, c)
	if v := m.value(t, "odoo_process_master_starts_total", "name", ""); v != 1 {
		t.Errorf("%v master starts, want 1", v)
	}
	// Its workers are no replacements: the master is new.
	if v := m.value(t, "odoo_process_replacements_total", "name", "", "kind", "http"); v != 1 {
		t.Errorf("%v HTTP replacements, want still 1", v)
	}
	// No configuration file named: Odoo's defaults and the command line.
	if v := m.value(t, "odoo_process_config_file_read", "name", ""); v != 0 {
		t.Errorf("config file read %v", v)
	}
	if v := m.value(t, "odoo_process_limit_memory_soft_bytes", "name", "", "kind", "http"); v != 2048<<20 {
		t.Errorf("default limit_memory_soft %v", v)
	}

	// A /proc that cannot be read is a metric and a failed collector.
	bad, err := NewOdooProcessCollector(OdooProcessOptions{ProcFS: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	m = procScrape(t, bad)
	if m.value(t, "odoo_process_list_up", "name", "") != 0 || m.value(t, "odoo_exporter_collector_success", "collector", "odoo_process") != 0 {
		t.Errorf("unreadable /proc:\n%s", m.names())
	}
	if _, err := NewOdooProcessCollector(OdooProcessOptions{Match: "("}); err == nil {
		t.Error("a bad --collector.odoo_process.match accepted")
	}
}

// TestOdooProcessContainer runs the Odoo stand-in in a container of the
// test dockerd and reads its processes through the Engine API's container
// top; the configuration file is given by flag (a host path), as in a
// Compose deployment that mounts it.
func TestOdooProcessContainer(t *testing.T) {
	d := dockertest.New(t)
	ctx := context.Background()
	conf := filepath.Join(t.TempDir(), "odoo.conf")
	if err := os.WriteFile(conf, []byte(odooConf), 0o644); err != nil {
		t.Fatal(err)
	}
	app, err := d.RunApp(ctx, dockertest.AppConfig{Name: "odoo-proc-web-1",
		Odoo: &dockertest.OdooConfig{Workers: 2, Cron: 1, Gevent: true, GrowMB: 32, ConfigFile: "/etc/odoo/odoo.conf"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewOdooProcessCollector(OdooProcessOptions{Containers: []string{app.Name}, DockerHost: d.Host(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkOdooProcesses(t, c, app, app.Name, false)

	// The file the master names is in the container: given by flag.
	withConf, err := NewOdooProcessCollector(OdooProcessOptions{Containers: []string{app.Name}, DockerHost: d.Host(), ConfigFile: conf})
	if err != nil {
		t.Fatal(err)
	}
	defer withConf.Close()
	m := procScrape(t, withConf)
	if v := m.value(t, "odoo_process_limit_memory_soft_bytes", "name", app.Name, "kind", "http"); v != 1<<30 {
		t.Errorf("limit_memory_soft %v from the flag's file", v)
	}

	// A stopped container has no process; a missing one is an error.
	if err := d.Client().ContainerKill(ctx, app.ID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the stopped container to have no process", func() bool {
		m = procScrape(t, c)
		return m.has("odoo_process_masters") && m.value(t, "odoo_process_masters", "name", app.Name) == 0
	})
	if m.value(t, "odoo_process_list_up", "name", app.Name) != 1 || m.value(t, "odoo_processes", "name", app.Name, "kind", "http") != 0 {
		t.Errorf("stopped container:\n%s", m.names())
	}
	if v := m.value(t, "odoo_process_replacements_total", "name", app.Name, "kind", "http"); v != 1 {
		t.Errorf("counter lost: %v", v)
	}
	missing, err := NewOdooProcessCollector(OdooProcessOptions{Containers: []string{"no-such-odoo"}, DockerHost: d.Host()})
	if err != nil {
		t.Fatal(err)
	}
	defer missing.Close()
	m = procScrape(t, missing)
	if m.value(t, "odoo_process_list_up", "name", "no-such-odoo") != 0 || m.value(t, "odoo_exporter_collector_success", "collector", "odoo_process") != 0 {
		t.Errorf("missing container:\n%s", m.names())
	}
}

// TestProcStateUpdate: what counts as a replacement and as a master start
// between two process lists.
func TestProcStateUpdate(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	now := t0.Add(time.Hour)
	proc := func(pid, ppid, nice int, start time.Time, cmd string) odooproc.Process {
		return odooproc.Process{PID: pid, PPID: ppid, Nice: nice, Start: start, Cmd: cmd}
	}
	master := proc(1, 0, 0, t0, "odoo-bin -c /etc/odoo.conf")
	w := func(pid, nice int, age time.Duration) odooproc.Process {
		return proc(pid, 1, nice, now.Add(-age), "odoo-bin -c /etc/odoo.conf")
	}
	type step struct {
		ps           []odooproc.Process
		http, cron   float64 // replacements after the step
		masterStarts float64
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"first look counts nothing", []step{
			{ps: []odooproc.Process{master, w(2, 0, time.Hour), w(3, 10, time.Hour)}},
		}},
		{"a new HTTP worker, a new cron worker", []step{
			{ps: []odooproc.Process{master, w(2, 0, time.Hour), w(3, 10, time.Hour)}},
			{ps: []odooproc.Process{master, w(4, 0, time.Minute), w(5, 10, time.Minute)}, http: 1, cron: 1},
			{ps: []odooproc.Process{master, w(4, 0, time.Minute), w(5, 10, time.Minute)}, http: 1, cron: 1},
		}},
		{"a cron worker seen before its os.nice is counted once, as cron", []step{
			{ps: []odooproc.Process{master, w(3, 10, time.Hour)}},
			{ps: []odooproc.Process{master, w(5, 0, 100*time.Millisecond)}},
			{ps: []odooproc.Process{master, w(5, 10, 3*time.Second)}, cron: 1},
		}},
		{"a new master's workers are no replacements", []step{
			{ps: []odooproc.Process{master, w(2, 0, time.Hour)}},
			{ps: nil},
			{ps: []odooproc.Process{proc(7, 0, 0, now.Add(-time.Minute), "odoo-bin"), proc(8, 7, 0, now.Add(-time.Minute), "odoo-bin")}, masterStarts: 1},
		}},
		{"a restarted container: PID 1 again, a later start", []step{
			{ps: []odooproc.Process{master, w(2, 0, time.Hour)}},
			{ps: []odooproc.Process{proc(1, 0, 0, now.Add(-time.Minute), "odoo-bin -c /etc/odoo.conf"), w(2, 0, time.Minute)}, masterStarts: 1},
		}},
		{"a container top's start jitter (1 s) is the same master", []step{
			{ps: []odooproc.Process{master, w(2, 0, time.Hour)}},
			{ps: []odooproc.Process{proc(1, 0, 0, t0.Add(time.Second), "odoo-bin -c /etc/odoo.conf"), w(2, 0, time.Hour)}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &procState{replacements: map[odooproc.Kind]float64{}}
			for i, s := range tc.steps {
				st.update(odooproc.Find(s.ps), now)
				if st.replacements[odooproc.HTTP] != s.http || st.replacements[odooproc.Cron] != s.cron || st.masterStarts != s.masterStarts {
					t.Errorf("step %d: http %v cron %v master starts %v, want %v %v %v", i,
						st.replacements[odooproc.HTTP], st.replacements[odooproc.Cron], st.masterStarts, s.http, s.cron, s.masterStarts)
				}
			}
		})
	}
}
