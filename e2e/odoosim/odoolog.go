package odoosim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// OdooLog writes records as Odoo writes its log to stderr
// (odoo/netsvc.py: "%(asctime)s %(pid)s %(levelname)s %(dbname)s
// %(name)s: %(message)s %(perf_info)s", perf_info empty but for werkzeug,
// the traceback on the next lines), each record in one write as Python's
// logging does.
type OdooLog struct {
	mu  sync.Mutex
	w   io.Writer
	pid int
}

// NewOdooLog returns a writer of Odoo records to w, as process pid.
func NewOdooLog(w io.Writer, pid int) *OdooLog { return &OdooLog{w: w, pid: pid} }

// Record writes one record; pid 0 is the log's own; traceback, when not
// empty, follows on the next lines.
func (l *OdooLog) Record(pid int, level, db, logger, msg, traceback string) {
	if l == nil {
		return
	}
	if pid == 0 {
		pid = l.pid
	}
	if db == "" {
		db = "?"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d %s %s %s: %s \n", time.Now().Format("2006-01-02 15:04:05,000"), pid, level, db, logger, msg)
	if traceback != "" {
		b.WriteString(strings.TrimSuffix(traceback, "\n"))
		b.WriteByte('\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, b.String())
}

const (
	cronLogger   = "odoo.addons.base.models.ir_cron"
	serverLogger = "odoo.service.server"
	// odooPath is where Odoo's official image installs it.
	odooPath = "/usr/lib/python3/dist-packages/odoo"
)

// cronFailureTraceback is the traceback a real Odoo 17 logged for a job
// whose code raised UserError (odoolog/testdata/odoo17.log), in the
// official image's paths.
var cronFailureTraceback = strings.ReplaceAll(`Traceback (most recent call last):
  File "ODOO/addons/base/models/ir_cron.py", line 393, in _callback
    self.env['ir.actions.server'].browse(server_action_id).run()
  File "ODOO/addons/base/models/ir_actions.py", line 943, in run
    res = runner(run_self, eval_context=eval_context)
          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "ODOO/addons/base/models/ir_actions.py", line 775, in _run_action_code_multi
    safe_eval(self.code.strip(), eval_context, mode="exec", nocopy=True, filename=str(self))  # nocopy allows to return 'action'
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "ODOO/tools/safe_eval.py", line 392, in safe_eval
    return unsafe_eval(c, globals_dict, locals_dict)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "ir.actions.server(158,)", line 1, in <module>
odoo.exceptions.UserError: the job failed (odoosim)`, "ODOO", odooPath)

// bootTraceback is a module import error at registry loading.
var bootTraceback = strings.ReplaceAll(`Traceback (most recent call last):
  File "ODOO/modules/registry.py", line 110, in new
    odoo.modules.load_modules(registry, force_demo, status, update_module)
  File "ODOO/modules/loading.py", line 476, in load_modules
    processed_modules += load_marked_modules(env, graph,
                         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "ODOO/modules/loading.py", line 364, in load_marked_modules
    loaded, processed = load_module_graph(
                        ^^^^^^^^^^^^^^^^^^
  File "ODOO/modules/loading.py", line 185, in load_module_graph
    load_openerp_module(package.name)
  File "ODOO/modules/module.py", line 396, in load_openerp_module
    __import__(qualname)
  File "/mnt/extra-addons/broken_addon/__init__.py", line 1, in <module>
    import phonenumbers_missing
ModuleNotFoundError: No module named 'phonenumbers_missing'`, "ODOO", odooPath)

// cronJob is the job the stand-in's cron worker runs.
const cronJob, cronJobID, cronActionID = "Mail: Email Queue Manager", 3, 158

// cronWorkerPID is the pid of the stand-in's cron "worker" in its records
// (in prefork, Odoo's cron worker is a process of its own).
func (s *Server) cronWorkerPID() int { return os.Getpid() + 1 }

// logStart writes what Odoo logs when it starts (prefork).
func (s *Server) logStart() {
	l := s.cfg.Log
	l.Record(0, "INFO", "", "odoo", "Odoo version "+s.ver.serie, "")
	l.Record(0, "INFO", "", "odoo", "database: odoo@127.0.0.1:5432", "")
	l.Record(0, "INFO", "", serverLogger, "HTTP service (werkzeug) running on "+s.webAddr, "")
	l.Record(0, "INFO", "", serverLogger, "Evented Service (longpolling) running on "+s.gevAddr, "")
	l.Record(s.cronWorkerPID(), "INFO", "", serverLogger, fmt.Sprintf("Worker WorkerCron (%d) alive", s.cronWorkerPID()), "")
}

// LogCronRun writes the records of one run of the stand-in's job, in the
// served series' format: a success, or a failure with its traceback.
func (s *Server) LogCronRun(ok bool) {
	l, pid, db := s.cfg.Log, s.cronWorkerPID(), s.db
	took := "0.012"
	switch s.ver.serie {
	case "18.0":
		job := fmt.Sprintf("Job '%s' (%d)", cronJob, cronJobID)
		l.Record(pid, "INFO", db, cronLogger, job+" starting", "")
		if ok {
			l.Record(pid, "INFO", db, cronLogger, job+" done in "+took+"s", "")
		} else {
			l.Record(pid, "ERROR", db, cronLogger, fmt.Sprintf("%s server action #%d failed", job, cronActionID), cronFailureTraceback)
		}
		l.Record(pid, "INFO", db, cronLogger, job+" processed 0 records, 0 records remaining", "")
		l.Record(pid, "INFO", db, cronLogger, job+" completed", "")
	default:
		l.Record(pid, "INFO", db, cronLogger, "Starting job `"+cronJob+"`.", "")
		switch {
		case !ok:
			l.Record(pid, "ERROR", db, cronLogger, fmt.Sprintf("Call from cron %s for server action #%d failed in Job #%d", cronJob, cronActionID, cronJobID), cronFailureTraceback)
		case s.ver.serie == "16.0":
			l.Record(pid, "INFO", db, cronLogger, "Job `"+cronJob+"` done.", "")
		default:
			l.Record(pid, "INFO", db, cronLogger, "Job done: `"+cronJob+"` ("+took+"s).", "")
		}
	}
}

// cronLoop logs a successful run of the job every interval until the
// server closes.
func (s *Server) cronLoop(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.LogCronRun(true)
		}
	}
}

// ErrBootFailed is returned by Start while a boot error is set (see
// SetBootError): the stand-in logged a boot error as Odoo does and must
// exit, as Odoo does.
var ErrBootFailed = errors.New("odoosim: boot error (see the log)")

// bootMarker is the file that makes the next starts fail; it holds how
// many.
func bootMarker(filestore string) string { return filepath.Join(filestore, ".odoosim-boot-error") }

// logBootError writes what Odoo logs when an addon fails to import while
// the registry loads, before it exits.
func (s *Server) logBootError() {
	l := s.cfg.Log
	l.Record(0, "CRITICAL", s.db, "odoo.modules.module", "Couldn't load module broken_addon", "")
	l.Record(0, "ERROR", s.db, "odoo.modules.registry", "Failed to load registry", bootTraceback)
	l.Record(0, "CRITICAL", s.db, serverLogger, "Failed to initialize database `"+s.db+"`.", bootTraceback)
}

// checkBootMarker fails this start when a boot error is pending.
func (s *Server) checkBootMarker() error {
	path := bootMarker(s.cfg.FilestoreDir)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if n <= 1 {
		_ = os.Remove(path)
	} else {
		_ = os.WriteFile(path, []byte(strconv.Itoa(n-1)), 0o644)
	}
	if n < 1 {
		return nil
	}
	s.cfg.Log.Record(0, "INFO", "", "odoo", "Odoo version "+s.ver.serie, "")
	s.logBootError()
	return ErrBootFailed
}

// SetBootError logs a boot error now and makes the next starts more
// starts fail the same way (an addon that cannot be imported: Odoo logs
// the error and exits); Exited is closed so that the process exits.
func (s *Server) SetBootError(more int) error {
	if more > 0 {
		if err := os.WriteFile(bootMarker(s.cfg.FilestoreDir), []byte(strconv.Itoa(more)), 0o644); err != nil {
			return err
		}
	}
	s.logBootError()
	s.exitOnce.Do(func() { close(s.exited) })
	return nil
}

// Exited is closed when the stand-in must exit (a boot error was set).
func (s *Server) Exited() <-chan struct{} { return s.exited }

// SlogHandler returns a slog.Handler that writes the stand-in's own
// messages as Odoo records of logger name, so that its whole stderr is in
// Odoo's format.
func (l *OdooLog) SlogHandler(name string, level slog.Level) slog.Handler {
	return &odooHandler{log: l, name: name, level: level}
}

type odooHandler struct {
	log   *OdooLog
	name  string
	level slog.Level
	attrs []slog.Attr
}

func (h *odooHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *odooHandler) Handle(_ context.Context, r slog.Record) error {
	level := "INFO"
	switch {
	case r.Level >= slog.LevelError:
		level = "ERROR"
	case r.Level >= slog.LevelWarn:
		level = "WARNING"
	case r.Level < slog.LevelInfo:
		level = "DEBUG"
	}
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.log.Record(0, level, "", h.name, b.String(), "")
	return nil
}

func (h *odooHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *odooHandler) WithGroup(string) slog.Handler { return h }

// Access writes werkzeug's access line of a request, as Odoo logs it from
// the HTTP workers (the perf_info fields after it: queries, SQL time,
// other time).
func (l *OdooLog) Access(db string, r *http.Request, status int, took time.Duration) {
	if l == nil {
		return
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if db == "" {
		db = "?"
	}
	line := fmt.Sprintf("%s %d INFO %s werkzeug: %s - - [%s] \"%s %s %s\" %d - 3 0.002 %.3f\n",
		time.Now().Format("2006-01-02 15:04:05,000"), l.pid, db, host, time.Now().Format("02/Jan/2006 15:04:05"),
		r.Method, r.URL.RequestURI(), r.Proto, status, took.Seconds())
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, line)
}

// statusWriter remembers the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// accessLog logs every request of the web port but the stand-in's admin
// ones as werkzeug does.
func (s *Server) accessLog(next http.Handler) http.Handler {
	if s.cfg.Log == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/__odoosim/") {
			next.ServeHTTP(w, r)
			return
		}
		begin := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		s.cfg.Log.Access(s.db, r, sw.status, time.Since(begin))
	})
}
