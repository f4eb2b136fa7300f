package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// listDatabasesSQL lists the databases the role may connect to; templates
// are never Odoo databases.
const listDatabasesSQL = `SELECT datname FROM pg_catalog.pg_database
WHERE datallowconn AND NOT datistemplate AND has_database_privilege(datname, 'CONNECT')
ORDER BY datname`

// isOdooSQL is true in a database where Odoo's base module is installed,
// the definition Odoo itself uses (odoo/service/db.py list_dbs filters on
// the table; the registry requires base).
const isOdooSQL = `SELECT EXISTS (SELECT 1 FROM ir_module_module WHERE name = 'base' AND state = 'installed')`

// isOdooGuardSQL avoids a failing query when the table is missing.
const isOdooGuardSQL = `SELECT to_regclass('ir_module_module') IS NOT NULL`

// discoveryRetry is how soon a discovery that could not even list the
// databases (server down) runs again.
const discoveryRetry = 15 * time.Second

// discovery is the state of --odoo.database=all. Runs happen in the
// background, each bounded by Config.DiscoveryTimeout, never in a scrape's
// time: Databases answers from the last run at once (only the very first
// call waits for the first run).
type discovery struct {
	mu      sync.Mutex
	dbs     []string // last known Odoo databases
	listed  bool     // a run listed the databases at least once
	ran     bool     // a run ended
	running bool
	done    chan struct{} // closed when the current (or last) run ends
	started time.Time     // start of the last run
	stale   bool          // a database vanished: run again at once
	err     error         // the last run's failure; nil when it was whole
	lastOK  time.Time
	took    time.Duration
	errors  int64
}

// DiscoveryStatus describes database discovery (--odoo.database=all).
type DiscoveryStatus struct {
	// Enabled is false unless Database is AllDatabases.
	Enabled bool
	// Ran is true once a run has ended.
	Ran bool
	// Err is the last run's failure, nil when it checked every database.
	Err error
	// LastSuccess is when the last whole run ended (zero if none).
	LastSuccess time.Time
	// Duration is how long the last run took.
	Duration time.Duration
	// Errors counts the runs that failed.
	Errors int64
}

// Discovery returns the state of database discovery.
func (s *Source) Discovery() DiscoveryStatus {
	if s.cfg.Database != AllDatabases {
		return DiscoveryStatus{}
	}
	d := &s.disc
	d.mu.Lock()
	defer d.mu.Unlock()
	return DiscoveryStatus{Enabled: true, Ran: d.ran, Err: d.err, LastSuccess: d.lastOK, Duration: d.took, Errors: d.errors}
}

// Databases returns the Odoo databases to collect: the configured one, or,
// with Database = AllDatabases, those of the last discovery run. Discovery
// runs in the background every DiscoveryInterval; only the first call
// waits for the first run (or for ctx). The list is never partial without
// saying so: when the last run could not check every database, those it
// did not check keep their last known status and the error is returned
// with the list.
func (s *Source) Databases(ctx context.Context) ([]string, error) {
	switch s.cfg.Database {
	case "":
		return []string{s.base.Database}, nil
	case AllDatabases:
	default:
		return []string{s.cfg.Database}, nil
	}
	d := &s.disc
	d.mu.Lock()
	s.startDiscoveryLocked()
	for !d.ran {
		done := d.done
		d.mu.Unlock()
		if done == nil {
			return nil, errors.New("database discovery stopped")
		}
		select {
		case <-done:
		case <-ctx.Done():
			return nil, fmt.Errorf("the first database discovery has not ended yet: %w", ctx.Err())
		}
		d.mu.Lock()
	}
	defer d.mu.Unlock()
	if d.err != nil {
		err := fmt.Errorf("database discovery incomplete (databases not checked keep their last known status): %w", d.err)
		if !d.listed {
			return nil, err
		}
		return slices.Clone(d.dbs), err
	}
	return slices.Clone(d.dbs), nil
}

// Forget removes db from the discovered databases at once and makes the
// next call of Databases start a new discovery: the database is gone (its
// connection failed with "database does not exist").
func (s *Source) Forget(db string) {
	s.closeIdle(db)
	if s.cfg.Database != AllDatabases {
		return
	}
	d := &s.disc
	d.mu.Lock()
	defer d.mu.Unlock()
	if i := slices.Index(d.dbs, db); i >= 0 {
		d.dbs = slices.Delete(slices.Clone(d.dbs), i, i+1)
		s.logger.Info("an Odoo database no longer exists: removed from the collected databases", "database", db)
	}
	d.stale = true
}

// startDiscoveryLocked starts a discovery run in the background when one
// is due. The caller holds d.mu.
func (s *Source) startDiscoveryLocked() {
	d := &s.disc
	if d.running || s.bg.Err() != nil {
		return
	}
	age := time.Since(d.started)
	due := d.done == nil || d.stale || age >= s.cfg.DiscoveryInterval || (!d.listed && age >= discoveryRetry)
	if !due {
		return
	}
	d.running, d.stale, d.started = true, false, time.Now()
	d.done = make(chan struct{})
	prev := slices.Clone(d.dbs)
	s.bgWG.Add(1)
	go s.runDiscovery(prev, d.done)
}

