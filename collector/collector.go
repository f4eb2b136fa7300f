// Package collector holds the exporter's collectors, one file each, and the
// framework that runs them: registration with --[no-]collector.<name>
// switches, concurrent updates, and per-collector success and duration.
//
// There are two kinds of collectors. A Collector reads one source for the
// whole scrape (the cluster's activity, an HTTP probe, Docker). A
// DatabaseCollector reads one Odoo database; the framework runs every
// enabled DatabaseCollector on one connection per database (kept open and
// reused between scrapes while the bound allows), in the scrape or in
// background passes, with at most --pg.max-connections open at once.
//
// A scrape answers by its deadline: a collector still running then is
// reported as failed (odoo_exporter_collector_success 0) with what it had
// sent so far, and is left to end in the background.
package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/postgres"
)

// Namespace prefixes every metric of the exporter.
const Namespace = "odoo"

// Collector reads one source for the whole scrape.
type Collector interface {
	// Describe sends the descriptors of every metric Update may send.
	Describe(ch chan<- *prometheus.Desc)
	// Update sends the current metrics. An error marks the collector as
	// failed for this scrape; the metrics already sent are kept.
	Update(ctx context.Context, ch chan<- prometheus.Metric) error
}

// DatabaseCollector reads one Odoo database through q.
type DatabaseCollector interface {
	// Describe sends the descriptors of every metric UpdateDatabase may send.
	Describe(ch chan<- *prometheus.Desc)
	// UpdateDatabase sends the metrics of database db; every series carries
	// the label database=db.
	UpdateDatabase(ctx context.Context, q postgres.Queryer, db string, ch chan<- prometheus.Metric) error
}

// snapshotUser is implemented by DatabaseCollectors that read the
// scrape's snapshot of the cluster-wide views (scrapeSnapshot). Where the
// snapshot could wait for a connection the databases hold (a pass, and
// --pg.max-connections=1) it is taken before they are visited.
type snapshotUser interface{ usesSnapshot() }

// Runner is implemented by collectors with background work (a prober, an
// event subscription). Run blocks until ctx is done.
type Runner interface {
	Run(ctx context.Context)
}

// ErrNoSource is returned by Update when the collector's source is not
// configured; the collector then reports neither success nor failure.
var ErrNoSource = errors.New("source not configured")

// Deps are the shared sources handed to every factory.
type Deps struct {
	Logger *slog.Logger
	// PG is nil when no PostgreSQL DSN is configured.
	PG *postgres.Source
	// DatabaseRefresh, when above 0, makes the database collectors run in
	// the background, a pass over every database each DatabaseRefresh,
	// and scrapes answer from the last pass; 0 runs them in
	// every scrape.
	DatabaseRefresh time.Duration
}

// Factory builds a collector from the shared sources; it returns a
// Collector or a DatabaseCollector.
type Factory func(Deps) (any, error)

type registration struct {
	name    string
	enabled *bool
	factory Factory
}

var (
	registry = map[string]*registration{}
)

// registerCollector is called from each collector file's init. It creates
// the --[no-]collector.<name> switch.
func registerCollector(name string, enabledByDefault bool, factory Factory) {
	def := "disabled"
	if enabledByDefault {
		def = "enabled"
	}
	help := fmt.Sprintf("Enable the %s collector (default: %s).", name, def)
	flag := kingpin.Flag("collector."+name, help).Default(fmt.Sprint(enabledByDefault))
	registry[name] = &registration{name: name, enabled: flag.Bool(), factory: factory}
}

// Names returns the names of all registered collectors, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DefaultDatabaseRefresh is the background pass interval used for
// discovered databases (--odoo.database=all) when none is given: a scrape
// then costs the cluster one query on a connection that stays open,
// however many databases there are, and a pass over N databases costs at
// most N sessions per interval (none when they fit in the connections).
const DefaultDatabaseRefresh = time.Minute

