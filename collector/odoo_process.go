package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/odooproc"
)

var (
	odooProcFS = kingpin.Flag("collector.odoo_process.procfs",
		"Host mode: the proc file system to read Odoo's processes from (/proc; /host/proc in a container that mounts the host's). Unused with --collector.odoo_process.container.").
		Default("/proc").String()
	odooProcContainers = kingpin.Flag("collector.odoo_process.container",
		"Container mode: name of a Docker container running Odoo, whose processes are read through the Engine API of --docker.host (container top); repeatable. Nothing is mounted or executed in the container.").
		Strings()
	odooProcMatch = kingpin.Flag("collector.odoo_process.match",
		"Only Odoo servers whose master's command line matches this regular expression (unanchored; empty: every Odoo server seen), for a host running several Odoo instances.").
		Default("").String()
	odooProcConfig = kingpin.Flag("collector.odoo_process.config",
		"Odoo's configuration file as the exporter sees it, read for Odoo's limits (limit_memory_soft, workers, ...); empty: the file the master's command line names (-c), read in host mode through <procfs>/<pid>/root.").
		Default("").String()
	odooProcPerPID = kingpin.Flag("collector.odoo_process.per-pid",
		"Also export each Odoo process's memory and start time with a pid label (a new series for every replaced worker).").
		Default("false").Bool()
)

func init() {
	registerCollector("odoo_process", false, func(d Deps) (any, error) {
		return NewOdooProcessCollector(OdooProcessOptions{
			ProcFS: *odooProcFS, Containers: *odooProcContainers, DockerHost: *dockerHost,
			Match: *odooProcMatch, ConfigFile: *odooProcConfig, PerPID: *odooProcPerPID,
			Logger: d.Logger,
		})
	})
}

// OdooProcessOptions configures the odoo_process collector.
type OdooProcessOptions struct {
	// ProcFS is the proc file system of host mode (default /proc).
	ProcFS string
	// Containers, when set, select container mode: the named containers'
	// processes are read through the Engine API at DockerHost.
	Containers []string
	DockerHost string
	// Match selects the Odoo servers by their master's command line.
	Match string
	// ConfigFile is Odoo's configuration file; empty: the master's -c.
	ConfigFile string
	// PerPID adds the per-process series.
	PerPID bool
	Logger *slog.Logger
}

// OdooProcessCollector reads Odoo's processes, on the host (/proc) or in
// containers (Docker's container top), classifies them with package
// odooproc (master, http, cron, gevent) and exports per kind their count
// against the configured one, their resident and virtual memory, the age
// of the oldest and youngest, and worker replacements (a new pid of a
// kind under the same master) and master starts as counters; Odoo's
// limits from its configuration. Labels: name (the container; empty on
// the host) and kind; pid only with PerPID.
type OdooProcessCollector struct {
	opts   OdooProcessOptions
	match  *regexp.Regexp
	docker *client.Client
	logger *slog.Logger

	mu    sync.Mutex
	state map[string]*procState // by name
}

// procState is what the collector remembers of one name between
// collections.
type procState struct {
	seen         bool              // a list was read once
	masters      map[int]time.Time // master pid -> start
	pids         map[int]bool      // every Odoo pid of the last list
	replacements map[odooproc.Kind]float64
	masterStarts float64
}

