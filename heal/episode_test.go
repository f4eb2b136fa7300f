package heal

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/odoo-exporter/odoo_exporter/internal/pgtest"
)

// TestEpisodeRetriesAfterPostgreSQLReturns: PostgreSQL is down at the
// first (and only) delivery of a lock-contention alert; the action fails
// without acting, the episode stays open, and once PostgreSQL is back the
// healer's own re-evaluation ends the blocker, without a new alert.
func TestEpisodeRetriesAfterPostgreSQLReturns(t *testing.T) {
	t.Parallel()
	c := pgtest.New(t) // its own cluster: this test stops it
	if err := setupRoles(c); err != nil {
		t.Fatal(err)
	}
	db := odooDBOn(t, c)
	pg, err := NewPGConnector(PGConfig{DSN: c.DSN("postgres", healerRole), ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	th := newTestHealerWith(t, fmt.Sprintf(`
verify_interval: 100ms
rules:
  - name: blockers
    match: {alertname: OdooDbLockContention}
    action: end_blockers
    targets: [%s]
    retry_interval: 1s
    retry_max_interval: 2s
    max_attempts: 100
    params: {min_wait: 1s, grace: 1s}
`, db), func(o *Options) { o.Env = &Env{PG: pg, Logger: testLogger()} })

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	code, body := th.post(t, payload(firing("OdooDbLockContention", "fp1", db)))
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(body), ResultStarted) {
		t.Fatalf("%d %v", code, body)
	}
	eventually(t, 30*time.Second, "the first attempt to fail", func() bool { return slices.Contains(th.results(t, "blockers"), ResultFailed) })
	if got := counterValue(th.metrics.actions.WithLabelValues("end_blockers", ResultSuccess)); got != 0 {
		t.Fatal("success while PostgreSQL is down")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	// The blocker appears once PostgreSQL is back (the old one, if any,
	// died with the server).
	blocker, waiter := connectOn(t, c, db, odooRole), connectOn(t, c, db, odooRole)
	blocker.exec(`BEGIN`)
	blocker.exec(`UPDATE res_users SET login = login WHERE id = 2`)
	waiterDone := waiter.execAsync(`UPDATE res_users SET active = true WHERE id = 2`)
	waitingOn(t, c, waiter.pid, time.Second)

	eventually(t, time.Minute, "the episode to succeed", func() bool { return th.actions("end_blockers", ResultSuccess) == 1 })
	if blocker.alive() {
		t.Error("the blocker survived")
	}
	if err := <-waiterDone; err != nil {
		t.Errorf("waiter: %v", err)
	}
	if n := counterValue(th.metrics.alerts.WithLabelValues(OutcomeAccepted)); n != 1 {
		t.Errorf("%v alerts accepted, want the one delivery", n)
	}
	t.Logf("audit: %v", th.results(t, "blockers"))
}

// TestEpisodeCronLockOldEnough: OdooCronStuck fires while the lock holder
// is younger than min_running: nothing to do yet. The episode stays open
// and the healer ends the lock once it is old enough, from the one
// delivery.
func TestEpisodeCronLockOldEnough(t *testing.T) {
	t.Parallel()
	db := odooDB(t)
	id := newCron(t, db)
	worker := cronWorker(t, db, id)
	th := newTestHealer(t, fmt.Sprintf(`
verify_interval: 100ms
rules:
  - name: cron
    match: {alertname: OdooCronStuck}
    action: unlock_cron
    targets: [%s]
    retry_interval: 5s
    retry_max_interval: 5s
    max_attempts: 40
    params: {min_running: 1m, grace: 1s}
`, db))
	th.post(t, payload(firing("OdooCronStuck", "fp1", db)))
	eventually(t, 30*time.Second, "nothing to do yet", func() bool { return slices.Contains(th.results(t, "cron"), ResultNothingToDo) })
	if !worker.alive() {
		t.Fatal("a lock younger than min_running was ended")
	}
	// A re-send of the open episode does not run it again.
	code, body := th.post(t, payload(firing("OdooCronStuck", "fp1", db)))
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(body), "is open") {
		t.Errorf("re-send: %d %v", code, body)
	}
	eventually(t, 3*time.Minute, "the lock to be ended once old enough", func() bool { return th.actions("unlock_cron", ResultSuccess) == 1 })
	if worker.alive() {
		t.Error("the cron worker's session survived")
	}
	res := th.results(t, "cron")
	if res[len(res)-1] != ResultSuccess || slices.Contains(res, ResultGaveUp) {
		t.Errorf("audit: %v", res)
	}
}

// TestEpisodeGivesUp: an episode that never finds anything to do is
// re-evaluated max_attempts times, then given up (audited, counted); a
// resolved notification closes an open episode.
func TestEpisodeGivesUp(t *testing.T) {
	t.Parallel()
	db := odooDB(t)
	th := newTestHealer(t, fmt.Sprintf(`
rules:
  - name: assets
    match: {alertname: OdooAssetsBroken}
    action: clear_assets
    targets: [%s]
    retry_interval: 1s
    retry_max_interval: 1s
    max_attempts: 3
`, db))
	th.post(t, payload(firing("OdooAssetsBroken", "fp1", db)))
	eventually(t, 30*time.Second, "the episode to be given up", func() bool { return th.actions("clear_assets", ResultGaveUp) == 1 })
	if got := th.actions("clear_assets", ResultNothingToDo); got != 3 {
		t.Errorf("%v attempts, want 3", got)
	}
	if res := th.results(t, "assets"); res[len(res)-1] != ResultGaveUp {
		t.Errorf("audit: %v", res)
	}
	code, body := th.post(t, payload(firing("OdooAssetsBroken", "fp1", db)))
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(body), OutcomeDuplicate) {
		t.Errorf("re-send after giving up: %d %v", code, body)
	}

	// Another episode, closed by its resolution before it could act.
	open := firing("OdooAssetsBroken", "fp2", db)
	th.post(t, payload(open))
	eventually(t, 30*time.Second, "nothing to do", func() bool { return th.actions("clear_assets", ResultNothingToDo) == 4 })
	resolved := open
	resolved.status = StatusResolved
	code, body = th.post(t, payload(resolved))
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(body), "closed 1 open episode") {
		t.Errorf("resolved: %d %v", code, body)
	}
	th.Wait()
	// Closed: no episode is left to re-evaluate.
	th.mu.Lock()
	for k, ep := range th.episodes {
		if !ep.Done {
			t.Errorf("episode %s still open", k)
		}
	}
	th.mu.Unlock()
	if got := th.actions("clear_assets", ResultClosed); got != 1 {
		t.Errorf("closed = %v, want 1", got)
	}
}