var (
	scrapeSuccessDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "exporter", "collector_success"),
		"Whether the collector succeeded in the last scrape (1) or failed (0), a collector still running at the scrape's deadline included; database collectors with --odoo.database-refresh-interval: in the last background pass.",
		[]string{"collector"}, nil)
	scrapeDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "exporter", "collector_duration_seconds"),
		"Time the collector took in the last scrape (or background pass), up to the scrape's deadline; for database collectors, summed over databases.",
		[]string{"collector"}, nil)
	databaseUpDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "database", "up"),
		"Whether the exporter could connect to the Odoo database in the last collection (this scrape, or the last background pass).",
		[]string{"database"}, nil)
	databasePassDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "exporter", "database_pass_timestamp_seconds"),
		"When the last background pass of the database collectors over the databases ended (only with --odoo.database-refresh-interval above 0).",
		nil, nil)
	databasePassDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "exporter", "database_pass_duration_seconds"),
		"How long the last background pass over the databases took; a pass longer than --odoo.database-refresh-interval is cut there.",
		nil, nil)
	databasesDesc = prometheus.NewDesc(
		"odoo_databases",
		"Number of Odoo databases collected (configured, or found by the last discovery: see odoo_exporter_discovery_success).",
		nil, nil)
	discoverySuccessDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "exporter", "discovery_success"),
		"Whether the last database discovery (--odoo.database=all) checked every database (1) or not (0: the databases not checked keep their last known status, and the database collectors report failure).",
		nil, nil)
	discoveryLastSuccessDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "exporter", "discovery_last_success_timestamp_seconds"),
		"When the last database discovery that checked every database ended.",
		nil, nil)
	discoveryDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "exporter", "discovery_duration_seconds"),
		"How long the last database discovery took.",
		nil, nil)
	discoveryErrorsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "exporter", "discovery_errors_total"),
		"Database discoveries that failed (could not list the databases, or could not check one of them).",
		nil, nil)
	pgSessionsOpenedDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "exporter", "pg_sessions_opened_total"),
		"PostgreSQL sessions the exporter opened since it started (a warm scrape opens none while the databases fit in --pg.max-connections).",
		nil, nil)
)

// Exporter runs the enabled collectors. It is built once; each scrape calls
// Scrape to bind it to the request's deadline.
type Exporter struct {
	logger     *slog.Logger
	pg         *postgres.Source
	collectors map[string]Collector
	dbs        map[string]DatabaseCollector
	dbNames    []string // sorted names of dbs
	dbRefresh  time.Duration

	passMu sync.Mutex
	pass   *dbPass // last complete background pass; nil before the first

	stateMu sync.Mutex
	failing map[string]bool // collectors whose last run failed, for logging

	// inflight counts the collectors still running, those a scrape left
	// at its deadline included; Close waits for them.
	inflight sync.WaitGroup
}

// dbPass is what one background pass of the database collectors sent and
// how each collector fared.
type dbPass struct {
	metrics []prometheus.Metric
	results map[string]*result
	end     time.Time
	took    time.Duration
}

// result is how one collector fared in a scrape or pass.
type result struct {
	d   time.Duration
	err error
}

// New builds the collectors that are enabled by flag (or, when filters are
// given, only those named) from deps.
func New(deps Deps, filters ...string) (*Exporter, error) {
	enabled := map[string]bool{}
	if len(filters) > 0 {
		for _, f := range filters {
			if _, ok := registry[f]; !ok {
				return nil, fmt.Errorf("unknown collector %q", f)
			}
			enabled[f] = true
		}
	} else {
		for n, r := range registry {
			if *r.enabled {
				enabled[n] = true
			}
		}
	}
	e := &Exporter{
		logger:     deps.Logger,
		pg:         deps.PG,
		collectors: map[string]Collector{},
		dbs:        map[string]DatabaseCollector{},
		dbRefresh:  deps.DatabaseRefresh,
		failing:    map[string]bool{},
	}
	for _, name := range Names() {
		if !enabled[name] {
			continue
		}
		c, err := registry[name].factory(deps)
		if err != nil {
			return nil, fmt.Errorf("collector %s: %w", name, err)
		}
		switch c := c.(type) {
		case nil:
			// The factory found nothing to collect (e.g. no URL configured).
		case DatabaseCollector:
			if deps.PG == nil {
				continue
			}
			e.dbs[name] = c
			e.dbNames = append(e.dbNames, name)
		case Collector:
			e.collectors[name] = c
		default:
			return nil, fmt.Errorf("collector %s: factory returned %T", name, c)
		}
	}
	return e, nil
}