// NewOdooProcessCollector returns an odoo_process collector.
func NewOdooProcessCollector(opts OdooProcessOptions) (*OdooProcessCollector, error) {
	if opts.ProcFS == "" {
		opts.ProcFS = "/proc"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &OdooProcessCollector{opts: opts, logger: opts.Logger, state: map[string]*procState{}}
	if opts.Match != "" {
		re, err := regexp.Compile(opts.Match)
		if err != nil {
			return nil, fmt.Errorf("--collector.odoo_process.match: %w", err)
		}
		c.match = re
	}
	if len(opts.Containers) > 0 {
		cli, err := newDockerClient(opts.DockerHost)
		if err != nil {
			return nil, err
		}
		c.docker = cli
	}
	return c, nil
}

// Close releases the Docker client's connections.
func (c *OdooProcessCollector) Close() error {
	if c.docker != nil {
		return c.docker.Close()
	}
	return nil
}

var (
	procLabels     = []string{"name", "kind"}
	procListUpDesc = prometheus.NewDesc("odoo_process_list_up",
		"Whether the process list could be read (1): /proc in host mode, the container top in container mode (a stopped container reads 1 with no process).",
		[]string{"name"}, nil)
	procMastersDesc = prometheus.NewDesc("odoo_process_masters",
		"Odoo master processes found (0: Odoo does not run; more than 1: several servers, see --collector.odoo_process.match).",
		[]string{"name"}, nil)
	procCountDesc = prometheus.NewDesc("odoo_processes",
		"Odoo processes by kind: master, http (HTTP workers), cron (cron workers), gevent (the longpolling/websocket process).",
		procLabels, nil)
	procExpectedDesc = prometheus.NewDesc("odoo_process_expected",
		"Processes of the kind Odoo's configuration starts (http: workers, cron: max_cron_threads, gevent: 1, in prefork mode); only when the configuration is known.",
		procLabels, nil)
	procRSSDesc = prometheus.NewDesc("odoo_process_resident_memory_bytes",
		"Resident memory of the kind's processes, summed.",
		procLabels, nil)
	procRSSMaxDesc = prometheus.NewDesc("odoo_process_resident_memory_max_bytes",
		"Resident memory of the kind's largest process.",
		procLabels, nil)
	procVMSMaxDesc = prometheus.NewDesc("odoo_process_virtual_memory_max_bytes",
		"Virtual memory of the kind's largest process (what Odoo's limit_memory_soft and limit_memory_hard bound).",
		procLabels, nil)
	procOldestDesc = prometheus.NewDesc("odoo_process_oldest_age_seconds",
		"Age of the kind's oldest process.",
		procLabels, nil)
	procYoungestDesc = prometheus.NewDesc("odoo_process_youngest_age_seconds",
		"Age of the kind's youngest process (small and repeatedly so: workers are being replaced).",
		procLabels, nil)
	procReplacementsDesc = prometheus.NewDesc("odoo_process_replacements_total",
		"New processes of the kind under a master already seen: workers Odoo replaced (recycled past limit_memory_soft or limit_request, killed past a time limit or limit_memory_hard, crashed) or restarted on SIGHUP; counted between two collections by new pid.",
		procLabels, nil)
	procMasterStartsDesc = prometheus.NewDesc("odoo_process_master_starts_total",
		"Odoo masters that appeared (a new pid or start time) after the collector's first look: Odoo (re)started.",
		[]string{"name"}, nil)
	procMasterStartDesc = prometheus.NewDesc("odoo_process_master_start_time_seconds",
		"Start time of the (oldest) Odoo master, Unix seconds.",
		[]string{"name"}, nil)
	procConfigReadDesc = prometheus.NewDesc("odoo_process_config_file_read",
		"Whether Odoo's configuration file was read (1); 0: the limits are unknown unless the command line gives them.",
		[]string{"name"}, nil)
	procMemSoftDesc = prometheus.NewDesc("odoo_process_limit_memory_soft_bytes",
		"Odoo's limit_memory_soft for the kind (limit_memory_soft_gevent for gevent on Odoo 18+): a worker past it on virtual memory is recycled after its request; 0: no limit.",
		procLabels, nil)
	procMemHardDesc = prometheus.NewDesc("odoo_process_limit_memory_hard_bytes",
		"Odoo's limit_memory_hard for the kind (RLIMIT_AS: an allocation past it fails with MemoryError); 0: no limit.",
		procLabels, nil)
	procTimeCPUDesc = prometheus.NewDesc("odoo_process_limit_time_cpu_seconds",
		"Odoo's limit_time_cpu: CPU seconds per request before the worker is killed.",
		[]string{"name"}, nil)
	procTimeRealDesc = prometheus.NewDesc("odoo_process_limit_time_real_seconds",
		"Odoo's limit_time_real for http, limit_time_real_cron (or limit_time_real) for cron: wall-clock seconds before the master kills the worker; 0: no limit.",
		procLabels, nil)
	procPIDRSSDesc = prometheus.NewDesc("odoo_process_pid_resident_memory_bytes",
		"Resident memory of one Odoo process (--collector.odoo_process.per-pid).",
		[]string{"name", "kind", "pid"}, nil)
	procPIDVMSDesc = prometheus.NewDesc("odoo_process_pid_virtual_memory_bytes",
		"Virtual memory of one Odoo process (--collector.odoo_process.per-pid).",
		[]string{"name", "kind", "pid"}, nil)
	procPIDStartDesc = prometheus.NewDesc("odoo_process_pid_start_time_seconds",
		"Start time of one Odoo process, Unix seconds (--collector.odoo_process.per-pid).",
		[]string{"name", "kind", "pid"}, nil)
)

// Describe implements Collector.
func (c *OdooProcessCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{procListUpDesc, procMastersDesc, procCountDesc, procExpectedDesc,
		procRSSDesc, procRSSMaxDesc, procVMSMaxDesc, procOldestDesc, procYoungestDesc, procReplacementsDesc,
		procMasterStartsDesc, procMasterStartDesc, procConfigReadDesc, procMemSoftDesc, procMemHardDesc,
		procTimeCPUDesc, procTimeRealDesc, procPIDRSSDesc, procPIDVMSDesc, procPIDStartDesc} {
		ch <- d
	}
}

// Update implements Collector. A process list that cannot be read is
// odoo_process_list_up 0 and fails the collector; the counters keep their
// values.
func (c *OdooProcessCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	if c.docker == nil {
		ps, err := odooproc.ReadProcFS(c.opts.ProcFS)
		return c.report(ctx, "", ps, err, ch)
	}
	var errs []error
	for _, name := range c.opts.Containers {
		ps, err := c.top(ctx, name)
		errs = append(errs, c.report(ctx, name, ps, err, ch))
	}
	return errors.Join(errs...)
}

// top lists the Odoo processes of container name; a container that does
// not run has none.
func (c *OdooProcessCollector) top(ctx context.Context, name string) ([]odooproc.Process, error) {
	now := time.Now()
	top, err := c.docker.ContainerTop(ctx, name, odooproc.TopArgs)
	if err != nil {
		if cerrdefs.IsConflict(err) { // "container ... is not running"
			return nil, nil
		}
		return nil, fmt.Errorf("container %q: top: %w", name, err)
	}
	ps, err := odooproc.ParseTop(top.Titles, top.Processes, now)
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", name, err)
	}
	return ps, nil
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// report sends the metrics of name from its process list ps (or the error
// reading it).
func (c *OdooProcessCollector) report(ctx context.Context, name string, ps []odooproc.Process, listErr error, ch chan<- prometheus.Metric) error {
	now := time.Now()
	var servers []odooproc.Server
	for _, s := range odooproc.Find(ps) {
		if c.match == nil || c.match.MatchString(s.Master.Cmd) {
			servers = append(servers, s)
		}
	}

	c.mu.Lock()
	st := c.state[name]
	if st == nil {
		st = &procState{replacements: map[odooproc.Kind]float64{}}
		c.state[name] = st
	}
	var masterStart time.Time
	if listErr == nil {
		masterStart = st.update(servers, now)
	}
	for _, k := range odooproc.Kinds {
		ch <- prometheus.MustNewConstMetric(procReplacementsDesc, prometheus.CounterValue, st.replacements[k], name, string(k))
	}
	ch <- prometheus.MustNewConstMetric(procMasterStartsDesc, prometheus.CounterValue, st.masterStarts, name)
	c.mu.Unlock()

	if listErr != nil {
		gauge(ch, procListUpDesc, 0, name)
		return listErr
	}
	gauge(ch, procListUpDesc, 1, name)
	gauge(ch, procMastersDesc, float64(len(servers)), name)
	for k, s := range odooproc.Aggregate(servers) {
		kind := string(k)
		gauge(ch, procCountDesc, float64(s.Count), name, kind)
		if s.Count == 0 {
			continue
		}
		gauge(ch, procRSSDesc, float64(s.RSSSum), name, kind)
		gauge(ch, procRSSMaxDesc, float64(s.RSSMax), name, kind)
		gauge(ch, procVMSMaxDesc, float64(s.VMSMax), name, kind)
		if !s.Oldest.IsZero() {
			gauge(ch, procOldestDesc, max(now.Sub(s.Oldest).Seconds(), 0), name, kind)
			gauge(ch, procYoungestDesc, max(now.Sub(s.Youngest).Seconds(), 0), name, kind)
		}
	}
	if len(servers) == 0 {
		return nil
	}
	if !masterStart.IsZero() {
		gauge(ch, procMasterStartDesc, float64(masterStart.UnixNano())/1e9, name)
	}
	if c.opts.PerPID {
		for _, s := range servers {
			ws := append([]odooproc.Worker{{Process: s.Master, Kind: odooproc.Master}}, s.Workers...)
			for _, w := range ws {
				pid, kind := strconv.Itoa(w.PID), string(w.Kind)
				gauge(ch, procPIDRSSDesc, float64(w.RSS), name, kind, pid)
				gauge(ch, procPIDVMSDesc, float64(w.VMS), name, kind, pid)
				if !w.Start.IsZero() {
					gauge(ch, procPIDStartDesc, float64(w.Start.UnixNano())/1e9, name, kind, pid)
				}
			}
		}
	}
	c.reportConfig(ctx, name, servers[0].Master, ch)
	return nil
}

// newWorkerGrace is how old a new worker must be to be counted as a
// replacement (a container top dates a start to the second).
const newWorkerGrace = 2 * time.Second

// update records the servers of a new list and counts the new masters and
// the new workers of known masters; it returns the start of the oldest
// master as first seen (a container top dates a start to the second).
func (st *procState) update(servers []odooproc.Server, now time.Time) time.Time {
	masters := map[int]time.Time{}
	pids := map[int]bool{}
	var oldest time.Time
	for _, s := range servers {
		m := s.Master
		start, known := st.masters[m.PID]
		// The same pid started again (a restarted container's PID 1): the
		// start moved by more than the second a container top rounds to.
		if known && (m.Start.Sub(start) > 2*time.Second || start.Sub(m.Start) > 2*time.Second) {
			known = false
		}
		if !known {
			start = m.Start
			if st.seen {
				st.masterStarts++
			}
		}
		masters[m.PID] = start
		if oldest.IsZero() || start.Before(oldest) {
			oldest = start
		}
		pids[m.PID] = true
		for _, w := range s.Workers {
			if known && !st.pids[w.PID] {
				if !w.Start.IsZero() && now.Sub(w.Start) < newWorkerGrace {
					// Not yet: a cron worker is niced just after its fork;
					// counted at the next collection under its final kind.
					continue
				}
				st.replacements[w.Kind]++
			}
			pids[w.PID] = true
		}
	}
	st.masters, st.pids, st.seen = masters, pids, true
	return oldest
}

// reportConfig sends Odoo's limits as master runs with them: Odoo's
// defaults, the configuration file (--collector.odoo_process.config, else
// the master's -c read through the proc file system in host mode), the
// master's command-line options. Nothing is sent when the master names a
// file the exporter cannot read.
func (c *OdooProcessCollector) reportConfig(ctx context.Context, name string, master odooproc.Process, ch chan<- prometheus.Metric) {
	cfg := odooproc.DefaultConfig()
	path, read := c.opts.ConfigFile, 0.0
	if path == "" {
		path = c.masterConfigPath(ctx, name, master)
	}
	if path != "" {
		err := readOdooConfig(path, &cfg)
		if err != nil {
			c.logger.Debug("odoo_process: Odoo's configuration file not read, its limits are not exported", "name", name, "file", path, "err", err)
			gauge(ch, procConfigReadDesc, 0, name)
			return
		}
		read = 1
	}
	if err := cfg.ApplyArgs(master.Cmd); err != nil {
		c.logger.Debug("odoo_process: the master's command line", "name", name, "err", err)
	}
	gauge(ch, procConfigReadDesc, read, name)
	for _, k := range odooproc.Kinds {
		kind := string(k)
		gauge(ch, procExpectedDesc, float64(cfg.Expected(k)), name, kind)
		if k == odooproc.Master {
			continue
		}
		gauge(ch, procMemSoftDesc, float64(cfg.MemorySoft(k)), name, kind)
		gauge(ch, procMemHardDesc, float64(cfg.MemoryHard(k)), name, kind)
		if k != odooproc.Gevent {
			gauge(ch, procTimeRealDesc, cfg.TimeReal(k), name, kind)
		}
	}
	gauge(ch, procTimeCPUDesc, cfg.LimitTimeCPU, name)
}

// masterConfigPath returns the configuration file Odoo's master reads,
// from its command line (-c) or its ODOO_RC variable, as the exporter can
// open it: in host mode through <procfs>/<pid>/root (the master's own
// file system, also from another container sharing the PID namespace).
// In container mode the file is in the container: a path the exporter
// cannot open, reported as not read (set --collector.odoo_process.config).
func (c *OdooProcessCollector) masterConfigPath(ctx context.Context, name string, master odooproc.Process) string {
	path := odooproc.ConfigFileArg(master.Cmd)
	if c.docker != nil {
		if path != "" {
			return "container:" + path
		}
		if ci, err := c.docker.ContainerInspect(ctx, name); err == nil && ci.Config != nil {
			for _, e := range ci.Config.Env {
				if v, ok := strings.CutPrefix(e, "ODOO_RC="); ok {
					return "container:" + v
				}
			}
		}
		return ""
	}
	proc := filepath.Join(c.opts.ProcFS, strconv.Itoa(master.PID))
	if path == "" {
		env, err := os.ReadFile(filepath.Join(proc, "environ"))
		if err != nil {
			return ""
		}
		for e := range strings.SplitSeq(string(env), "\x00") {
			if v, ok := strings.CutPrefix(e, "ODOO_RC="); ok {
				path = v
			}
		}
		if path == "" {
			return ""
		}
	}
	if !filepath.IsAbs(path) {
		return filepath.Join(proc, "cwd", path)
	}
	return filepath.Join(proc, "root", path)
}

// readOdooConfig applies Odoo's configuration file path to cfg.
func readOdooConfig(path string, cfg *odooproc.Config) error {
	if p, ok := strings.CutPrefix(path, "container:"); ok {
		return fmt.Errorf("%s is inside the container: give it with --collector.odoo_process.config", p)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := cfg.ReadConfigFile(f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
