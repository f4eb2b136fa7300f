package collector

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/odoolog"
)

var (
	odooLogFiles = kingpin.Flag("collector.odoo_log.file",
		"Odoo log file to follow as tail -F (rename rotation, copytruncate, a file that appears later); repeatable. Only what is written after the start is read.").
		Strings()
	odooLogContainers = kingpin.Flag("collector.odoo_log.container",
		"Name or ID of a Docker container whose log (Odoo's stderr) is followed through the Engine API of --docker.host; repeatable. Re-attached across restarts, never a line counted twice.").
		Strings()
	odooLogCatalog = kingpin.Flag("collector.odoo_log.catalog",
		"YAML file of error catalog entries that extend the embedded catalog (an entry with an existing id replaces it; disabled: true removes it). See README.").
		Default("").String()
	odooLogPerJob = kingpin.Flag("collector.odoo_log.per-job",
		"Also count cron runs and their durations per job (odoo_log_cron_job_*; at most --collector.odoo_log.max-jobs jobs, the rest under job=\"other\").").
		Default("false").Bool()
	odooLogMaxJobs = kingpin.Flag("collector.odoo_log.max-jobs",
		"Bound of the job label with --collector.odoo_log.per-job.").
		Default("200").Int()
	odooLogMaxDatabases = kingpin.Flag("collector.odoo_log.max-databases",
		"Bound of the database label of the cron metrics (the rest under database=\"other\").").
		Default("500").Int()
	odooLogMaxClasses = kingpin.Flag("collector.odoo_log.max-classes",
		"Bound of the class label (exception type) of odoo_log_unknown_errors_total (the rest under class=\"other\").").
		Default("50").Int()
	odooLogMaxLine = kingpin.Flag("collector.odoo_log.max-line",
		"Longest line read, in bytes; the rest of a longer line is dropped and the record counted as truncated.").
		Default("65536").Int()
	odooLogMaxRecord = kingpin.Flag("collector.odoo_log.max-record",
		"Most bytes of continuation lines (traceback) kept with a record; the exception type is read from the whole traceback anyway.").
		Default("65536").Int()
	odooLogPoll = kingpin.Flag("collector.odoo_log.poll-interval",
		"Time between two looks at a followed file.").
		Default("250ms").Duration()
)

func init() {
	registerCollector("odoo_log", true, func(d Deps) (any, error) {
		c, err := NewOdooLogCollector(OdooLogOptions{
			Files: *odooLogFiles, Containers: *odooLogContainers, DockerHost: *dockerHost,
			CatalogFile: *odooLogCatalog, PerJob: *odooLogPerJob, MaxJobs: *odooLogMaxJobs,
			MaxDatabases: *odooLogMaxDatabases, MaxClasses: *odooLogMaxClasses,
			MaxLine: *odooLogMaxLine, MaxRecord: *odooLogMaxRecord, Poll: *odooLogPoll,
			Logger: d.Logger,
		})
		if c == nil || err != nil {
			return nil, err
		}
		return c, nil
	})
}

// OdooLogOptions configures the odoo_log collector.
type OdooLogOptions struct {
	// Files are followed as tail -F; Containers through the Engine API at
	// DockerHost (empty: DOCKER_HOST, else the default socket).
	Files, Containers []string
	DockerHost        string
	// CatalogFile extends the embedded catalog (see odoolog.LoadCatalog).
	CatalogFile string
	// PerJob adds the per-job cron metrics, at most MaxJobs jobs.
	PerJob  bool
	MaxJobs int
	// MaxDatabases and MaxClasses bound the database and class labels.
	MaxDatabases, MaxClasses int
	// MaxLine, MaxRecord bound lines and records (0: odoolog's defaults).
	MaxLine, MaxRecord int
	// Poll is the files' polling interval (default 250 ms).
	Poll time.Duration
	// FromStart reads the files and containers from their start (tests).
	FromStart bool
	// FlushAfter: see odoolog.SourceOptions (default 1 s).
	FlushAfter time.Duration
	Logger     *slog.Logger
}

// CronDurationBuckets resolve cron runs from 10 ms to 1 h.
var CronDurationBuckets = []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// Cron run results.
const (
	cronDone   = "done"
	cronFailed = "failed"
	cronKilled = "killed"
)

