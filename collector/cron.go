package collector

import (
	"context"
	"fmt"
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

// CronCollector reads Odoo's scheduled actions (ir_cron, ir_cron_trigger)
// of each database: how late the ready jobs are, which jobs are running
// (their row is locked by the cron worker) and for how long, and, from
// Odoo 18, which jobs fail. It is the runbook's "Cron Job Jam" check,
// without the odoo shell.
//
// The schema differs between Odoo series (cron_name jsonb in 16, numbercall
// up to 17, failure_count from 18): columns are read from the catalog of
// each database and remembered for a while.
type CronCollector struct {
	opts    CronOptions
	mu      sync.Mutex
	schemas map[string]cronSchema
}

// NewCronCollector returns a cron collector.
func NewCronCollector(opts CronOptions) *CronCollector {
	return &CronCollector{opts: opts, schemas: map[string]cronSchema{}}
}

var (
	cronJobsDesc = prometheus.NewDesc("odoo_cron_jobs",
		"Active scheduled actions (ir_cron).", []string{"database"}, nil)
	cronLagMaxDesc = prometheus.NewDesc("odoo_cron_lag_max_seconds",
		"How late the most overdue ready job is: now minus its due time (nextcall or earliest due trigger); 0 when none is due.",
		[]string{"database"}, nil)
	cronOverdueDesc = prometheus.NewDesc("odoo_cron_overdue_jobs",
		"Ready jobs late by more than --collector.cron.overdue-threshold.",
		[]string{"database"}, nil)
	cronJobLagDesc = prometheus.NewDesc("odoo_cron_job_lag_seconds",
		"How late the job is (0 when not due).", []string{"database", "cron"}, nil)
	cronRunningDesc = prometheus.NewDesc("odoo_cron_running_jobs",
		"Jobs running now: their ir_cron row is locked by an open transaction.",
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
}

// cronSchema is what differs between Odoo series.
type cronSchema struct {
	read          time.Time
	nameJSON      bool // cron_name is jsonb (16.0)
	hasName       bool
	hasNumbercall bool // <= 17.0
	hasFailures   bool // >= 18.0
	hasTriggers   bool // >= 15.0
}

// cronSchemaSQL reads ir_cron's columns from the catalog (cheaper than
// information_schema) and whether ir_cron_trigger exists.
const cronSchemaSQL = `SELECT a.attname, format_type(a.atttypid, a.atttypmod),
  to_regclass('ir_cron_trigger') IS NOT NULL
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
		if err := rows.Scan(&col, &typ, &s.hasTriggers); err != nil {
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
// trigger), as Odoo's ready condition), due triggers and failure count,
// plus any job whose row carries an xmax (it may be locked by a running
// worker; matched against the lockers of PrepareCluster), with ir_cron's
// oid and the server's clock. nextcall and call_at are UTC timestamps
// without time zone.
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
	return fmt.Sprintf(`WITH t AS (%s)
SELECT c.id, %s,
  GREATEST(EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC') - LEAST(c.nextcall, t.call_at)), 0)::float8,
  COALESCE(t.n, 0)::float8, %s::float8, c.xmax::text, 'ir_cron'::regclass::oid::int8,
  now(), c.active%s
FROM ir_cron c LEFT JOIN t ON t.cron_id = c.id
WHERE c.xmax <> '0'::xid OR (%s)`, triggers, name, failures, activeCond, where)
}

// cronLockersSQL reads, once per scrape and cluster-wide, the backends of
// the Odoo databases that could be running a cron job: their own
// transaction id (the xmax a row they lock carries), the relations they
// hold locks on, the start of their transaction, and, for Odoo's cron
// worker session (idle in transaction, its last statement locking one
// ir_cron row), the job id read from the query text ("id = N" in 18+,
// "id in (N)" in 15-17, "id=N" in 14). Only catalogs are read: no row lock
// is ever taken (FOR SHARE, even with SKIP LOCKED, would make Odoo's workers
// skip the job).
const cronLockersSQL = `SELECT a.datname, a.xact_start,
  (SELECT l.transactionid::text FROM pg_catalog.pg_locks l
    WHERE l.pid = a.pid AND l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted LIMIT 1),
  ARRAY(SELECT l.relation::int8 FROM pg_catalog.pg_locks l
    WHERE l.pid = a.pid AND l.locktype = 'relation' AND l.granted),
  CASE WHEN w.worker
  THEN substring(a.query FROM '(?:\mcron_id\s*=\s*|\mid\s*=\s*|\mid\s+in\s*\(\s*)(\d+)')::int8 END,
  w.worker
FROM pg_catalog.pg_stat_activity a,
  LATERAL (SELECT coalesce(a.state LIKE 'idle in transaction%' AND ` + odoosql.CronWorkerStatement + `, false) AS worker) w
WHERE a.datname = ANY($1) AND a.backend_type = 'client backend'
  AND a.xact_start IS NOT NULL AND a.pid <> pg_backend_pid()`

// cronLocker is a backend that may be running a cron job.
type cronLocker struct {
	xactStart time.Time
	xid       string
	relations map[int64]bool
	job       int64 // from the cron worker's query text; 0 when none
	// worker: the session looks like Odoo's cron worker holding a job
	// (idle in transaction, last statement SELECT ... FROM ir_cron ...
	// FOR [NO KEY] UPDATE).
	worker bool
}

// cronLockers are the lockers of one scrape, by database.
type cronLockers map[string][]cronLocker

// PrepareCluster implements ClusterPreparer: the lockers are read once for
// all databases.
func (c *CronCollector) PrepareCluster(ctx context.Context, q postgres.Queryer, dbs []string) (any, error) {
	rows, err := q.Query(ctx, cronLockersSQL, dbs)
	if err != nil {
		return nil, fmt.Errorf("reading lock holders: %w", err)
	}
	defer rows.Close()
	lockers := cronLockers{}
	for rows.Next() {
		var (
			db   string
			l    cronLocker
			xid  *string
			rels []int64
			job  *int64
		)
		if err := rows.Scan(&db, &l.xactStart, &xid, &rels, &job, &l.worker); err != nil {
			return nil, err
		}
		if xid != nil {
			l.xid = *xid
		}
		if job != nil {
			l.job = *job
		}
		l.relations = make(map[int64]bool, len(rels))
		for _, r := range rels {
			l.relations[r] = true
		}
		lockers[db] = append(lockers[db], l)
	}
	return lockers, rows.Err()
}

// running returns, for each job id held, the start of the holding
// transaction. Only sessions that look like Odoo's cron worker holding a
// job count (a long transaction that inserted a trigger for the job also
// puts its id in the row's xmax and locks ir_cron, but runs nothing); of
// those, the job is the row whose xmax is the session's transaction id
// and which it holds a lock on ir_cron for (this rules out a multixact id
// that happens to equal an unrelated transaction id), or the job named in
// its query (when a trigger's foreign key also share-locks the row, xmax
// is a multixact and the first test misses it).
func (l cronLockers) running(db string, cronOID int64, xmax map[string]int64, now time.Time) map[int64]float64 {
	held := map[int64]float64{}
	for _, k := range l[db] {
		if !k.worker || !k.relations[cronOID] {
			continue
		}
		secs := now.Sub(k.xactStart).Seconds()
		if id, ok := xmax[k.xid]; ok && k.xid != "" {
			held[id] = max(held[id], secs)
		}
		if k.job != 0 {
			held[k.job] = max(held[k.job], secs)
		}
	}
	return held
}

// UpdateDatabase implements DatabaseCollector.
func (c *CronCollector) UpdateDatabase(ctx context.Context, q postgres.Queryer, db string, ch chan<- prometheus.Metric) error {
	s, err := c.schema(ctx, q, db)
	if err != nil {
		return err
	}
	lockers, _ := Prepared(ctx, c).(cronLockers)
	if err := c.update(ctx, q, s, lockers, db, ch); err != nil {
		c.forget(db)
		return err
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

func (c *CronCollector) update(ctx context.Context, q postgres.Queryer, s cronSchema, lockers cronLockers, db string, ch chan<- prometheus.Metric) error {
	rows, err := q.Query(ctx, s.jobsSQL())
	if err != nil {
		return fmt.Errorf("reading ir_cron: %w", err)
	}
	defer rows.Close()
	var (
		jobs, overdue, triggers, failing, lagMax float64
		threshold                                = c.opts.OverdueThreshold.Seconds()
		lagNames                                 = labelNames{}
		names                                    = map[int64]string{}
		xmax                                     = map[string]int64{}
		cronOID                                  int64
		now                                      time.Time
	)
	for rows.Next() {
		var (
			id                 int64
			name, rowXmax      string
			lag, trig, failure float64
			active             bool
		)
		if err := rows.Scan(&id, &name, &lag, &trig, &failure, &rowXmax, &cronOID, &now, &active); err != nil {
			return err
		}
		names[id] = name
		if rowXmax != "0" {
			xmax[rowXmax] = id
		}
		if !active {
			continue
		}
		jobs++
		triggers += trig
		lagMax = max(lagMax, lag)
		if lag > threshold {
			overdue++
		}
		if failure > 0 {
			failing++
		}
		if c.opts.PerJob {
			ch <- prometheus.MustNewConstMetric(cronJobLagDesc, prometheus.GaugeValue, lag, db, lagNames.unique(name, id))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	ch <- prometheus.MustNewConstMetric(cronJobsDesc, prometheus.GaugeValue, jobs, db)
	ch <- prometheus.MustNewConstMetric(cronLagMaxDesc, prometheus.GaugeValue, lagMax, db)
	ch <- prometheus.MustNewConstMetric(cronOverdueDesc, prometheus.GaugeValue, overdue, db)
	if s.hasTriggers {
		ch <- prometheus.MustNewConstMetric(cronTriggersDesc, prometheus.GaugeValue, triggers, db)
	}
	if s.hasFailures {
		ch <- prometheus.MustNewConstMetric(cronFailingDesc, prometheus.GaugeValue, failing, db)
	}

	if lockers == nil {
		return nil // no cluster-wide view in this scrape: running jobs unknown
	}
	var (
		running, runMax float64
		runNames        = labelNames{}
	)
	for id, secs := range lockers.running(db, cronOID, xmax, now) {
		name, ok := names[id]
		if !ok {
			continue // the query text named a job that is not (or no longer) locked
		}
		running++
		runMax = max(runMax, secs)
		ch <- prometheus.MustNewConstMetric(cronJobRunningDesc, prometheus.GaugeValue, secs, db, runNames.unique(name, id))
	}
	ch <- prometheus.MustNewConstMetric(cronRunningDesc, prometheus.GaugeValue, running, db)
	ch <- prometheus.MustNewConstMetric(cronRunningMaxDesc, prometheus.GaugeValue, runMax, db)
	return nil
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
