package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// flagRange is the valid range of a duration, size or count flag.
// Durations are in nanoseconds.
type flagRange struct {
	min, max int64
	// zero is also valid, meaning what off says ("no limit").
	zero bool
	off  string
	// wholeMS: PostgreSQL takes the value in whole milliseconds.
	wholeMS bool
	// why the range, when it is not obvious (PostgreSQL's own range).
	why string
}

// pgMaxMS is the largest value of PostgreSQL's millisecond timeouts
// (statement_timeout, lock_timeout, idle_in_transaction_session_timeout:
// 0 to INT_MAX ms, where 0 disables the timeout).
const pgMaxMS = int64(1<<31-1) * int64(time.Millisecond)

func durationRange(min, max time.Duration) flagRange {
	return flagRange{min: int64(min), max: int64(max)}
}

// pgTimeout is the range of a PostgreSQL timeout set on every session:
// PostgreSQL's own, without 0, which would disable it.
func pgTimeout(settings string) flagRange {
	return flagRange{min: int64(time.Millisecond), max: pgMaxMS, wholeMS: true,
		why: "PostgreSQL's range for " + settings + ", in whole milliseconds; 0 would disable it, which the exporter never does"}
}

// flagRanges holds the range of every duration, size and count flag of the
// exporter, its collectors' included; TestEveryNumericFlagHasARange checks
// that none is missing.
var flagRanges = map[string]flagRange{
	"web.max-requests":                   {min: 1, max: 10000, zero: true, off: "no limit"},
	"scrape.timeout":                     durationRange(100*time.Millisecond, 10*time.Minute),
	"scrape.timeout-offset":              {min: 0, max: int64(time.Minute)},
	"pg.max-connections":                 {min: 1, max: 262143, why: "PostgreSQL's max_connections range"},
	"pg.statement-timeout":               pgTimeout("statement_timeout and idle_in_transaction_session_timeout"),
	"pg.lock-timeout":                    pgTimeout("lock_timeout"),
	"pg.connect-timeout":                 durationRange(100*time.Millisecond, 10*time.Minute),
	"odoo.database-discovery-interval":   durationRange(time.Second, 24*time.Hour),
	"odoo.database-discovery-timeout":    durationRange(time.Second, 24*time.Hour),
	"odoo.database-refresh-interval":     {min: int64(100 * time.Millisecond), max: int64(24 * time.Hour), zero: true, off: "the database collectors run in every scrape"},
	"collector.cron.overdue-threshold":   durationRange(time.Second, 30*24*time.Hour),
	"collector.docker.stats-concurrency": {min: 1, max: 1024},
	"collector.http.timeout":             durationRange(100*time.Millisecond, 10*time.Minute),
	"collector.assets.timeout":           durationRange(100*time.Millisecond, 10*time.Minute),
	"collector.assets.max-bytes":         {min: 1, max: 1 << 30},
	"collector.assets.concurrency":       {min: 1, max: 64},
	"collector.assets.max-bundles":       {min: 1, max: 1000},
	"collector.longpoll.interval":        durationRange(100*time.Millisecond, time.Hour),
	"collector.longpoll.timeout":         durationRange(100*time.Millisecond, 10*time.Minute),
	"collector.odoo_log.max-jobs":        {min: 1, max: 100000},
	"collector.odoo_log.max-databases":   {min: 1, max: 100000},
	"collector.odoo_log.max-classes":     {min: 1, max: 10000},
	"collector.odoo_log.max-line":        {min: 1 << 10, max: 1 << 24},
	"collector.odoo_log.max-record":      {min: 1 << 10, max: 1 << 26},
	"collector.odoo_log.poll-interval":   durationRange(10*time.Millisecond, time.Minute),
}

// validateFlags checks every flag of flagRanges that app has, and reports
// every value out of its range, naming the flag and the range.
func validateFlags(app *kingpin.Application) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(flagRanges)) {
		f := app.GetFlag(name)
		if f == nil {
			continue
		}
		g, ok := f.Model().Value.(kingpin.Getter)
		if !ok {
			continue
		}
		if err := flagRanges[name].check(name, g.Get()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// check returns an error naming flag when v is out of the range.
func (r flagRange) check(flag string, v any) error {
	var n int64
	var format func(int64) string
	switch v := v.(type) {
	case time.Duration:
		n, format = int64(v), func(n int64) string { return time.Duration(n).String() }
	case int:
		n, format = int64(v), func(n int64) string { return fmt.Sprint(n) }
	case int64:
		n, format = v, func(n int64) string { return fmt.Sprint(n) }
	default:
		return nil
	}
	ok := n >= r.min && n <= r.max || r.zero && n == 0
	if ok && r.wholeMS && n%int64(time.Millisecond) != 0 {
		ok = false
	}
	if ok {
		return nil
	}
	want := fmt.Sprintf("%s to %s", format(r.min), format(r.max))
	if r.zero {
		want = fmt.Sprintf("0 (%s) or %s", r.off, want)
	}
	msg := fmt.Sprintf("--%s=%s is out of range: valid values are %s", flag, format(n), want)
	if r.why != "" {
		msg += " (" + r.why + ")"
	}
	return errors.New(msg)
}