// OdooLogCollector reads Odoo's own log from files and containers in the
// background (a Runner), matches every record against the error catalog
// and counts records by level, catalog matches, unknown errors by class,
// cron runs by result with their durations, and worker limit events.
// Every label is bounded: levels, catalog ids, classes, databases and jobs.
type OdooLogCollector struct {
	opts    OdooLogOptions
	catalog *odoolog.Catalog
	docker  *client.Client
	logger  *slog.Logger
	sources []*logSource

	records      *prometheus.CounterVec
	matches      *prometheus.CounterVec
	unknown      *prometheus.CounterVec
	cronRuns     *prometheus.CounterVec
	cronDuration *prometheus.HistogramVec
	jobRuns      *prometheus.CounterVec
	jobDuration  *prometheus.HistogramVec
	limits       *prometheus.CounterVec
	sourceUp     *prometheus.GaugeVec
	sourceEvents *prometheus.CounterVec
	lines        *prometheus.CounterVec
	truncated    *prometheus.CounterVec
	orphans      *prometheus.CounterVec

	levelCounters map[odoolog.Level]prometheus.Counter
	entryCounters map[*odoolog.Entry]prometheus.Counter

	boundMu   sync.Mutex // guards the bounds, shared by the sources
	classes   *odoolog.ClassBound
	databases *labelBound
	jobs      *labelBound
}

// logSource is one followed log and its state.
type logSource struct {
	name   string
	run    func(ctx context.Context, handle func(*odoolog.Record))
	stats  func() odoolog.Stats
	last   odoolog.Stats // stats already exported
	tracks *logTracks
}