func (s *Source) runDiscovery(prev []string, done chan struct{}) {
	defer s.bgWG.Done()
	ctx, cancel := context.WithTimeout(s.bg, s.cfg.DiscoveryTimeout)
	defer cancel()
	begin := time.Now()
	dbs, listed, err := s.discover(ctx, prev)
	took := time.Since(begin)

	d := &s.disc
	d.mu.Lock()
	defer d.mu.Unlock()
	defer close(done)
	d.running, d.ran, d.took = false, true, took
	if s.bg.Err() != nil {
		return // closing
	}
	wasFailing := d.err != nil
	if listed {
		added, removed := diff(d.dbs, dbs)
		if !d.listed || len(added)+len(removed) > 0 {
			s.logger.Info("discovered Odoo databases", "count", len(dbs), "added", strings.Join(added, ","), "removed", strings.Join(removed, ","))
		}
		d.dbs, d.listed = dbs, true
	}
	d.err = err
	if err != nil {
		d.errors++
		if !wasFailing {
			s.logger.Error("database discovery failed: databases not checked keep their last known status and the database collectors report failure until a discovery succeeds",
				"took", took, "err", err)
		}
		return
	}
	d.lastOK = time.Now()
	if wasFailing {
		s.logger.Info("database discovery succeeded again", "count", len(dbs), "took", took)
	}
}

// diff returns what b adds to a and what it removes from it.
func diff(a, b []string) (added, removed []string) {
	for _, x := range b {
		if !slices.Contains(a, x) {
			added = append(added, x)
		}
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			removed = append(removed, x)
		}
	}
	return added, removed
}

// discover lists the databases and checks each. It returns the Odoo
// databases; a database whose check failed or was not reached within ctx
// keeps its status in prev. listed is false when the list itself could not
// be read (then prev is returned).
func (s *Source) discover(ctx context.Context, prev []string) (dbs []string, listed bool, err error) {
	var all []string
	err = s.WithConn(ctx, "", func(q Queryer) error {
		rows, err := q.Query(ctx, listDatabasesSQL)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				return err
			}
			all = append(all, name)
		}
		return rows.Err()
	})
	if err != nil {
		return prev, false, fmt.Errorf("listing databases: %w", err)
	}

	type result struct {
		checked, odoo bool
		err           error
	}
	var (
		results = make([]result, len(all))
		wg      sync.WaitGroup
	)
	for i, db := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var odoo bool
			check := func(q Queryer) error {
				var err error
				odoo, err = s.isOdoo(ctx, q)
				return err
			}
			var err error
			if s.reserved && db == s.base.Database {
				err = s.WithConn(ctx, "", check)
			} else {
				// Only Odoo databases keep their connection (the database
				// collectors will use it); WithConn bounds the concurrency.
				keep := false
				err = s.withConn(ctx, db, true, func(q Queryer) error {
					err := check(q)
					keep = err == nil && odoo
					return err
				})
				if err == nil && !keep {
					s.closeIdle(db)
				}
			}
			switch {
			case err != nil && IsDatabaseMissing(err):
				results[i] = result{checked: true} // dropped since the listing
			case err != nil && ctx.Err() != nil:
				// Not reached within the budget: not checked.
			case err != nil:
				results[i] = result{err: fmt.Errorf("database %s: %w", db, s.Explain(err))}
			default:
				results[i] = result{checked: true, odoo: odoo}
			}
		}()
	}
	wg.Wait()

	var (
		errs      []string
		unchecked int
	)
	for i, db := range all {
		r := results[i]
		switch {
		case r.checked && r.odoo:
			dbs = append(dbs, db)
		case r.checked:
		default:
			if r.err != nil {
				errs = append(errs, r.err.Error())
			} else {
				unchecked++
			}
			if slices.Contains(prev, db) {
				dbs = append(dbs, db)
			}
		}
	}
	sort.Strings(dbs)
	if unchecked > 0 {
		errs = append(errs, fmt.Sprintf("%d of %d databases not checked within the discovery timeout (%s)", unchecked, len(all), s.cfg.DiscoveryTimeout))
	}
	switch {
	case len(errs) > 3:
		return dbs, true, fmt.Errorf("%s; and %d more", strings.Join(errs[:3], "; "), len(errs)-3)
	case len(errs) > 0:
		return dbs, true, errors.New(strings.Join(errs, "; "))
	}
	return dbs, true, nil
}

// isOdoo tells whether q's database is an Odoo database. A role that cannot
// read ir_module_module gets an error naming the grant it needs.
func (s *Source) isOdoo(ctx context.Context, q Queryer) (bool, error) {
	var hasTable bool
	if err := q.QueryRow(ctx, isOdooGuardSQL).Scan(&hasTable); err != nil || !hasTable {
		return false, err
	}
	var ok bool
	if err := q.QueryRow(ctx, isOdooSQL).Scan(&ok); err != nil {
		return false, fmt.Errorf("reading ir_module_module: %w", err)
	}
	return ok, nil
}
