package heal

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// newCron inserts an active ir_cron job and returns its id.
func newCron(t *testing.T, db string) int {
	t.Helper()
	conn := cluster.Connect(t, db)
	var id int
	err := conn.QueryRow(context.Background(), `
		WITH act AS (INSERT INTO ir_act_server (name, model_name, code) VALUES ('{"en_US": "job"}', 'res.partner', 'model.run()') RETURNING id)
		INSERT INTO ir_cron (ir_actions_server_id, cron_name, user_id, nextcall, interval_type)
		SELECT id, 'job', 1, now() AT TIME ZONE 'utc', 'minutes' FROM act RETURNING id`).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// cronWorker locks cron job id as Odoo 17's cron worker does while the
// job runs: FOR NO KEY UPDATE SKIP LOCKED in a transaction left open.
func cronWorker(t *testing.T, db string, id int) *session {
	t.Helper()
	w := connectAs(t, db, odooRole)
	w.exec(`BEGIN`)
	w.exec(`SELECT * FROM ir_cron WHERE active = true AND numbercall != 0 AND (nextcall <= (now() at time zone 'UTC') OR id in (SELECT cron_id FROM ir_cron_trigger WHERE call_at <= (now() at time zone 'UTC'))) AND id in ($1) FOR NO KEY UPDATE SKIP LOCKED`, id)
	return w
}

func TestUnlockCron(t *testing.T) {
	for _, tc := range []struct {
		name string
		// share: another open transaction share-locks the row (xmax becomes
		// a multixact): an ir_cron_trigger insert (any version), or Odoo
		// 18's job cursor adding its ir_cron_progress row.
		share string
		// after: a statement the worker's session runs after the lock, so
		// that its query text is no longer Odoo's lock statement.
		after string
	}{
		{"row lock (xmax)", "", ""},
		{"shared row lock (multixact of a trigger insert)", `INSERT INTO ir_cron_trigger (cron_id, call_at) VALUES ($1, now() AT TIME ZONE 'utc')`, ""},
		{"shared row lock (multixact), query text cut", `INSERT INTO ir_cron_trigger (cron_id, call_at) VALUES ($1, now() AT TIME ZONE 'utc')`, `SELECT 1`},
		{"row lock, query text cut", "", `SELECT 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := odooDB(t)
			id := newCron(t, db)
			worker := cronWorker(t, db, id)
			if tc.after != "" {
				worker.exec(tc.after)
			}
			var other *session
			if tc.share != "" {
				other = connectAs(t, db, odooRole)
				other.exec(`BEGIN`)
				other.exec(tc.share, id)
			}
			time.Sleep(300 * time.Millisecond) // the lock must be older than min_running
			a := &UnlockCron{UnlockCronParams{MinRunning: model.Duration(200 * time.Millisecond), Grace: model.Duration(time.Second), MaxBackends: 2}}
			rep, verify, err := runAction(t, a, testEnv(t), db, false)
			if err != nil {
				t.Fatal(err)
			}
			if !hasStep(rep, "terminated pid") || !hasStep(rep, fmt.Sprintf("cron job(s) %d for", id)) {
				t.Errorf("steps: %q", rep.Steps())
			}
			if worker.alive() {
				t.Fatal("the cron worker's session survived")
			}
			if other != nil && !other.alive() {
				t.Error("the trigger-inserting session was ended too")
			}
			verifyWithin(t, verify)
			// The job can be locked again (SKIP LOCKED returns it).
			probe := connectAs(t, db, odooRole)
			var n int
			if err := probe.conn.QueryRow(context.Background(), `SELECT count(*) FROM (SELECT id FROM ir_cron WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED) x`, id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Error("the job's row is still locked")
			}
		})
	}
}

func TestUnlockCronLeavesOthersAlone(t *testing.T) {
	const workerLock = `SELECT * FROM ir_cron WHERE id in ($1) FOR NO KEY UPDATE SKIP LOCKED`
	// A long transaction (an import, an upgrade) that created a trigger for
	// the job: its foreign key check KEY SHARE-locks the row, so xmax is
	// its transaction id and it holds RowShareLock on ir_cron, but it is
	// not the cron worker and does not keep the job from running.
	const triggerInsert = `INSERT INTO ir_cron_trigger (cron_id, call_at) VALUES ($1, now() AT TIME ZONE 'utc')`
	for _, tc := range []struct {
		name   string
		params UnlockCronParams
		user   string
		lock   string
		dry    bool
	}{
		{"lock younger than min_running", UnlockCronParams{MinRunning: model.Duration(time.Hour)}, odooRole, workerLock, false},
		{"superuser lock", UnlockCronParams{MinRunning: model.Duration(200 * time.Millisecond)}, "postgres", workerLock, false},
		{"dry run", UnlockCronParams{MinRunning: model.Duration(200 * time.Millisecond)}, odooRole, workerLock, true},
		{"trigger insert, not the cron worker", UnlockCronParams{MinRunning: model.Duration(200 * time.Millisecond)}, odooRole, triggerInsert, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := odooDB(t)
			id := newCron(t, db)
			w := connectAs(t, db, tc.user)
			w.exec(`BEGIN`)
			w.exec(tc.lock, id)
			time.Sleep(300 * time.Millisecond)
			tc.params.Grace, tc.params.MaxBackends = model.Duration(time.Second), 2
			rep, verify, err := runAction(t, &UnlockCron{tc.params}, testEnv(t), db, tc.dry)
			if err != nil {
				t.Fatal(err)
			}
			if tc.dry {
				if !hasStep(rep, "would terminate pid") || verify != nil {
					t.Errorf("dry run: steps %q", rep.Steps())
				}
			} else if !rep.isNothing() {
				t.Errorf("want nothing to do; steps %q", rep.Steps())
			}
			if !w.alive() {
				t.Fatal("the lock holder was ended")
			}
		})
	}
}
