package collector

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/internal/odoosql"
	"github.com/odoo-exporter/odoo_exporter/postgres"
)

var (
	cronOverdueThreshold = kingpin.Flag("collector.cron.overdue-threshold",
		"A ready job whose due time is older than this counts as overdue (cron workers poll about every 60 s).").
		Default("5m").Duration()
	cronPerJob = kingpin.Flag("collector.cron.per-job",
		"Expose odoo_cron_job_lag_seconds for every active job (one series per job and database; turn off on large clusters).").
		Default("true").Bool()
)

func init() {
	registerCollector("cron", true, func(Deps) (any, error) {
		return NewCronCollector(CronOptions{OverdueThreshold: *cronOverdueThreshold, PerJob: *cronPerJob}), nil
	})
}

// CronOptions configures the cron collector.
type CronOptions struct {
	// OverdueThreshold: a ready job late by more than this is overdue.
	OverdueThreshold time.Duration
	// PerJob exposes the lag of every active job.
	PerJob bool
}

// CronCollector reads Odoo's scheduled actions (ir_cron, ir_cron_trigger,
// ir_cron_progress) of each database: how late the ready jobs that are not
// running are, which jobs are running (their row is locked by the cron
// worker) and for how long, how late each run started, the runs that ended
// without completing (a worker killed at limit_time_real_cron, again and
// again: the timeout loop), and, from Odoo 18, which jobs fail. It is the
// runbook's "Cron Job Jam" check, without the odoo shell.
//
// The schema differs between Odoo series (cron_name jsonb in 16, numbercall
// up to 17, failure_count and ir_cron_progress from 18): columns are read
// from the catalog of each database and remembered for a while.
//
// The collector remembers, per database and job, what the previous
// collection saw (lastcall, due time, the run in progress); the memory is
// bounded by the jobs of the databases collected in the last hour.
type CronCollector struct {
	opts    CronOptions
	mu      sync.Mutex
	schemas map[string]cronSchema
	runs    map[string]*cronRuns

	lateness *prometheus.HistogramVec
}

// CronLatenessBuckets resolve a run that starts on time (cron workers poll
// about every minute) to one that waited hours behind others.
var CronLatenessBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600}

// cronMemoryTTL: a database not collected for this long is forgotten,
// with its series.
const cronMemoryTTL = time.Hour

// NewCronCollector returns a cron collector.
func NewCronCollector(opts CronOptions) *CronCollector {
	return &CronCollector{
		opts: opts, schemas: map[string]cronSchema{}, runs: map[string]*cronRuns{},
		lateness: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "odoo_cron_job_age_seconds",
			Help:    "How late each run of a job started: its start minus its due time (nextcall or earliest due trigger), observed when the job's lastcall advances.",
			Buckets: CronLatenessBuckets,
		}, []string{"database"}),
	}
}

