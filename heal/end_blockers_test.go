package heal

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

func newEndBlockers(t *testing.T, params string) *EndBlockers {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(params), &n); err != nil {
		t.Fatal(err)
	}
	if len(n.Content) > 0 {
		n = *n.Content[0]
	}
	a, err := actionKinds["end_blockers"].New(&n)
	if err != nil {
		t.Fatal(err)
	}
	return a.(*EndBlockers)
}

// lockScene is a blocker holding a row lock on res_users id 2 and a
// waiter blocked behind it.
type lockScene struct {
	blocker, waiter *session
	waiterDone      <-chan error
}

// newLockScene opens a blocker as user (in database db) holding the row
// lock (idle in transaction) and a waiter blocked behind it for 1 s.
func newLockScene(t *testing.T, db, user string) *lockScene {
	t.Helper()
	s := &lockScene{blocker: connectAs(t, db, user), waiter: connectAs(t, db, odooRole)}
	s.blocker.exec(`BEGIN`)
	s.blocker.exec(`UPDATE res_users SET login = login WHERE id = 2`)
	s.waiterDone = s.waiter.execAsync(`UPDATE res_users SET active = true WHERE id = 2`)
	waitingFor(t, s.waiter.pid, time.Second)
	return s
}

// released reports whether the waiter got its lock (and finished).
func (s *lockScene) released(t *testing.T) bool {
	t.Helper()
	select {
	case err := <-s.waiterDone:
		if err != nil {
			t.Fatalf("waiter failed: %v", err)
		}
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}

func TestEndBlockersIdleInTransaction(t *testing.T) {
	db := odooDB(t)
	s := newLockScene(t, db, odooRole)
	a := newEndBlockers(t, `{min_wait: 1s, grace: 500ms}`)
	rep, verify, err := runAction(t, a, testEnv(t), db, false)
	if err != nil {
		t.Fatal(err)
	}
	if !hasStep(rep, "terminated pid") || hasStep(rep, "cancelled") {
		t.Errorf("an idle-in-transaction blocker must be terminated without a cancel first; steps: %q", rep.Steps())
	}
	if s.blocker.alive() {
		t.Error("blocker survived")
	}
	if !s.released(t) {
		t.Error("waiter still blocked")
	}
	verifyWithin(t, verify)
}

func TestEndBlockersActive(t *testing.T) {
	for _, tc := range []struct {
		name string
		// sleep is the blocker's statement after it took the row lock.
		sleep          string
		wantTerminated bool
	}{
		// A cancelled statement aborts the transaction, which releases
		// its locks at once (the session stays "idle in transaction
		// (aborted)" until the client rolls back).
		{"cancel is enough", `SELECT pg_sleep(60)`, false},
		// A blocker that ignores cancels is terminated after the grace.
		{"terminate after grace", `DO $$ BEGIN LOOP BEGIN PERFORM pg_sleep(60); EXCEPTION WHEN query_canceled THEN RAISE NOTICE 'ignored'; END; END LOOP; END $$`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := odooDB(t)
			blocker, waiter := connectAs(t, db, odooRole), connectAs(t, db, odooRole)
			blocker.exec(`BEGIN`)
			blocker.exec(`UPDATE res_users SET login = login WHERE id = 2`)
			sleeping := blocker.execAsync(tc.sleep)
			waiterDone := waiter.execAsync(`UPDATE res_users SET active = true WHERE id = 2`)
			waitingFor(t, waiter.pid, time.Second)

			a := newEndBlockers(t, `{min_wait: 1s, grace: 1s}`)
			rep, verify, err := runAction(t, a, testEnv(t), db, false)
			if err != nil {
				t.Fatal(err)
			}
			if !hasStep(rep, "cancelled pid") {
				t.Errorf("an active blocker must be cancelled first; steps: %q", rep.Steps())
			}
			if got := hasStep(rep, "terminated pid"); got != tc.wantTerminated {
				t.Errorf("terminated = %v, want %v; steps: %q", got, tc.wantTerminated, rep.Steps())
			}
			if alive := blocker.alive(); alive == tc.wantTerminated {
				t.Errorf("blocker alive = %v, want %v", alive, !tc.wantTerminated)
			}
			select {
			case err := <-waiterDone:
				if err != nil {
					t.Fatalf("waiter: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("waiter still blocked")
			}
			verifyWithin(t, verify)
			if err := <-sleeping; err == nil {
				t.Error("the blocker's statement was not interrupted")
			}
		})
	}
}

// TestEndBlockersLeavesOthersAlone: backends the action must not end
// survive, and the waiter stays blocked.
func TestEndBlockersLeavesOthersAlone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params string
		scene  func(t *testing.T, db string) *lockScene
		target func(db string) string
		dry    bool
		err    string
	}{
		{
			name:   "superuser blocker",
			params: `{min_wait: 1s}`,
			scene:  func(t *testing.T, db string) *lockScene { return newLockScene(t, db, "postgres") },
		},
		{
			name:   "wait shorter than min_wait",
			params: `{min_wait: 1h}`,
			scene:  func(t *testing.T, db string) *lockScene { return newLockScene(t, db, odooRole) },
		},
		{
			name:   "other database",
			params: `{min_wait: 1s}`,
			scene:  func(t *testing.T, db string) *lockScene { return newLockScene(t, db, odooRole) },
			target: func(string) string { return odooDB(t) },
		},
		{
			name:   "role not in users",
			params: `{min_wait: 1s, users: [someone_else]}`,
			scene:  func(t *testing.T, db string) *lockScene { return newLockScene(t, db, odooRole) },
		},
		{
			name:   "dry run",
			params: `{min_wait: 1s}`,
			scene:  func(t *testing.T, db string) *lockScene { return newLockScene(t, db, odooRole) },
			dry:    true,
		},
		{
			name:   "more blockers than max_backends",
			params: `{min_wait: 1s, max_backends: 1}`,
			scene: func(t *testing.T, db string) *lockScene {
				// A second, independent blocker on another row.
				b2, w2 := connectAs(t, db, odooRole), connectAs(t, db, odooRole)
				b2.exec(`BEGIN`)
				b2.exec(`UPDATE res_users SET login = login WHERE id = 1`)
				w2.execAsync(`UPDATE res_users SET active = true WHERE id = 1`)
				waitingFor(t, w2.pid, time.Second)
				return newLockScene(t, db, odooRole)
			},
			err: "more than max_backends",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := odooDB(t)
			s := tc.scene(t, db)
			target := db
			if tc.target != nil {
				target = tc.target(db)
			}
			rep, verify, err := runAction(t, newEndBlockers(t, tc.params), testEnv(t), target, tc.dry)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case tc.dry:
				if !hasStep(rep, "would terminate pid") || verify != nil {
					t.Errorf("dry run: steps %q, verify %v", rep.Steps(), verify != nil)
				}
			default:
				if !rep.isNothing() {
					t.Errorf("want nothing to do; steps: %q", rep.Steps())
				}
			}
			if !s.blocker.alive() {
				t.Fatal("blocker was ended")
			}
			select {
			case err := <-s.waiterDone:
				t.Fatalf("waiter finished (%v): the lock was released", err)
			default:
			}
		})
	}
}

func TestEndBlockersParams(t *testing.T) {
	for _, p := range []string{`{min_wait: 0s}`, `{grace: 0s}`, `{max_backends: 0}`, `{bogus: 1}`} {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(p), &n); err != nil {
			t.Fatal(err)
		}
		if _, err := actionKinds["end_blockers"].New(n.Content[0]); err == nil {
			t.Errorf("%s: accepted", p)
		}
	}
	a := newEndBlockers(t, `{}`)
	if a.p.MinWait != model.Duration(30*time.Second) || a.p.Grace != model.Duration(10*time.Second) {
		t.Errorf("defaults: %+v", a.p)
	}
}