// Enabled returns the names of the collectors built.
func (e *Exporter) Enabled() []string {
	var names []string
	for n := range e.collectors {
		names = append(names, n)
	}
	names = append(names, e.dbNames...)
	sort.Strings(names)
	return names
}

// Run starts the background work of the collectors that have some and
// returns when ctx is done and all of it has stopped.
func (e *Exporter) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range e.collectors {
		if r, ok := c.(Runner); ok {
			wg.Add(1)
			go func() { defer wg.Done(); r.Run(ctx) }()
		}
	}
	for _, c := range e.dbs {
		if r, ok := c.(Runner); ok {
			wg.Add(1)
			go func() { defer wg.Done(); r.Run(ctx) }()
		}
	}
	if e.dbRefresh > 0 && len(e.dbs) > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); e.refreshDatabases(ctx) }()
	}
	wg.Wait()
}

// refreshDatabases runs a pass of the database collectors at once, then
// every dbRefresh, until ctx is done. A pass may last dbRefresh at most;
// after a pass cut there, the next one waits a whole interval, so that
// passes never run back to back.
func (e *Exporter) refreshDatabases(ctx context.Context) {
	for {
		begin := time.Now()
		e.runPass(ctx)
		wait := e.dbRefresh - time.Since(begin)
		if wait <= 0 {
			wait = e.dbRefresh
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// runPass collects every database into a new pass. It uses the database
// connections only, so that scrapes during a pass are not held up by it.
func (e *Exporter) runPass(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, e.dbRefresh)
	defer cancel()
	pctx = withPassSnapshot(pctx, e.pg)
	ch := make(chan prometheus.Metric, 256)
	done := make(chan []prometheus.Metric)
	go func() {
		var ms []prometheus.Metric
		for m := range ch {
			ms = append(ms, m)
		}
		done <- ms
	}()
	begin := time.Now()
	results := e.collectDatabases(pctx, ch)
	close(ch)
	ms := <-done
	if ctx.Err() != nil {
		return // shutting down: this pass was cut short
	}
	took := time.Since(begin)
	if pctx.Err() != nil {
		// The databases not reached are absent from this pass (not
		// reported down) and the collectors report failure.
		e.logger.Warn("the pass over the databases did not end within --odoo.database-refresh-interval; raise it",
			"interval", e.dbRefresh, "took", took)
	}
	for _, n := range e.dbNames {
		e.logState(n, results[n].d, results[n].err)
	}
	e.passMu.Lock()
	e.pass = &dbPass{metrics: ms, results: results, end: time.Now(), took: took}
	e.passMu.Unlock()
}

// sendPass sends the last pass, if any.
func (e *Exporter) sendPass(ch chan<- prometheus.Metric) {
	e.passMu.Lock()
	p := e.pass
	e.passMu.Unlock()
	if p == nil {
		return
	}
	for _, m := range p.metrics {
		ch <- m
	}
	for _, n := range e.dbNames {
		sendResult(ch, n, p.results[n])
	}
	ch <- prometheus.MustNewConstMetric(databasePassDesc, prometheus.GaugeValue, float64(p.end.UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(databasePassDurationDesc, prometheus.GaugeValue, p.took.Seconds())
}

// Close waits for the collectors still running (left by a scrape at its
// deadline) and releases what the collectors hold (e.g. API clients); call
// it after Run has returned.
func (e *Exporter) Close() error {
	e.inflight.Wait()
	var errs []error
	for _, c := range e.collectors {
		if cl, ok := c.(io.Closer); ok {
			errs = append(errs, cl.Close())
		}
	}
	for _, c := range e.dbs {
		if cl, ok := c.(io.Closer); ok {
			errs = append(errs, cl.Close())
		}
	}
	return errors.Join(errs...)
}

// Describe sends the descriptors of every metric the enabled collectors
// may send.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	// Collectors may share a descriptor (odoo_version_info comes from the
	// database and from HTTP): send each once.
	inner := make(chan *prometheus.Desc)
	done := make(chan struct{})
	go func() {
		defer close(done)
		seen := map[string]bool{}
		for d := range inner {
			if !seen[d.String()] {
				seen[d.String()] = true
				ch <- d
			}
		}
	}()
	e.describe(inner)
	close(inner)
	<-done
}

func (e *Exporter) describe(ch chan<- *prometheus.Desc) {
	ch <- scrapeSuccessDesc
	ch <- scrapeDurationDesc
	if e.pg != nil {
		ch <- pgSessionsOpenedDesc
		ch <- discoverySuccessDesc
		ch <- discoveryLastSuccessDesc
		ch <- discoveryDurationDesc
		ch <- discoveryErrorsDesc
	}
	if len(e.dbs) > 0 {
		ch <- databaseUpDesc
		ch <- databasesDesc
		if e.dbRefresh > 0 {
			ch <- databasePassDesc
			ch <- databasePassDurationDesc
		}
	}
	for _, c := range e.collectors {
		c.Describe(ch)
	}
	for _, c := range e.dbs {
		c.Describe(ch)
	}
}

// Scrape returns a prometheus.Collector that runs one scrape bounded by ctx.
func (e *Exporter) Scrape(ctx context.Context) prometheus.Collector {
	return &scrape{e: e, ctx: ctx}
}

type scrape struct {
	e   *Exporter
	ctx context.Context
}

func (s *scrape) Describe(ch chan<- *prometheus.Desc) { s.e.Describe(ch) }

// unit is one collector, or the database collectors together, running in
// a scrape: what it sent so far and, once done, how each collector fared.
type unit struct {
	names   []string
	mu      sync.Mutex
	metrics []prometheus.Metric
	done    bool
	// abandoned: the scrape reported it failed at its deadline and no
	// longer waits for it.
	abandoned bool
	sent      bool // received and sent by Collect (Collect's goroutine only)
	results   map[string]*result
}

func (u *unit) add(m prometheus.Metric) {
	u.mu.Lock()
	u.metrics = append(u.metrics, m)
	u.mu.Unlock()
}

// start runs fn in the background, collecting what it sends into u, and
// posts u to finished when fn has returned.
func (e *Exporter) start(u *unit, finished chan<- *unit, fn func(ch chan<- prometheus.Metric) map[string]*result) {
	e.inflight.Add(1)
	go func() {
		defer e.inflight.Done()
		ch := make(chan prometheus.Metric, 64)
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for m := range ch {
				u.add(m)
			}
		}()
		results := fn(ch)
		close(ch)
		<-drained
		u.mu.Lock()
		u.done, u.results = true, results
		u.mu.Unlock()
		finished <- u
	}()
}

// Collect runs the collectors concurrently and answers by the scrape's
// deadline: the collectors still running then are reported as failed for
// this scrape, with the metrics they had sent.
func (s *scrape) Collect(ch chan<- prometheus.Metric) {
	e := s.e
	begin := time.Now()
	ctx := withSnapshot(s.ctx, e.pg)
	var units []*unit
	finished := make(chan *unit, len(e.collectors)+1)
	for name, c := range e.collectors {
		u := &unit{names: []string{name}}
		units = append(units, u)
		e.start(u, finished, func(ch chan<- prometheus.Metric) map[string]*result {
			begin := time.Now()
			err := c.Update(ctx, ch)
			return map[string]*result{name: {d: time.Since(begin), err: err}}
		})
	}
	if len(e.dbs) > 0 {
		if e.dbRefresh > 0 {
			e.sendPass(ch)
		} else {
			u := &unit{names: e.dbNames}
			units = append(units, u)
			e.start(u, finished, func(ch chan<- prometheus.Metric) map[string]*result {
				return e.collectDatabases(ctx, ch)
			})
		}
	}
	if e.pg != nil {
		// After the collectors: discovery may end during the scrape.
		defer e.sendSource(ch)
	}

	pending := len(units)
	for pending > 0 {
		select {
		case u := <-finished:
			e.send(ch, u)
			pending--
			u.sent = true
		case <-ctx.Done():
			took := time.Since(begin)
			late := 0 // done before the deadline, not received yet
			for _, u := range units {
				if u.sent {
					continue
				}
				u.mu.Lock()
				if u.done {
					u.mu.Unlock()
					late++
					continue
				}
				u.abandoned = true
				ms := u.metrics
				u.mu.Unlock()
				for _, m := range ms {
					ch <- m
				}
				for _, n := range u.names {
					e.report(ch, n, &result{d: took, err: fmt.Errorf("still running at the scrape's deadline (%.3gs): left out of this scrape", took.Seconds())})
				}
			}
			// A unit sets done just before it posts itself: wait for those.
			for late > 0 {
				u := <-finished
				if u.abandoned {
					continue // posts after its deadline report; not sent
				}
				e.send(ch, u)
				late--
			}
			return
		}
	}
}

// send sends what a finished unit collected and how its collectors fared.
func (e *Exporter) send(ch chan<- prometheus.Metric, u *unit) {
	for _, m := range u.metrics {
		ch <- m
	}
	for _, n := range u.names {
		e.report(ch, n, u.results[n])
	}
}

// sendSource sends the state of the PostgreSQL source: sessions opened
// and database discovery.
func (e *Exporter) sendSource(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(pgSessionsOpenedDesc, prometheus.CounterValue, float64(e.pg.SessionsOpened()))
	d := e.pg.Discovery()
	if !d.Enabled {
		return
	}
	ch <- prometheus.MustNewConstMetric(discoveryErrorsDesc, prometheus.CounterValue, float64(d.Errors))
	if !d.Ran {
		return
	}
	success := 1.0
	if d.Err != nil {
		success = 0
	}
	ch <- prometheus.MustNewConstMetric(discoverySuccessDesc, prometheus.GaugeValue, success)
	ch <- prometheus.MustNewConstMetric(discoveryDurationDesc, prometheus.GaugeValue, d.Duration.Seconds())
	if !d.LastSuccess.IsZero() {
		ch <- prometheus.MustNewConstMetric(discoveryLastSuccessDesc, prometheus.GaugeValue, float64(d.LastSuccess.UnixNano())/1e9)
	}
}

// report logs a collector's state change and sends its success and
// duration.
func (e *Exporter) report(ch chan<- prometheus.Metric, name string, r *result) {
	if r == nil || errors.Is(r.err, ErrNoSource) {
		return
	}
	e.logState(name, r.d, r.err)
	sendResult(ch, name, r)
}

// logState logs a collector's failure once, when it starts failing, and
// its recovery; repeats go to the debug level.
func (e *Exporter) logState(name string, d time.Duration, err error) {
	if errors.Is(err, ErrNoSource) {
		return
	}
	e.stateMu.Lock()
	if e.failing == nil {
		e.failing = map[string]bool{}
	}
	was := e.failing[name]
	e.failing[name] = err != nil
	e.stateMu.Unlock()
	switch {
	case err != nil && !was:
		e.logger.Error("collector failed", "collector", name, "duration_seconds", d.Seconds(), "err", err)
	case err != nil:
		e.logger.Debug("collector still failing", "collector", name, "duration_seconds", d.Seconds(), "err", err)
	case was:
		e.logger.Info("collector succeeded again", "collector", name, "duration_seconds", d.Seconds())
	default:
		e.logger.Debug("collector succeeded", "collector", name, "duration_seconds", d.Seconds())
	}
}

func sendResult(ch chan<- prometheus.Metric, name string, r *result) {
	if r == nil || errors.Is(r.err, ErrNoSource) {
		return
	}
	success := 1.0
	if r.err != nil {
		success = 0
	}
	ch <- prometheus.MustNewConstMetric(scrapeDurationDesc, prometheus.GaugeValue, r.d.Seconds(), name)
	ch <- prometheus.MustNewConstMetric(scrapeSuccessDesc, prometheus.GaugeValue, success, name)
}

// collectDatabases runs every DatabaseCollector on every database, one
// connection per database, at most the Source's database connections at
// once, within ctx, and returns how each collector fared. A database that
// no longer exists (dropped since discovery) is forgotten at once and is
// neither reported down nor a failure.
func (e *Exporter) collectDatabases(ctx context.Context, ch chan<- prometheus.Metric) map[string]*result {
	results := make(map[string]*result, len(e.dbNames))
	for _, n := range e.dbNames {
		results[n] = &result{}
	}
	dbs, dbsErr := e.pg.Databases(ctx)
	if dbs == nil && dbsErr != nil {
		for _, n := range e.dbNames {
			results[n].err = fmt.Errorf("listing databases: %w", dbsErr)
		}
		return results
	}
	all := e.pg.Discovery().Enabled

	// The snapshot is read first where it would otherwise wait for a
	// connection the databases hold: in a pass (on the first database's
	// connection) and without a reserved connection
	// (--pg.max-connections=1). In a scrape it is read on the reserved
	// connection, beside the databases.
	if len(dbs) > 0 {
		inPass := passSnapshotOn(ctx, dbs[0])
		for _, n := range e.dbNames {
			if _, ok := e.dbs[n].(snapshotUser); ok && (inPass || e.pg.MaxConns() < 2) {
				// Its error reaches the collector through scrapeSnapshot.
				begin := time.Now()
				_, _ = ClusterSnapshot(ctx, e.pg)
				results[n].d += time.Since(begin)
				break
			}
		}
	}

	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		sem     = make(chan struct{}, e.pg.DatabaseConns())
		present atomic.Int64
	)
	for _, db := range dbs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			up, known := 1.0, true
			err := e.pg.WithConn(ctx, db, func(q postgres.Queryer) error {
				for _, n := range e.dbNames {
					begin := time.Now()
					err := e.dbs[n].UpdateDatabase(ctx, q, db, ch)
					d := time.Since(begin)
					mu.Lock()
					results[n].d += d
					if err != nil && results[n].err == nil {
						results[n].err = fmt.Errorf("database %s: %w", db, e.pg.Explain(err))
					}
					mu.Unlock()
					if ctx.Err() != nil {
						return ctx.Err()
					}
				}
				return nil
			})
			if err != nil && all && postgres.IsDatabaseMissing(err) {
				// Dropped since it was discovered: gone, not down.
				e.pg.Forget(db)
				return
			}
			present.Add(1)
			if err != nil {
				var connErr *postgres.ConnectError
				switch {
				case ctx.Err() != nil:
					// Not reached before the deadline: not known to be down.
					known = false
				case errors.As(err, &connErr):
					up = 0
				}
				mu.Lock()
				for _, n := range e.dbNames {
					if results[n].err == nil {
						results[n].err = fmt.Errorf("database %s: %w", db, e.pg.Explain(err))
					}
				}
				mu.Unlock()
			}
			if known {
				ch <- prometheus.MustNewConstMetric(databaseUpDesc, prometheus.GaugeValue, up, db)
			}
		}()
	}
	wg.Wait()
	ch <- prometheus.MustNewConstMetric(databasesDesc, prometheus.GaugeValue, float64(present.Load()))
	if dbsErr != nil {
		for _, n := range e.dbNames {
			if results[n].err == nil {
				results[n].err = dbsErr
			}
		}
	}
	return results
}