var (
	cronJobsDesc = prometheus.NewDesc("odoo_cron_jobs",
		"Active scheduled actions (ir_cron).", []string{"database"}, nil)
	cronLagMaxDesc = prometheus.NewDesc("odoo_cron_lag_max_seconds",
		"How late the most overdue ready job that is not running is: now minus its due time (nextcall or earliest due trigger); 0 when none is due.",
		[]string{"database"}, nil)
	cronOverdueDesc = prometheus.NewDesc("odoo_cron_overdue_jobs",
		"Ready jobs, not running, late by more than --collector.cron.overdue-threshold.",
		[]string{"database"}, nil)
	cronJobLagDesc = prometheus.NewDesc("odoo_cron_job_lag_seconds",
		"How late the job is (0 when not due or running).", []string{"database", "cron"}, nil)
	cronRunningDesc = prometheus.NewDesc("odoo_cron_running_jobs",
		"Jobs running now: their ir_cron row is locked for update by an open transaction (the cron worker, or Run Manually).",
		[]string{"database"}, nil)
	cronRunningMaxDesc = prometheus.NewDesc("odoo_cron_running_max_seconds",
		"How long the longest running job has held its lock; 0 when none runs.",
		[]string{"database"}, nil)
	cronJobRunningDesc = prometheus.NewDesc("odoo_cron_job_running_seconds",
		"How long the running job has held its lock (age of the locking transaction).",
		[]string{"database", "cron"}, nil)
	cronFailingDesc = prometheus.NewDesc("odoo_cron_failing_jobs",
		"Active jobs whose last runs failed (failure_count > 0); Odoo 18 and later only, older series do not record failures in the database.",
		[]string{"database"}, nil)
	cronInterruptedDesc = prometheus.NewDesc("odoo_cron_interrupted_runs_total",
		"Runs seen running that ended without completing: the lock went (or passed to a new run) and lastcall did not advance (a worker killed at limit_time_real_cron, a terminated session); in 18+ only when the run's ir_cron_progress row says it did not return.",
		[]string{"database"}, nil)
	cronJobInterruptedDesc = prometheus.NewDesc("odoo_cron_job_interrupted_runs_total",
		"Interrupted runs (see odoo_cron_interrupted_runs_total) of the job, from its first one; with --collector.cron.per-job.",
		[]string{"database", "cron"}, nil)
	cronTriggersDesc = prometheus.NewDesc("odoo_cron_pending_triggers",
		"Triggers (ir_cron_trigger) that are due and not yet consumed.",
		[]string{"database"}, nil)
)

// Describe implements DatabaseCollector.
func (c *CronCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cronJobsDesc, cronLagMaxDesc, cronOverdueDesc, cronJobLagDesc,
		cronRunningDesc, cronRunningMaxDesc, cronJobRunningDesc, cronFailingDesc, cronTriggersDesc} {
		ch <- d
	}
	c.lateness.Describe(ch)
	ch <- cronInterruptedDesc
	ch <- cronJobInterruptedDesc
}

// cronSchema is what differs between Odoo series.
type cronSchema struct {
	read          time.Time
	nameJSON      bool // cron_name is jsonb (16.0)
	hasName       bool
	hasNumbercall bool // <= 17.0
	hasFailures   bool // >= 18.0
	hasTriggers   bool // >= 15.0
	hasProgress   bool // ir_cron_progress, >= 18.0
}

// cronSchemaSQL reads ir_cron's columns from the catalog (cheaper than
// information_schema) and whether ir_cron_trigger and ir_cron_progress
// exist.
const cronSchemaSQL = `SELECT a.attname, format_type(a.atttypid, a.atttypmod),
  to_regclass('ir_cron_trigger') IS NOT NULL, to_regclass('ir_cron_progress') IS NOT NULL
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = to_regclass('ir_cron') AND a.attnum > 0 AND NOT a.attisdropped`

const cronSchemaTTL = 10 * time.Minute

func (c *CronCollector) schema(ctx context.Context, q postgres.Queryer, db string) (cronSchema, error) {
	c.mu.Lock()
	s, ok := c.schemas[db]
	c.mu.Unlock()
	if ok && time.Since(s.read) < cronSchemaTTL {
		return s, nil
	}
	rows, err := q.Query(ctx, cronSchemaSQL)
	if err != nil {
		return s, fmt.Errorf("reading ir_cron columns: %w", err)
	}
	defer rows.Close()
	s = cronSchema{read: time.Now()}
	n := 0
	for rows.Next() {
		var col, typ string
		if err := rows.Scan(&col, &typ, &s.hasTriggers, &s.hasProgress); err != nil {
			return s, err
		}
		n++
		switch col {
		case "cron_name":
			s.hasName = true
			s.nameJSON = typ == "jsonb"
		case "numbercall":
			s.hasNumbercall = true
		case "failure_count":
			s.hasFailures = true
		}
	}
	if err := rows.Err(); err != nil {
		return s, err
	}
	if n == 0 {
		return s, fmt.Errorf("no ir_cron table: not an Odoo database")
	}
	c.mu.Lock()
	c.schemas[db] = s
	c.mu.Unlock()
	return s, nil
}