// NewOdooLogCollector returns nil when no file or container is configured.
func NewOdooLogCollector(o OdooLogOptions) (*OdooLogCollector, error) {
	if len(o.Files) == 0 && len(o.Containers) == 0 {
		return nil, nil
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxJobs <= 0 {
		o.MaxJobs = 200
	}
	if o.MaxDatabases <= 0 {
		o.MaxDatabases = 500
	}
	if o.MaxClasses <= 0 {
		o.MaxClasses = 50
	}
	if o.MaxLine < 0 || o.MaxRecord < 0 {
		return nil, fmt.Errorf("--collector.odoo_log.max-line and --collector.odoo_log.max-record must not be negative")
	}
	var extra [][]byte
	if o.CatalogFile != "" {
		b, err := os.ReadFile(o.CatalogFile)
		if err != nil {
			return nil, fmt.Errorf("--collector.odoo_log.catalog: %w", err)
		}
		extra = append(extra, b)
	}
	cat, err := odoolog.LoadCatalog(extra...)
	if err != nil {
		return nil, fmt.Errorf("--collector.odoo_log.catalog: %w", err)
	}
	c := &OdooLogCollector{
		opts: o, catalog: cat, logger: o.Logger,
		classes:   odoolog.NewClassBound(o.MaxClasses),
		databases: newLabelBound(o.MaxDatabases),
		jobs:      newLabelBound(o.MaxJobs),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoo_log_records_total",
			Help: "Records of Odoo's log read, by level (DEBUG, INFO, WARNING, ERROR, CRITICAL, UNKNOWN).",
		}, []string{"level"}),
		matches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoo_log_matches_total",
			Help: "Records of Odoo's log matched by an entry of the error catalog, by entry id, its incident and severity (every entry is exported from 0).",
		}, []string{"id", "incident", "severity"}),
		unknown: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoo_log_unknown_errors_total",
			Help: "ERROR and CRITICAL records that no catalog entry matches, by level and class (the exception type of their traceback, \"none\" without one, \"other\" beyond --collector.odoo_log.max-classes).",
		}, []string{"level", "class"}),
		cronRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoo_log_cron_runs_total",
			Help: "Cron job runs seen in Odoo's log, by database and result: done, failed (the job raised; on 18 also a run refused after repeated timeouts), killed (its worker was killed by limit_time_real while it ran).",
		}, []string{"database", "result"}),
		cronDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "odoo_log_cron_run_duration_seconds",
			Help:    "Duration of the cron job runs that ended (done, failed or killed), by database: Odoo's own figure when it logs one (17, 18), else the time between the start and end records.",
			Buckets: CronDurationBuckets,
		}, []string{"database"}),
		limits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoo_log_worker_limit_events_total",
			Help: "Worker limit events in Odoo's log, by limit (memory_soft, memory_hard, time_cpu, time_real, request, age) and worker kind (http, cron, gevent, server, unknown).",
		}, []string{"limit", "worker"}),
		sourceUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "odoo_log_source_up",
			Help: "Whether the log source is read (file open, container log attached).",
		}, []string{"source"}),
		sourceEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoo_log_source_events_total",
			Help: "Events of the log sources: opened, rotated, truncated, detached, error.",
		}, []string{"source", "event"}),
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoo_log_lines_total",
			Help: "Lines read from the log source.",
		}, []string{"source"}),
		truncated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoo_log_truncated_records_total",
			Help: "Records with a line longer than --collector.odoo_log.max-line or continuation lines beyond --collector.odoo_log.max-record.",
		}, []string{"source"}),
		orphans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoo_log_foreign_lines_total",
			Help: "Lines read before any record of Odoo's format (another program's output, binary data).",
		}, []string{"source"}),
		levelCounters: map[odoolog.Level]prometheus.Counter{},
		entryCounters: map[*odoolog.Entry]prometheus.Counter{},
	}
	if o.PerJob {
		c.jobRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "odoo_log_cron_job_runs_total",
			Help: "Cron job runs by database, job (label cron, as odoo_cron_job_lag_seconds; at most --collector.odoo_log.max-jobs, the rest \"other\") and result.",
		}, []string{"database", "cron", "result"})
		c.jobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "odoo_log_cron_job_run_duration_seconds",
			Help:    "Duration of the cron job runs that ended, by database and job (label cron).",
			Buckets: CronDurationBuckets,
		}, []string{"database", "cron"})
	}
	for _, l := range odoolog.Levels() {
		c.levelCounters[l] = c.records.WithLabelValues(l.String())
	}
	// Exported from the start: the runs whose database is not known
	// (none), and the errors without a traceback. The runs of a database
	// are exported from its first record on.
	for _, r := range []string{cronDone, cronFailed, cronKilled} {
		c.cronRuns.WithLabelValues("none", r)
	}
	c.cronDuration.WithLabelValues("none")
	c.unknown.WithLabelValues(odoolog.LevelError.String(), odoolog.ClassNone)
	c.unknown.WithLabelValues(odoolog.LevelCritical.String(), odoolog.ClassNone)
	for _, e := range cat.Entries() {
		c.entryCounters[e] = c.matches.WithLabelValues(e.ID, e.Incident, e.Severity)
	}
	for _, l := range odoolog.Limits {
		for _, w := range odoolog.WorkerKinds {
			c.limits.WithLabelValues(l, w)
		}
	}
	so := func(name string) odoolog.SourceOptions {
		c.sourceUp.WithLabelValues(name)
		for _, e := range []string{odoolog.EventOpened, odoolog.EventRotated, odoolog.EventTruncated, odoolog.EventDetached, odoolog.EventError} {
			c.sourceEvents.WithLabelValues(name, e)
		}
		c.lines.WithLabelValues(name)
		c.truncated.WithLabelValues(name)
		c.orphans.WithLabelValues(name)
		return odoolog.SourceOptions{
			MaxLine: o.MaxLine, MaxRecord: o.MaxRecord, FlushAfter: o.FlushAfter, Logger: o.Logger,
			OnEvent: func(e string) { c.sourceEvents.WithLabelValues(name, e).Inc() },
			OnUp: func(up bool) {
				v := 0.0
				if up {
					v = 1
				}
				c.sourceUp.WithLabelValues(name).Set(v)
			},
		}
	}
	for _, f := range o.Files {
		if f == "" {
			return nil, fmt.Errorf("--collector.odoo_log.file: empty path")
		}
		name := "file:" + f
		fs := &odoolog.FileSource{Path: f, Poll: o.Poll, FromStart: o.FromStart, SourceOptions: so(name)}
		c.sources = append(c.sources, &logSource{name: name, run: fs.Run, stats: fs.Stats, tracks: newLogTracks()})
	}
	if len(o.Containers) > 0 {
		cli, err := newDockerClient(o.DockerHost)
		if err != nil {
			return nil, err
		}
		c.docker = cli
		for _, name := range o.Containers {
			if name == "" {
				return nil, fmt.Errorf("--collector.odoo_log.container: empty name")
			}
			sname := "docker:" + name
			ds := &odoolog.DockerSource{Client: cli, Container: name, FromStart: o.FromStart, SourceOptions: so(sname)}
			c.sources = append(c.sources, &logSource{name: sname, run: ds.Run, stats: ds.Stats, tracks: newLogTracks()})
		}
	}
	return c, nil
}

