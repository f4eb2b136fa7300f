package heal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

func init() {
	registerAction("reset_module_states", &ActionKind{
		TargetKind:  TargetDatabase,
		TargetLabel: "database",
		New: func(n *yaml.Node) (Action, error) {
			p := ResetModuleStatesParams{MinAge: model.Duration(time.Hour)}
			if err := decodeParams(n, &p); err != nil {
				return nil, err
			}
			if p.MinAge < model.Duration(10*time.Minute) {
				return nil, errors.New("min_age must be at least 10m (an install or upgrade may be running)")
			}
			return &ResetModuleStates{p}, nil
		},
	})
}

// ResetModuleStatesParams configure reset_module_states.
type ResetModuleStatesParams struct {
	// MinAge: modules must have been marked 'to ...' (write_date) at least
	// this long ago. Odoo itself resets them after 5 hours of stalled
	// crons.
	MinAge model.Duration `yaml:"min_age"`
}

// ResetModuleStates resets modules stuck in 'to install', 'to upgrade' or
// 'to remove' exactly as Odoo's odoo.modules.loading.reset_modules_state
// does (called by ir.cron's _check_modules_state after MAX_FAIL_TIME, 5 h):
// 'to upgrade' and 'to remove' become 'installed', 'to install' becomes
// 'uninstalled'. While a module is in a 'to ...' state, Odoo's cron runner
// skips the whole database.
//
// It does nothing when any module was marked less than MinAge ago (an
// install or upgrade is probably running), and it locks the rows NOWAIT
// so that it never waits behind a running upgrade.
type ResetModuleStates struct{ p ResetModuleStatesParams }

// moduleAge is the write_date age test; write_date is naive UTC in Odoo.
const moduleAge = `coalesce(write_date, create_date, '-infinity') <= (now() AT TIME ZONE 'utc') - make_interval(secs => $1)`

// Run implements Action.
func (r *ResetModuleStates) Run(ctx context.Context, env *Env, db string, dryRun bool, rep *Report) (func(context.Context) error, error) {
	minAge := time.Duration(r.p.MinAge).Seconds()
	err := env.PG.withConn(ctx, db, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// Lock every module in a 'to ...' state first (NOWAIT: a running
			// install or upgrade holds them), then judge their ages on the
			// locked set. A dry run only reads.
			lock := " FOR UPDATE NOWAIT"
			if dryRun {
				lock = ""
			}
			rows, err := tx.Query(ctx, `SELECT id, name, state, `+moduleAge+` FROM ir_module_module
				WHERE state IN ('to install', 'to upgrade', 'to remove')
				ORDER BY name`+lock, minAge)
			if err != nil {
				return fmt.Errorf("locking stuck modules: %w", err)
			}
			type mod struct {
				ID          int64
				Name, State string
				Old         bool
			}
			mods, err := pgx.CollectRows(rows, pgx.RowToStructByPos[mod])
			if err != nil {
				return fmt.Errorf("locking stuck modules (a running install or upgrade holds them?): %w", err)
			}
			if len(mods) == 0 {
				rep.Nothing("no module of database %q is stuck in 'to install', 'to upgrade' or 'to remove'", db)
				return nil
			}
			recent := 0
			for _, m := range mods {
				if !m.Old {
					recent++
				}
			}
			if recent > 0 {
				rep.Nothing("%d module(s) of database %q were marked for install/upgrade/removal less than %s ago: an operation may be running, nothing reset", recent, db, r.p.MinAge)
				return nil
			}
			var ids []int64
			var what []string
			for _, m := range mods {
				to := "installed"
				if m.State == "to install" {
					to = "uninstalled"
				}
				ids = append(ids, m.ID)
				what = append(what, fmt.Sprintf("%s: %s -> %s", m.Name, m.State, to))
			}
			if dryRun {
				rep.Step("would reset module states of database %q as Odoo's reset_modules_state does: %s", db, strings.Join(what, ", "))
				return nil
			}
			if _, err := tx.Exec(ctx, `UPDATE ir_module_module
				SET state = CASE WHEN state = 'to install' THEN 'uninstalled' ELSE 'installed' END
				WHERE id = ANY($1) AND state IN ('to install', 'to upgrade', 'to remove')`, ids); err != nil {
				return fmt.Errorf("resetting module states: %w", err)
			}
			rep.Acted("reset module states of database %q as Odoo's reset_modules_state does: %s", db, strings.Join(what, ", "))
			return nil
		})
	})
	if err != nil || dryRun || rep.isNothing() {
		return nil, err
	}
	return verifyNone(env, db, "module(s) in a 'to ...' state", `SELECT count(*) FROM ir_module_module WHERE state LIKE 'to %'`), nil
}