// jobsSQL builds the query of the jobs for schema s: one row per active job
// with its name, lag (seconds past due, due = LEAST(nextcall, earliest due
// trigger), as Odoo's ready condition), due triggers, failure count, due
// time and lastcall (Unix seconds; nextcall, call_at and lastcall are UTC
// timestamps without time zone) and, in 18+, the timed_out_counter of its
// latest ir_cron_progress row; plus any job whose row carries an xmax (it
// may be locked by a running worker), with the update-mode members of a
// multixact xmax (odoosql.CronRowUpdateHolders), matched against the
// lockers of the scrape's snapshot. Also ir_cron's and ir_cron_trigger's oids and
// the server's clock.
func (s cronSchema) jobsSQL() string {
	name := "'#' || c.id"
	switch {
	case s.hasName && s.nameJSON:
		name = "COALESCE(c.cron_name->>'en_US', c.cron_name::text, '#' || c.id)"
	case s.hasName:
		name = "COALESCE(c.cron_name::text, '#' || c.id)"
	}
	failures := "0"
	if s.hasFailures {
		failures = "COALESCE(c.failure_count, 0)"
	}
	where := "c.active"
	activeCond := ""
	if s.hasNumbercall {
		where += " AND c.numbercall != 0"
		activeCond = " AND c.numbercall != 0"
	}
	triggers := "SELECT NULL::int AS cron_id, NULL::timestamp AS call_at, 0::bigint AS n WHERE false"
	if s.hasTriggers {
		triggers = `SELECT cron_id, min(call_at) AS call_at, count(*) AS n
  FROM ir_cron_trigger WHERE call_at <= (now() AT TIME ZONE 'UTC') GROUP BY cron_id`
	}
	timedOut := "0"
	if s.hasProgress {
		timedOut = "COALESCE((SELECT p.timed_out_counter FROM ir_cron_progress p WHERE p.cron_id = c.id ORDER BY p.id DESC LIMIT 1), 0)"
	}
	return fmt.Sprintf(`WITH t AS (%s)
SELECT c.id, %s,
  GREATEST(EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC') - LEAST(c.nextcall, t.call_at)), 0)::float8,
  COALESCE(t.n, 0)::float8, %s::float8, c.xmax::text, %s,
  'ir_cron'::regclass::oid::int8, COALESCE(to_regclass('ir_cron_trigger')::oid::int8, 0),
  EXTRACT(EPOCH FROM now())::float8, c.active%s,
  EXTRACT(EPOCH FROM LEAST(c.nextcall, t.call_at))::float8, EXTRACT(EPOCH FROM c.lastcall)::float8,
  %s::int8
FROM ir_cron c LEFT JOIN t ON t.cron_id = c.id CROSS JOIN %s
WHERE %s AND (c.xmax <> '0'::xid OR (%s))`, triggers, name, failures, odoosql.CronRowUpdateHolders,
		activeCond, timedOut, odoosql.CronClass, odoosql.CronClassCond, where)
}

// cronLocker is a backend of the database with a transaction id, from the
// scrape's snapshot of pg_stat_activity and pg_locks: it may be running a
// cron job. The snapshot reads only the views: no row lock is ever taken
// (FOR SHARE, even with SKIP LOCKED, would make Odoo's workers skip the
// job).
type cronLocker struct {
	xactStart time.Time
	xid       string
	relations []int64
	// rowExclusive: relations it holds RowExclusiveLock on (it wrote).
	rowExclusive []int64
}