// TestStateKeepsCooldownAcrossRestart: with a state file, a restarted
// healer still knows the completed episode (a re-send is a duplicate) and
// the cooldown its action started; a second healer cannot use the same
// state file.
func TestStateKeepsCooldownAcrossRestart(t *testing.T) {
	t.Parallel()
	db := odooDB(t)
	cluster.Exec(t, db, assetFixture)
	path := filepath.Join(t.TempDir(), "state.json")
	cfg := fmt.Sprintf(assetsRule, db)
	sf, err := OpenStateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	th := newTestHealerWith(t, cfg, func(o *Options) { o.State = sf })
	th.post(t, payload(firing("OdooAssetsBroken", "fp1", db)))
	th.Wait()
	if th.actions("clear_assets", ResultSuccess) != 1 || assetCount(t, db) != 0 {
		t.Fatalf("first healer: %v", th.results(t, "assets"))
	}
	if _, err := OpenStateFile(path); err == nil || !strings.Contains(err.Error(), "locked by another odoo_healer") {
		t.Errorf("a second healer opened the state file: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := th.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	th.srv.Close()
	sf.Close()

	// The restarted healer.
	sf2, err := OpenStateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sf2.Close()
	th2 := newTestHealerWith(t, cfg, func(o *Options) { o.State = sf2 })
	cluster.Exec(t, db, assetFixture)
	code, body := th2.post(t, payload(firing("OdooAssetsBroken", "fp1", db)))
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(body), OutcomeDuplicate) {
		t.Errorf("re-send after the restart: %d %v", code, body)
	}
	again := firing("OdooAssetsBroken", "fp1", db)
	again.startsAt = t0.Add(time.Hour)
	code, body = th2.post(t, payload(again))
	th2.Wait()
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(body), ResultSkippedCooldown) {
		t.Errorf("new episode after the restart: %d %v", code, body)
	}
	if n := assetCount(t, db); n != 3 {
		t.Errorf("the restarted healer acted within the cooldown: %d rows left", n)
	}
	if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), `"assets|fp1@`) {
		t.Errorf("state file: %v %s", err, b)
	}
}

// TestZeroCooldown: an explicit cooldown of 0s is honoured (a new episode
// acts at once), an unset one is the default.
func TestZeroCooldown(t *testing.T) {
	t.Parallel()
	db := odooDB(t)
	th := newTestHealer(t, fmt.Sprintf(strings.Replace(assetsRule, "cooldown: 1h", "cooldown: 0s", 1), db))
	for i := range 2 {
		cluster.Exec(t, db, assetFixture)
		a := firing("OdooAssetsBroken", "fp1", db)
		a.startsAt = t0.Add(time.Duration(i) * time.Hour)
		th.post(t, payload(a))
		th.Wait()
	}
	if got := th.actions("clear_assets", ResultSuccess); got != 2 {
		t.Errorf("success = %v, want 2 (no cooldown); audit %v", got, th.results(t, "assets"))
	}
	cfg, err := ParseConfig([]byte("rules:\n  - name: a\n    match: {heal: x}\n    action: clear_assets\n    targets: [odoo]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(*cfg.Rules[0].Cooldown) != DefaultCooldown {
		t.Errorf("unset cooldown = %s", cfg.Rules[0].Cooldown)
	}
}

// TestStateInterruptedEpisode: an episode saved as running (the healer
// stopped during its action) may have acted: the restarted healer closes
// it as interrupted and never runs it again.
func TestStateInterruptedEpisode(t *testing.T) {
	t.Parallel()
	db := odooDB(t)
	cluster.Exec(t, db, assetFixture)
	path := filepath.Join(t.TempDir(), "state.json")
	sf, err := OpenStateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	a := firing("OdooAssetsBroken", "fp1", db)
	alert := Alert{Status: StatusFiring, Labels: map[string]string{"alertname": a.name, "heal": "clear_assets", "database": db}, StartsAt: a.startsAt, Fingerprint: a.fingerprint}
	err = sf.Save(&State{Episodes: map[string]*episode{"assets|" + alert.Key(): {Rule: "assets", Alert: alert, First: time.Now(), Attempts: 1, Running: true}}})
	if err != nil {
		t.Fatal(err)
	}
	th := newTestHealerWith(t, fmt.Sprintf(assetsRule, db), func(o *Options) { o.State = sf })
	if res := th.results(t, "assets"); len(res) != 1 || res[0] != ResultInterrupted {
		t.Errorf("audit after the restart: %v", res)
	}
	code, body := th.post(t, payload(a))
	th.Wait()
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(body), OutcomeDuplicate) || assetCount(t, db) != 3 {
		t.Errorf("re-send of an interrupted episode: %d %v, %d rows left", code, body, assetCount(t, db))
	}
}