// Run implements Runner: it follows every source until ctx ends.
func (c *OdooLogCollector) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range c.sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var m odoolog.Match
			s.run(ctx, func(r *odoolog.Record) { c.handle(s, r, &m) })
		}()
	}
	wg.Wait()
}

// Close implements io.Closer.
func (c *OdooLogCollector) Close() error {
	if c.docker != nil {
		return c.docker.Close()
	}
	return nil
}

// Describe implements Collector.
func (c *OdooLogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, v := range c.vecs() {
		v.Describe(ch)
	}
}

// Update implements Collector: it reports what the sources read so far.
func (c *OdooLogCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	for _, s := range c.sources {
		st := s.stats()
		c.boundMu.Lock()
		c.lines.WithLabelValues(s.name).Add(float64(st.Lines - s.last.Lines))
		c.truncated.WithLabelValues(s.name).Add(float64(st.Truncated - s.last.Truncated))
		c.orphans.WithLabelValues(s.name).Add(float64(st.Orphans - s.last.Orphans))
		s.last = st
		c.boundMu.Unlock()
	}
	for _, v := range c.vecs() {
		v.Collect(ch)
	}
	return nil
}

func (c *OdooLogCollector) vecs() []prometheus.Collector {
	vs := []prometheus.Collector{c.records, c.matches, c.unknown, c.cronRuns, c.cronDuration, c.limits,
		c.sourceUp, c.sourceEvents, c.lines, c.truncated, c.orphans}
	if c.jobRuns != nil {
		vs = append(vs, c.jobRuns, c.jobDuration)
	}
	return vs
}

// handle counts one record of source s; m is the source's scratch Match.
func (c *OdooLogCollector) handle(s *logSource, r *odoolog.Record, m *odoolog.Match) {
	c.levelCounters[r.Level].Inc()
	if _, ok := s.tracks.dbs[string(r.DB)]; !ok {
		c.seeDatabase(s.tracks, string(r.DB))
	}
	e := c.catalog.Match(r, m)
	if e == nil {
		if r.Level >= odoolog.LevelError {
			c.boundMu.Lock()
			class := c.classes.Class(r.Exception)
			c.boundMu.Unlock()
			c.unknown.WithLabelValues(r.Level.String(), class).Inc()
		}
		return
	}
	c.entryCounters[e].Inc()
	t := s.tracks
	switch e.Event {
	case odoolog.EventCronStart:
		t.start(r, m)
	case odoolog.EventCronDone:
		c.cronEnd(t, r, m, cronDone)
	case odoolog.EventCronFailed:
		c.cronEnd(t, r, m, cronFailed)
	case odoolog.EventWorkerAlive:
		t.setKind(atoi(m.PID), workerKind(string(m.Worker)))
	case odoolog.EventWorkerLimit:
		pid := r.PID
		if len(m.PID) > 0 {
			pid = atoi(m.PID)
		}
		kind := e.Worker
		switch {
		case kind != "":
		case len(m.Worker) > 0:
			kind = workerKind(string(m.Worker))
		case len(m.Thread) > 0:
			// Threaded server: the cron threads are named odoo.service.cron.cronN.
			kind = "http"
			if strings.Contains(string(m.Thread), "cron") {
				kind = "cron"
			}
		default:
			kind = t.kind(pid)
		}
		c.limits.WithLabelValues(e.Limit, kind).Inc()
		if e.Limit == "time_real" && len(m.PID) > 0 {
			// The master killed the worker (SIGKILL): the jobs it ran end here.
			for _, run := range t.kill(pid) {
				c.countRun(run.db, run.job, cronKilled, r, run.start, nil)
			}
		}
	}
}

// seeDatabase exports the cron runs of a database seen for the first time
// at 0, so that its first failure is an increase (a series that appears
// at 1 is no increase for Prometheus).
func (c *OdooLogCollector) seeDatabase(t *logTracks, db string) {
	if len(t.dbs) >= maxTracked {
		return
	}
	t.dbs[db] = struct{}{}
	c.boundMu.Lock()
	label := c.databases.label(db)
	c.boundMu.Unlock()
	for _, r := range []string{cronDone, cronFailed, cronKilled} {
		c.cronRuns.WithLabelValues(label, r)
	}
}