// cronLockers returns the lockers of db in snap.
func cronLockers(snap *PGSnapshot, db string) []cronLocker {
	var ls []cronLocker
	for _, b := range snap.Backends {
		if b.Database != db || b.XID == "" || b.XactStart.IsZero() {
			continue
		}
		ls = append(ls, cronLocker{xactStart: b.XactStart, xid: b.XID, relations: b.Relations, rowExclusive: b.RowExclusive})
	}
	return ls
}

// cronRowLocks are the row locks seen on ir_cron in one database.
type cronRowLocks struct {
	cronOID, triggerOID int64
	// xmax: the job whose row's xmax is this (plain) transaction id.
	xmax map[string]int64
	// holders: the jobs whose multixact xmax has this transaction id as a
	// member in an update mode.
	holders map[string][]int64
}

// heldJobs returns, for each job id held, the start of the holding
// transaction. A job is held by a transaction that holds a lock on
// ir_cron and either is a member in an update mode (FOR NO KEY UPDATE,
// FOR UPDATE) of the row's multixact xmax, or is the row's plain xmax and
// wrote nothing to ir_cron_trigger: a transaction that only inserted a
// trigger for the job also puts its id in the row's xmax (the foreign
// key's KEY SHARE lock) and locks ir_cron, but runs nothing, and pg_locks
// does not say a row lock's mode.
func heldJobs(lockers []cronLocker, r cronRowLocks) map[int64]time.Time {
	held := map[int64]time.Time{}
	hold := func(id int64, k cronLocker) {
		if t, ok := held[id]; !ok || k.xactStart.Before(t) {
			held[id] = k.xactStart
		}
	}
	for _, k := range lockers {
		if k.xid == "" || !slices.Contains(k.relations, r.cronOID) {
			continue
		}
		for _, id := range r.holders[k.xid] {
			hold(id, k)
		}
		if id, ok := r.xmax[k.xid]; ok && !slices.Contains(k.rowExclusive, r.triggerOID) {
			hold(id, k)
		}
	}
	return held
}

// usesSnapshot implements snapshotUser: the running jobs come from the
// scrape's snapshot.
func (c *CronCollector) usesSnapshot() {}

// UpdateDatabase implements DatabaseCollector.
func (c *CronCollector) UpdateDatabase(ctx context.Context, q postgres.Queryer, db string, ch chan<- prometheus.Metric) error {
	s, err := c.schema(ctx, q, db)
	if err != nil {
		return err
	}
	// Running jobs are read from the scrape's snapshot of the cluster-wide
	// views; without it they are unknown (the jobs are still reported,
	// and the collector fails).
	var lockers []cronLocker
	snap, snapErr := scrapeSnapshot(ctx)
	if snapErr == nil {
		lockers = cronLockers(snap, db)
	}
	if err := c.update(ctx, q, s, lockers, snapErr == nil, db, ch); err != nil {
		c.forget(db)
		return err
	}
	if snapErr != nil {
		return fmt.Errorf("running jobs unknown: %w", snapErr)
	}
	return nil
}

// forget drops the remembered schema, so that it is read again after an
// error (e.g. the database was upgraded to another Odoo series).
func (c *CronCollector) forget(db string) {
	c.mu.Lock()
	delete(c.schemas, db)
	c.mu.Unlock()
}

// cronJob is one row of jobsSQL.
type cronJob struct {
	id                int64
	name              string
	lag, trig         float64
	failure           float64
	active            bool
	due, lastcall     *float64 // Unix seconds; nil when NULL
	progressTimedOuts int64
}

