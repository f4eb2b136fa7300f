package heal

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func moduleStates(t *testing.T, db string) map[string]string {
	t.Helper()
	conn := cluster.Connect(t, db)
	rows, err := conn.Query(context.Background(), `SELECT name, state FROM ir_module_module`)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for rows.Next() {
		var n, s string
		if err := rows.Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		m[n] = s
	}
	return m
}

func TestResetModuleStates(t *testing.T) {
	stuck := `UPDATE ir_module_module SET write_date = (now() AT TIME ZONE 'utc') - interval '2 hours',
		state = CASE name WHEN 'mail' THEN 'to upgrade' WHEN 'web' THEN 'to remove' WHEN 'sale' THEN 'to install' ELSE state END`
	for _, tc := range []struct {
		name    string
		setup   []string
		dry     bool
		want    map[string]string // nil: unchanged
		nothing bool
	}{
		{
			name:  "stuck for 2h",
			setup: []string{stuck},
			want:  map[string]string{"base": "installed", "web": "installed", "bus": "installed", "mail": "installed", "sale": "uninstalled"},
		},
		{name: "dry run", setup: []string{stuck}, dry: true},
		{
			name:    "one module marked recently: an upgrade may be running",
			setup:   []string{stuck, `UPDATE ir_module_module SET state = 'to upgrade', write_date = now() AT TIME ZONE 'utc' WHERE name = 'bus'`},
			nothing: true,
		},
		{name: "nothing stuck", nothing: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := odooDB(t)
			for _, q := range tc.setup {
				cluster.Exec(t, db, q)
			}
			before := moduleStates(t, db)
			a := &ResetModuleStates{ResetModuleStatesParams{MinAge: model.Duration(time.Hour)}}
			rep, verify, err := runAction(t, a, testEnv(t), db, tc.dry)
			if err != nil {
				t.Fatal(err)
			}
			if rep.isNothing() != tc.nothing {
				t.Errorf("nothing to do = %v, want %v", rep.isNothing(), tc.nothing)
			}
			want := tc.want
			if want == nil {
				want = before
			} else {
				verifyWithin(t, verify)
			}
			if got := moduleStates(t, db); !maps.Equal(got, want) {
				t.Errorf("states %v, want %v", got, want)
			}
		})
	}
}

// TestResetModuleStatesBehindALock: while another transaction holds a
// stuck module's row (a running upgrade), the action refuses at once
// (NOWAIT) and changes nothing; its dry run takes no row lock, so it
// reports what it would do.
func TestResetModuleStatesBehindALock(t *testing.T) {
	t.Parallel()
	db := odooDB(t)
	cluster.Exec(t, db, `UPDATE ir_module_module SET state = 'to upgrade', write_date = (now() AT TIME ZONE 'utc') - interval '2 hours' WHERE name = 'mail'`)
	upgrade := connectAs(t, db, odooRole)
	upgrade.exec(`BEGIN`)
	upgrade.exec(`SELECT id FROM ir_module_module WHERE name = 'mail' FOR UPDATE`)
	before := moduleStates(t, db)
	a := &ResetModuleStates{ResetModuleStatesParams{MinAge: model.Duration(time.Hour)}}

	rep, _, err := runAction(t, a, testEnv(t), db, true)
	if err != nil || !hasStep(rep, "would reset module states") {
		t.Errorf("dry run behind a row lock: err %v, steps %q", err, rep.Steps())
	}
	if _, _, err := runAction(t, a, testEnv(t), db, false); err == nil {
		t.Error("the action went ahead while an upgrade holds the module's row")
	}
	if got := moduleStates(t, db); !maps.Equal(got, before) {
		t.Errorf("states %v, want %v", got, before)
	}
}
