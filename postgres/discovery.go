package postgres

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// listDatabasesSQL lists the databases one can connect to; templates are
// never Odoo databases.
const listDatabasesSQL = `SELECT datname FROM pg_catalog.pg_database
WHERE datallowconn AND NOT datistemplate ORDER BY datname`

// isOdooSQL is true in a database where Odoo's base module is installed,
// the definition Odoo itself uses (odoo/service/db.py list_dbs filters on
// the table; the registry requires base).
const isOdooSQL = `SELECT to_regclass('ir_module_module') IS NOT NULL
AND EXISTS (SELECT 1 FROM ir_module_module WHERE name = 'base' AND state = 'installed')`

// isOdooGuardSQL avoids a failing query when the table is missing.
const isOdooGuardSQL = `SELECT to_regclass('ir_module_module') IS NOT NULL`

// Databases returns the Odoo databases to collect: the configured one, or,
// with Database = AllDatabases, those discovered in the cluster (cached for
// DiscoveryInterval; a failed discovery keeps the previous list if any).
func (s *Source) Databases(ctx context.Context) ([]string, error) {
	switch s.cfg.Database {
	case "":
		return []string{s.base.Database}, nil
	case AllDatabases:
	default:
		return []string{s.cfg.Database}, nil
	}
	s.dbsMu.Lock()
	defer s.dbsMu.Unlock()
	if s.dbs != nil && time.Since(s.dbsTime) < s.cfg.DiscoveryInterval {
		return s.dbs, nil
	}
	dbs, err := s.discover(ctx)
	if err != nil {
		if s.dbs != nil {
			s.logger.Warn("database discovery failed, keeping the previous list", "err", err)
			return s.dbs, nil
		}
		return nil, err
	}
	if len(dbs) != len(s.dbs) {
		s.logger.Info("discovered Odoo databases", "count", len(dbs))
	}
	s.dbs, s.dbsTime = dbs, time.Now()
	return dbs, nil
}

func (s *Source) discover(ctx context.Context) ([]string, error) {
	var all []string
	err := s.WithConn(ctx, "", func(q Queryer) error {
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
		return nil, fmt.Errorf("listing databases: %w", err)
	}

	var (
		mu   sync.Mutex
		odoo []string
		wg   sync.WaitGroup
	)
	for _, db := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// WithConn bounds the concurrency to MaxConns.
			err := s.WithConn(ctx, db, func(q Queryer) error {
				var hasTable bool
				if err := q.QueryRow(ctx, isOdooGuardSQL).Scan(&hasTable); err != nil || !hasTable {
					return err
				}
				var ok bool
				if err := q.QueryRow(ctx, isOdooSQL).Scan(&ok); err != nil {
					return err
				}
				if ok {
					mu.Lock()
					odoo = append(odoo, db)
					mu.Unlock()
				}
				return nil
			})
			if err != nil {
				s.logger.Debug("skipping database during discovery", "database", db, "err", err)
			}
		}()
	}
	wg.Wait()
	sort.Strings(odoo)
	return odoo, nil
}