func (c *CronCollector) update(ctx context.Context, q postgres.Queryer, s cronSchema, lockers []cronLocker, seen bool, db string, ch chan<- prometheus.Metric) error {
	rows, err := q.Query(ctx, s.jobsSQL())
	if err != nil {
		return fmt.Errorf("reading ir_cron: %w", err)
	}
	defer rows.Close()
	var (
		jobs  []cronJob
		names = map[int64]string{}
		locks = cronRowLocks{xmax: map[string]int64{}, holders: map[string][]int64{}}
		now   float64
	)
	for rows.Next() {
		var (
			j       cronJob
			rowXmax string
			holders []string
		)
		if err := rows.Scan(&j.id, &j.name, &j.lag, &j.trig, &j.failure, &rowXmax, &holders,
			&locks.cronOID, &locks.triggerOID, &now, &j.active, &j.due, &j.lastcall, &j.progressTimedOuts); err != nil {
			return err
		}
		names[j.id] = j.name
		if rowXmax != "0" {
			locks.xmax[rowXmax] = j.id
		}
		for _, h := range holders {
			locks.holders[h] = append(locks.holders[h], j.id)
		}
		if j.active {
			jobs = append(jobs, j)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	nowT := time.Unix(0, int64(now*1e9))

	// Running jobs; unknown without the cluster-wide view of this scrape.
	var running map[int64]time.Time
	if seen {
		running = heldJobs(lockers, locks)
		for id := range running {
			if _, ok := names[id]; !ok {
				delete(running, id)
			}
		}
	}

	var (
		nJobs, overdue, triggers, failing, lagMax float64
		threshold                                 = c.opts.OverdueThreshold.Seconds()
		lagNames                                  = labelNames{}
	)
	for _, j := range jobs {
		nJobs++
		triggers += j.trig
		if j.failure > 0 {
			failing++
		}
		lag := j.lag
		if _, ok := running[j.id]; ok {
			lag = 0 // running: not waiting; odoo_cron_job_running_seconds tells how long
		}
		lagMax = max(lagMax, lag)
		if lag > threshold {
			overdue++
		}
		if c.opts.PerJob {
			ch <- prometheus.MustNewConstMetric(cronJobLagDesc, prometheus.GaugeValue, lag, db, lagNames.unique(j.name, j.id))
		}
	}
	ch <- prometheus.MustNewConstMetric(cronJobsDesc, prometheus.GaugeValue, nJobs, db)
	ch <- prometheus.MustNewConstMetric(cronLagMaxDesc, prometheus.GaugeValue, lagMax, db)
	ch <- prometheus.MustNewConstMetric(cronOverdueDesc, prometheus.GaugeValue, overdue, db)
	if s.hasTriggers {
		ch <- prometheus.MustNewConstMetric(cronTriggersDesc, prometheus.GaugeValue, triggers, db)
	}
	if s.hasFailures {
		ch <- prometheus.MustNewConstMetric(cronFailingDesc, prometheus.GaugeValue, failing, db)
	}

	c.remember(db, jobs, running, s.hasProgress, nowT, ch)

	if running == nil {
		return nil // no cluster-wide view in this scrape: running jobs unknown
	}
	var (
		runMax   float64
		runNames = labelNames{}
	)
	for id, since := range running {
		secs := max(nowT.Sub(since).Seconds(), 0)
		runMax = max(runMax, secs)
		ch <- prometheus.MustNewConstMetric(cronJobRunningDesc, prometheus.GaugeValue, secs, db, runNames.unique(names[id], id))
	}
	ch <- prometheus.MustNewConstMetric(cronRunningDesc, prometheus.GaugeValue, float64(len(running)), db)
	ch <- prometheus.MustNewConstMetric(cronRunningMaxDesc, prometheus.GaugeValue, runMax, db)
	return nil
}

// cronRuns is what the collector remembers of one database's jobs between
// two collections.
type cronRuns struct {
	seen        time.Time
	jobs        map[int64]cronJobMemory
	interrupted float64            // odoo_cron_interrupted_runs_total
	byJob       map[string]float64 // odoo_cron_job_interrupted_runs_total, by job label
}

// cronJobMemory is one job as the previous collection saw it.
type cronJobMemory struct {
	lastcall, due *float64
	// runStart: start of the transaction holding the job; zero when the
	// job was not running (or running was unknown).
	runStart time.Time
	known    bool // running was known
}

// remember compares the jobs with the previous collection of db: a
// lastcall that advanced is a run that completed, observed in
// odoo_cron_job_age_seconds as its start (the holding transaction's start
// when the run was seen, else lastcall: the run's start up to 17.0, its end
// from 18.0) minus the due time seen before; a run seen before that is
// gone (or replaced by another) while lastcall stayed is an interrupted
// run. In 18+ a run that ended "partially done" (rescheduled at once,
// lastcall unchanged) is told apart by its ir_cron_progress row: Odoo
// resets its timed_out_counter when the batch returns, so a count left
// above 0 (above 1 once the next run has taken the job) is a run killed in
// the middle. The histogram and the database's counter are exposed from
// the first collection, at 0.
func (c *CronCollector) remember(db string, jobs []cronJob, running map[int64]time.Time, progress bool, now time.Time, ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for other, r := range c.runs {
		if now.Sub(r.seen) > cronMemoryTTL && other != db {
			delete(c.runs, other)
			c.lateness.DeleteLabelValues(other)
		}
	}
	prev := c.runs[db]
	if prev != nil && now.Before(prev.seen) {
		// A concurrent scrape with a newer view was remembered first: this
		// older view must not be compared with it.
		c.emitRuns(db, prev, ch)
		return
	}
	cur := &cronRuns{seen: now, jobs: make(map[int64]cronJobMemory, len(jobs)), byJob: map[string]float64{}}
	if prev != nil {
		cur.interrupted = prev.interrupted
		for n, v := range prev.byJob {
			cur.byJob[n] = v // kept while the process lives: a counter
		}
	}
	lateness := c.lateness.WithLabelValues(db).(prometheus.Histogram)
	names := labelNames{}
	for _, j := range jobs {
		m := cronJobMemory{lastcall: j.lastcall, due: j.due, known: running != nil}
		if running != nil {
			m.runStart = running[j.id]
		}
		cur.jobs[j.id] = m
		name := names.unique(j.name, j.id)
		if prev == nil {
			continue
		}
		p, ok := prev.jobs[j.id]
		if !ok {
			continue
		}
		advanced := j.lastcall != nil && (p.lastcall == nil || *j.lastcall > *p.lastcall)
		switch {
		case advanced:
			if p.due == nil {
				break
			}
			start := *j.lastcall
			if !p.runStart.IsZero() {
				start = float64(p.runStart.UnixNano()) / 1e9
			}
			lateness.Observe(max(start-*p.due, 0))
		case p.known && m.known && !p.runStart.IsZero() && !m.runStart.Equal(p.runStart):
			replaced := !m.runStart.IsZero()
			if progress && (j.progressTimedOuts == 0 || replaced && j.progressTimedOuts < 2) {
				break // 18+: the run returned (partially done), it was not killed
			}
			cur.interrupted++
			cur.byJob[name]++
		}
	}
	c.runs[db] = cur
	c.emitRuns(db, cur, ch)
}

// emitRuns sends the run metrics of db remembered in r.
func (c *CronCollector) emitRuns(db string, r *cronRuns, ch chan<- prometheus.Metric) {
	ch <- c.lateness.WithLabelValues(db).(prometheus.Histogram)
	ch <- prometheus.MustNewConstMetric(cronInterruptedDesc, prometheus.CounterValue, r.interrupted, db)
	if c.opts.PerJob {
		for name, v := range r.byJob {
			ch <- prometheus.MustNewConstMetric(cronJobInterruptedDesc, prometheus.CounterValue, v, db, name)
		}
	}
}

// labelNames makes job names unique as label values: Odoo does not require
// unique cron names, and two series with the same labels would fail the
// scrape. A repeated name gets the job id appended.
type labelNames map[string]bool

func (n labelNames) unique(name string, id int64) string {
	name = strings.TrimSpace(name)
	if n[name] {
		name = fmt.Sprintf("%s (#%d)", name, id)
	}
	n[name] = true
	return name
}
