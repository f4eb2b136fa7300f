package odoolog

import (
	"os"
	"strings"
	"testing"
)

// catalogCases are real-format records (as odoo/netsvc.py writes them,
// trailing perf_info space included) of every catalog entry, one per
// series where the series differ.
var catalogCases = []struct {
	id, version, log string
	job, seconds     string // expected groups
	pid, worker      string
}{
	{id: "cron_started", version: "16/17", job: "Mail: Email Queue Manager",
		log: "2026-12-02 17:30:01,123 4242 INFO odoo odoo.addons.base.models.ir_cron: Starting job `Mail: Email Queue Manager`. "},
	{id: "cron_started", version: "17 manual", job: "Notification: Send scheduled message notifications",
		log: "2026-12-02 17:30:01,123 4242 INFO odoo odoo.addons.base.models.ir_cron: Manually starting job `Notification: Send scheduled message notifications`. "},
	{id: "cron_started_18", version: "18", job: "Mail: Email Queue Manager",
		log: "2026-12-02 17:30:01,123 4242 INFO odoo odoo.addons.base.models.ir_cron: Job 'Mail: Email Queue Manager' (3) starting "},
	{id: "cron_started_18", version: "18 manual, a quote in the name", job: "Partner's autovacuum",
		log: "2026-12-02 17:30:01,123 4242 INFO odoo odoo.addons.base.models.ir_cron: Job \"Partner's autovacuum\" (12) started manually "},
	{id: "cron_done", version: "17", job: "Mail: Email Queue Manager", seconds: "0.129",
		log: "2026-12-02 17:30:01,252 4242 INFO odoo odoo.addons.base.models.ir_cron: Job done: `Mail: Email Queue Manager` (0.129s). "},
	{id: "cron_done_16", version: "16 (and 17's manual run)", job: "Mail: Email Queue Manager",
		log: "2026-12-02 17:30:01,252 4242 INFO odoo odoo.addons.base.models.ir_cron: Job `Mail: Email Queue Manager` done. "},
	{id: "cron_done_18", version: "18", job: "Mail: Email Queue Manager", seconds: "0.129",
		log: "2026-12-02 17:30:01,252 4242 INFO odoo odoo.addons.base.models.ir_cron: Job 'Mail: Email Queue Manager' (3) done in 0.129s "},
	{id: "cron_done_18", version: "18 manual", job: "Mail: Email Queue Manager",
		log: "2026-12-02 17:30:01,252 4242 INFO odoo odoo.addons.base.models.ir_cron: Job 'Mail: Email Queue Manager' (3) done "},
	{id: "cron_failed", version: "16/17", job: "Failing job",
		log: "2026-12-02 17:31:00,540 4242 ERROR odoo odoo.addons.base.models.ir_cron: Call from cron Failing job for server action #812 failed in Job #27 \n" +
			"Traceback (most recent call last):\n  File \"/opt/odoo/odoo/addons/base/models/ir_cron.py\", line 393, in _callback\n    self.env['ir.actions.server'].browse(server_action_id).run()\n" +
			"odoo.exceptions.UserError: boom"},
	{id: "cron_failed_18", version: "18", job: "Failing job",
		log: "2026-12-02 17:31:00,540 4242 ERROR odoo odoo.addons.base.models.ir_cron: Job 'Failing job' (27) server action #812 failed \n" +
			"Traceback (most recent call last):\n  File \"/opt/odoo/odoo/addons/base/models/ir_cron.py\", line 570, in _callback\n    self.env['ir.actions.server'].browse(server_action_id).run()\n" +
			"ZeroDivisionError: division by zero"},
	{id: "cron_timed_out_18", version: "18", job: "Slow job",
		log: "2026-12-02 17:31:00,540 4242 ERROR odoo odoo.addons.base.models.ir_cron: Job 'Slow job' (28) timed out "},
	{id: "cron_deactivated_18", version: "18", job: "Failing job",
		log: "2026-12-02 17:31:00,540 4242 WARNING odoo odoo.addons.base.models.ir_cron: Cron job 'Failing job' (27) has been deactivated after failing 5 times. More information can be found in the server logs around 2026-12-02 17:31:00. "},
	{id: "cron_poll_exception", version: "16/17/18",
		log: "2026-12-02 17:31:00,540 4242 WARNING odoo odoo.addons.base.models.ir_cron: Exception in cron: \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\npsycopg2.OperationalError: server closed the connection unexpectedly"},
	{id: "cron_thread_exception", version: "16/17/18 threaded",
		log: "2026-12-02 17:31:00,540 77 WARNING ? odoo.service.server: cron0 encountered an Exception: \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\nKeyError: 'x'"},
	{id: "worker_alive", version: "16/17/18", worker: "WorkerCron", pid: "4242",
		log: "2026-12-02 17:29:00,001 4242 INFO ? odoo.service.server: Worker WorkerCron (4242) alive "},
	{id: "worker_timeout", version: "16/17/18", worker: "WorkerCron", pid: "4242", seconds: "120",
		log: "2026-12-02 17:33:01,002 1 ERROR ? odoo.service.server: WorkerCron (4242) timeout after 120s "},
	{id: "worker_cpu_limit", version: "16/17/18", pid: "4243",
		log: "2026-12-02 17:33:01,002 4243 INFO odoo odoo.service.server: Worker (4243) CPU time limit (60) reached. "},
	{id: "worker_memory_soft", version: "16/17/18", pid: "4243",
		log: "2026-12-02 17:33:01,002 4243 INFO odoo odoo.service.server: Worker (4243) virtual memory limit (2214592512) reached. "},
	{id: "worker_max_requests", version: "16/17/18", pid: "4243",
		log: "2026-12-02 17:33:01,002 4243 INFO ? odoo.service.server: Worker (4243) max request (8192) reached. "},
	{id: "worker_cron_max_age_18", version: "18", pid: "4242",
		log: "2026-12-02 17:33:01,002 4242 INFO ? odoo.service.server: WorkerCron (4242) max age (3600s) reached. "},
	{id: "server_memory_soft", version: "16/17/18 threaded",
		log: "2026-12-02 17:33:01,002 77 WARNING ? odoo.service.server: Server memory limit (2214592512) reached. "},
	{id: "gevent_memory_soft", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 78 WARNING ? odoo.service.server: Gevent virtual memory limit reached: 2214592512 "},
	{id: "thread_time_real", version: "16/17/18 threaded",
		log: "2026-12-02 17:33:01,002 77 WARNING ? odoo.service.server: Thread <Thread(odoo.service.cron.cron0, started daemon 140210)> virtual real time limit (121/120s) reached. "},
	{id: "worker_memory_hard", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 4243 ERROR odoo odoo.http: Exception during request handling. \nTraceback (most recent call last):\n  File \"/opt/odoo/odoo/http.py\", line 2185, in __call__\n    response = request._serve_db()\nMemoryError"},
	{id: "worker_exception_exit", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 4243 ERROR ? odoo.service.server: Worker WorkerHTTP (4243) Exception occurred, exiting... \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\nOSError: [Errno 24] Too many open files"},
	{id: "worker_critical_error", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 1 CRITICAL ? odoo.service.server: Critial worker error (4243) "},
	{id: "bus_loop_error", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 78 ERROR ? odoo.addons.bus.models.bus: Bus.loop error, sleep and retry \nTraceback (most recent call last):\n  File \"/opt/odoo/addons/bus/models/bus.py\", line 253, in run\n    self.loop()\npsycopg2.OperationalError: terminating connection due to administrator command"},
	{id: "websocket_request_error", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 78 ERROR odoo odoo.addons.bus.websocket: Exception occurred during websocket request handling \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\nKeyError: 'event_name'"},
	{id: "gevent_loop_error", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 78 ERROR ? odoo.service.server: Evented Service (longpolling): uncaught error during main loop \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\nOSError: [Errno 98] Address already in use"},
	{id: "asset_file_missing", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 4243 ERROR odoo odoo.http: Exception during request handling. \nTraceback (most recent call last):\n  File \"/opt/odoo/odoo/addons/base/models/assetsbundle.py\", line 1007, in _fetch_content\n    with closing(file_open(self._filename, 'rb', filter_ext=EXTENSIONS)) as fp:\nFileNotFoundError: File not found: web/static/src/core/l10n/dates.js"},
	{id: "asset_parse_error", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 4243 ERROR odoo odoo.addons.base.models.assetsbundle: Could not parse file /web/static/src/views/broken.xml: Opening and ending tag mismatch "},
	{id: "asset_compile_error", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 4243 WARNING odoo odoo.addons.base.models.assetsbundle: Local import 'foo.scss' is forbidden for security reasons. Please remove all @import {your_file} imports in your custom files. "},
	{id: "db_retry", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 4243 INFO odoo odoo.service.model: SERIALIZATION_FAILURE, 4 tries left, try again in 0.7519 sec... "},
	{id: "db_retry_given_up", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 4243 INFO odoo odoo.service.model: SERIALIZATION_FAILURE, maximum number of tries reached! "},
	{id: "db_deadlock", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 4243 ERROR odoo odoo.http: Exception during request handling. \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\npsycopg2.errors.DeadlockDetected: deadlock detected\nDETAIL:  Process 121 waits for ShareLock on transaction 981; blocked by process 122."},
	{id: "db_serialization_failure", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 4243 ERROR odoo odoo.http: Exception during request handling. \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\npsycopg2.errors.SerializationFailure: could not serialize access due to concurrent update"},
	{id: "db_lock_timeout", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 4243 ERROR odoo odoo.http: Exception during request handling. \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\npsycopg2.errors.LockNotAvailable: canceling statement due to lock timeout"},
	{id: "db_bad_query", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 4243 ERROR odoo odoo.sql_db: bad query: SELECT nope FROM res_partner\nERROR: column \"nope\" does not exist\nLINE 1: SELECT nope FROM res_partner\n               ^\n "},
	{id: "db_connection_failed", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 4243 INFO ? odoo.sql_db: Connection to the database failed "},
	{id: "db_operational_error", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 4243 ERROR ? odoo.http: Exception during request handling. \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\npsycopg2.OperationalError: connection to server at \"db\" (172.18.0.2), port 5432 failed: Connection refused"},
	{id: "server_start", version: "17 (real)",
		log: "2026-12-02 17:26:35,436 11452 INFO ? odoo: Odoo version 17.0 "},
	{id: "server_start", version: "18",
		log: "2026-12-02 17:26:35,436 11452 INFO ? odoo: Odoo version 18.0 "},
	{id: "boot_module_load_failed", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 1 CRITICAL ? odoo.modules.module: Couldn't load module broken_addon "},
	{id: "boot_import_error", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 1 ERROR odoo odoo.modules.registry: Failed to load registry \nTraceback (most recent call last):\n  File \"/opt/odoo/odoo/modules/module.py\", line 396, in load_openerp_module\n    __import__(qualname)\nModuleNotFoundError: No module named 'phonenumbers'"},
	{id: "boot_xml_parse_error", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 1 CRITICAL odoo odoo.service.server: Failed to initialize database `odoo`. \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\nodoo.tools.convert.ParseError: while parsing /mnt/extra-addons/broken/views.xml:12, somewhere inside\n<record id=\"x\" model=\"ir.ui.view\">"},
	{id: "boot_registry_failed", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 1 ERROR odoo odoo.modules.registry: Failed to load registry \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\nAssertionError: x"},
	{id: "boot_registry_failed", version: "18 (no traceback on that line)",
		log: "2026-12-02 17:33:01,002 1 ERROR odoo odoo.modules.registry: Failed to load registry "},
	{id: "boot_database_init_failed", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 1 CRITICAL odoo odoo.service.server: Failed to initialize database `odoo`. \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\npsycopg2.errors.UndefinedTable: relation \"ir_module_module\" does not exist"},
	{id: "boot_server_module_failed", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 1 CRITICAL ? odoo.service.server: Failed to load server-wide module `queue_job`. \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\nAttributeError: x"},
	{id: "boot_modules_not_loaded", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 1 ERROR odoo odoo.modules.loading: Some modules are not loaded, some dependencies or manifest may be missing: ['broken_addon'] "},
	{id: "boot_base_missing", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 1 CRITICAL odoo odoo.modules.loading: module base cannot be loaded! (hint: verify addons-path) "},
	{id: "boot_module_not_found", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 1 WARNING odoo odoo.modules.module: module broken_addon: module not found "},
	{id: "http_request_exception", version: "16/17/18",
		log: "2026-12-02 17:33:01,002 4243 ERROR odoo odoo.http: Exception during request handling. \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\nZeroDivisionError: division by zero"},
}

func TestCatalogEntries(t *testing.T) {
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range catalogCases {
		t.Run(tc.id+"/"+tc.version, func(t *testing.T) {
			recs := 0
			p := NewParser(0, func(r *Record) {
				recs++
				var m Match
				e := cat.Match(r, &m)
				if e == nil {
					t.Fatalf("no entry matched %q (exception %q)", r.Message, r.Exception)
				}
				if e.ID != tc.id {
					t.Fatalf("matched %s, want %s", e.ID, tc.id)
				}
				got := [4]string{string(m.Job), string(m.Seconds), string(m.PID), string(m.Worker)}
				want := [4]string{tc.job, tc.seconds, tc.pid, tc.worker}
				if got != want {
					t.Errorf("groups (job, seconds, pid, worker) = %q, want %q", got, want)
				}
			})
			s := NewLineSplitter(0, p.Line)
			s.Write([]byte(tc.log + "\n"))
			p.Flush()
			if recs != 1 {
				t.Fatalf("%d records, want 1", recs)
			}
		})
	}
}

func TestCatalogEveryEntryTested(t *testing.T) {
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{}
	for _, tc := range catalogCases {
		tested[tc.id] = true
	}
	for _, e := range cat.Entries() {
		if !tested[e.ID] {
			t.Errorf("catalog entry %s has no test case", e.ID)
		}
	}
}

func TestCatalogNoMatch(t *testing.T) {
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`2026-12-02 17:25:33,123 88 INFO odoo werkzeug: 127.0.0.1 - - [02/Dec/2026 17:25:33] "GET /web/login HTTP/1.1" 200 - 12 0.004 0.031`,
		"2026-12-02 17:30:01,123 4242 INFO odoo odoo.addons.base.models.ir_cron: Job 'Mail' (3) completed ",
		"2026-12-02 17:30:01,123 4242 ERROR odoo odoo.addons.custom: Something went wrong ",
		// Not a MemoryError: the exception pattern is anchored.
		"2026-12-02 17:33:01,002 4243 ERROR odoo odoo.x: y \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\nmymod.MemoryErrorish: no",
	} {
		p := NewParser(0, func(r *Record) {
			var m Match
			if e := cat.Match(r, &m); e != nil {
				t.Errorf("%q matched %s", line, e.ID)
			}
		})
		NewLineSplitter(0, p.Line).Write([]byte(line + "\n"))
		p.Flush()
	}
}

func TestLoadCatalogExtend(t *testing.T) {
	extra := []byte(`
entries:
  - id: my_addon_sync_failed
    logger: odoo.addons.my_addon.models.sync
    message: '^Sync with (?P<job>\S+) failed'
    incident: my_sync
    severity: warning
    event: cron_failed
  - id: http_request_exception
    logger: odoo.http
    message: '^Exception during request handling\.$'
    incident: server_errors
    severity: critical
  - id: db_retry
    disabled: true
`)
	cat, err := LoadCatalog(extra)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*Entry{}
	for _, e := range cat.Entries() {
		byID[e.ID] = e
	}
	if cat.Entries()[0].ID != "my_addon_sync_failed" {
		t.Errorf("a new entry is not first: %s", cat.Entries()[0].ID)
	}
	if byID["http_request_exception"].Severity != "critical" {
		t.Errorf("the entry was not replaced")
	}
	if byID["db_retry"] != nil {
		t.Errorf("the disabled entry is still there")
	}
	match := func(line string) string {
		var id string
		p := NewParser(0, func(r *Record) {
			var m Match
			if e := cat.Match(r, &m); e != nil {
				id = e.ID + ":" + string(m.Job)
			}
		})
		NewLineSplitter(0, p.Line).Write([]byte(line + "\n"))
		p.Flush()
		return id
	}
	if got := match("2026-12-02 17:33:01,002 1 ERROR odoo odoo.addons.my_addon.models.sync: Sync with shopify failed: 502 "); got != "my_addon_sync_failed:shopify" {
		t.Errorf("new entry: matched %q", got)
	}
	if got := match("2026-12-02 17:33:01,002 4243 INFO odoo odoo.service.model: SERIALIZATION_FAILURE, 4 tries left, try again in 0.7519 sec... "); got != "" {
		t.Errorf("disabled entry: matched %q", got)
	}
}

func TestLoadCatalogErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"unknown field", "entries:\n  - id: x\n    mesage: a\n", "field mesage not found"},
		{"bad regexp", "entries:\n  - {id: x, message: '(', incident: a, severity: info}\n", "missing closing )"},
		{"bad severity", "entries:\n  - {id: x, message: 'a', incident: a, severity: fatal}\n", "severity \"fatal\""},
		{"no pattern", "entries:\n  - {id: x, incident: a, severity: info}\n", "needs a message or an exception"},
		{"unknown group", "entries:\n  - {id: x, message: '(?P<user>a)', incident: a, severity: info}\n", "unknown group \"user\""},
		{"cron event without job", "entries:\n  - {id: x, message: 'a', incident: a, severity: info, event: cron_done}\n", "needs a job group"},
		{"bad limit", "entries:\n  - {id: x, message: 'a', incident: a, severity: info, event: worker_limit, limit: disk}\n", "limit \"disk\""},
		{"bad id", "entries:\n  - {id: X-1, message: 'a', incident: a, severity: info}\n", "id \"X-1\""},
		{"duplicate id", "entries:\n  - {id: x, message: 'a', incident: a, severity: info}\n  - {id: x, message: 'a', incident: a, severity: info}\n", "appears twice"},
		{"bad level", "entries:\n  - {id: x, message: 'a', incident: a, severity: info, levels: [FATAL]}\n", "level \"FATAL\""},
		{"not yaml", "entries: [", "catalog 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCatalog([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLiteralPrefix(t *testing.T) {
	for pattern, want := range map[string]string{
		`^Bus\.loop error, sleep and retry$`:  "Bus.loop error, sleep and retry",
		"^Job done: `(?P<job>.*)`":            "Job done: `",
		`^(?:Manually starting|Starting) job`: "",
		`bad query`:                           "",
		`^(?i)abc`:                            "",
	} {
		if got := string(literalPrefix(pattern)); got != want {
			t.Errorf("literalPrefix(%q) = %q, want %q", pattern, got, want)
		}
	}
}

func TestClassBound(t *testing.T) {
	b := NewClassBound(2)
	for _, tt := range []struct{ in, want string }{
		{"", ClassNone}, {"KeyError", "KeyError"}, {"ValueError", "ValueError"},
		{"TypeError", ClassOther}, {"KeyError", "KeyError"},
	} {
		if got := b.Class([]byte(tt.in)); got != tt.want {
			t.Errorf("Class(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestCatalogInReadme checks that the README's table lists every entry.
func TestCatalogInReadme(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cat.Entries() {
		if !strings.Contains(string(readme), "| `"+e.ID+"` |") {
			t.Errorf("README.md: the catalog's table has no row for %s", e.ID)
		}
	}
}