// cronEnd counts the end of a run of the job of m in the record's database.
func (c *OdooLogCollector) cronEnd(t *logTracks, r *odoolog.Record, m *odoolog.Match, result string) {
	run, ok := t.end(r.PID, string(r.DB), string(m.Job))
	db := string(r.DB)
	if ok {
		db = run.db
	}
	c.countRun(db, string(m.Job), result, r, run.start, m.Seconds)
}

// countRun counts a run and observes its duration: seconds when Odoo
// logged it, else from start to the record's time (unknown without start).
func (c *OdooLogCollector) countRun(db, job, result string, r *odoolog.Record, start time.Time, seconds []byte) {
	c.boundMu.Lock()
	db = c.databases.label(db)
	if c.jobRuns != nil {
		job = c.jobs.label(job)
	}
	c.boundMu.Unlock()
	c.cronRuns.WithLabelValues(db, result).Inc()
	d := -1.0
	if len(seconds) > 0 {
		if v, err := strconv.ParseFloat(string(seconds), 64); err == nil {
			d = v
		}
	} else if !start.IsZero() {
		if end, err := r.Time(nil); err == nil && !end.Before(start) {
			d = end.Sub(start).Seconds()
		}
	}
	if d >= 0 {
		c.cronDuration.WithLabelValues(db).Observe(d)
	}
	if c.jobRuns != nil {
		c.jobRuns.WithLabelValues(db, job, result).Inc()
		if d >= 0 {
			c.jobDuration.WithLabelValues(db, job).Observe(d)
		}
	}
}

func atoi(b []byte) int {
	n, _ := strconv.Atoi(string(b))
	return n
}

// workerKind names Odoo's worker classes.
func workerKind(class string) string {
	switch class {
	case "WorkerHTTP":
		return "http"
	case "WorkerCron":
		return "cron"
	}
	return "unknown"
}

// labelBound keeps the first max values of a label; later ones are
// "other". Empty and "?" (Odoo's "no database") are kept as "none".
type labelBound struct {
	max  int
	seen map[string]bool
}

func newLabelBound(max int) *labelBound { return &labelBound{max: max, seen: map[string]bool{}} }

func (b *labelBound) label(v string) string {
	if v == "" || v == "?" || v == "None" {
		return "none"
	}
	if b.seen[v] {
		return v
	}
	if len(b.seen) >= b.max {
		return "other"
	}
	b.seen[v] = true
	return v
}

// maxTracked bounds the runs and worker pids a source remembers.
const maxTracked = 4096

// cronRun is a job started and not yet ended.
type cronRun struct {
	db, job string
	start   time.Time
}

type runKey struct {
	pid int
	db  string
}

// logTracks is what one source remembers between records: the runs in
// progress by process and database (a prefork cron worker runs one job at
// a time; a threaded server one per cron thread, each in its database) and
// the kind of each worker process. Used from the source's goroutine only.
type logTracks struct {
	running map[runKey]cronRun
	kinds   map[int]string
	dbs     map[string]struct{} // databases seen
}

func newLogTracks() *logTracks {
	return &logTracks{running: map[runKey]cronRun{}, kinds: map[int]string{}, dbs: map[string]struct{}{}}
}

func (t *logTracks) start(r *odoolog.Record, m *odoolog.Match) {
	if len(t.running) >= maxTracked {
		clear(t.running)
	}
	start, _ := r.Time(nil)
	t.running[runKey{r.PID, string(r.DB)}] = cronRun{db: string(r.DB), job: string(m.Job), start: start}
}

// end forgets the run of job in (pid, db) and returns it.
func (t *logTracks) end(pid int, db, job string) (cronRun, bool) {
	k := runKey{pid, db}
	run, ok := t.running[k]
	if !ok || run.job != job {
		return cronRun{}, false
	}
	delete(t.running, k)
	return run, true
}

// kill forgets and returns the runs of process pid.
func (t *logTracks) kill(pid int) []cronRun {
	var runs []cronRun
	for k, run := range t.running {
		if k.pid == pid {
			runs = append(runs, run)
			delete(t.running, k)
		}
	}
	return runs
}

func (t *logTracks) setKind(pid int, kind string) {
	if len(t.kinds) >= maxTracked {
		clear(t.kinds)
	}
	t.kinds[pid] = kind
}

func (t *logTracks) kind(pid int) string {
	if k, ok := t.kinds[pid]; ok {
		return k
	}
	return "unknown"
}
