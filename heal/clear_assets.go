package heal

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"
)

func init() {
	registerAction("clear_assets", &ActionKind{
		TargetKind:  TargetDatabase,
		TargetLabel: "database",
		New: func(n *yaml.Node) (Action, error) {
			p := ClearAssetsParams{MaxRows: 1000}
			if err := decodeParams(n, &p); err != nil {
				return nil, err
			}
			if p.MaxRows < 1 {
				return nil, errors.New("max_rows must be at least 1")
			}
			return &ClearAssets{p}, nil
		},
	})
}

// ClearAssetsParams configure clear_assets.
type ClearAssetsParams struct {
	// MaxRows: when more asset-bundle rows exist, nothing is deleted (a
	// sign the selection is not what it seems).
	MaxRows int `yaml:"max_rows"`
}

// ClearAssets deletes the compiled asset-bundle attachments (ir_attachment
// rows with url LIKE '/web/assets/%' and res_model 'ir.ui.view') in one
// transaction, as the runbook's quick fix does, so that Odoo rebuilds the
// bundles on the next request. Nothing else is touched: the filestore
// files of the deleted rows stay on disk, and the other Odoo workers keep
// their caches until they are recycled (chain a recycle_workers rule with
// follow_up).
type ClearAssets struct{ p ClearAssetsParams }

const assetRows = `FROM ir_attachment WHERE url LIKE '/web/assets/%' AND res_model = 'ir.ui.view'`

// Run implements Action.
func (c *ClearAssets) Run(ctx context.Context, env *Env, db string, dryRun bool, rep *Report) (func(context.Context) error, error) {
	var maxID int64
	err := env.PG.withConn(ctx, db, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(max(id), 0) `+assetRows).Scan(&n, &maxID); err != nil {
				return fmt.Errorf("counting asset-bundle attachments: %w", err)
			}
			if n == 0 {
				rep.Nothing("database %q has no asset-bundle attachment (url LIKE '/web/assets/%%', res_model 'ir.ui.view')", db)
				return nil
			}
			if n > c.p.MaxRows {
				return fmt.Errorf("%d asset-bundle attachments, more than max_rows %d: refusing", n, c.p.MaxRows)
			}
			if dryRun {
				rep.Step("would delete %d asset-bundle attachment(s) (url LIKE '/web/assets/%%', res_model 'ir.ui.view') of database %q in one transaction", n, db)
				return nil
			}
			tag, err := tx.Exec(ctx, `DELETE `+assetRows+` AND id <= $1`, maxID)
			if err != nil {
				return fmt.Errorf("deleting asset-bundle attachments: %w", err)
			}
			// The DELETE sees rows committed since the count: never more
			// than max_rows (the error rolls the transaction back).
			if tag.RowsAffected() > int64(c.p.MaxRows) {
				return fmt.Errorf("the delete matched %d asset-bundle attachments, more than max_rows %d: rolled back", tag.RowsAffected(), c.p.MaxRows)
			}
			rep.Acted("deleted %d asset-bundle attachment(s) (url LIKE '/web/assets/%%', res_model 'ir.ui.view') of database %q in one transaction; Odoo rebuilds them on the next request; other workers' caches need a recycle (follow_up: recycle_workers)", tag.RowsAffected(), db)
			return nil
		})
	})
	if err != nil || dryRun || rep.isNothing() {
		return nil, err
	}
	return verifyNone(env, db, "old asset-bundle attachment(s)", `SELECT count(*) `+assetRows+` AND id <= $1`, maxID), nil
}
