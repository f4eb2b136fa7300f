// Package odoolog reads Odoo's own log: it splits the byte stream into
// lines of bounded length, joins the continuation lines of a record (a
// traceback, a multi-line message) to the record they belong to, matches
// records against the error catalog and follows a log from a file (as
// tail -F) or from a Docker container (through the Engine API).
//
// Odoo 16, 17 and 18 write every record with the same format, set in
// odoo/netsvc.py's init_logger:
//
//	%(asctime)s %(pid)s %(levelname)s %(dbname)s %(name)s: %(message)s %(perf_info)s
//
// for example
//
//	2026-12-02 17:25:33,123 4711 INFO odoo odoo.addons.base.models.ir_cron: Job done: `Mail: Email Queue Manager` (0.129s).
//
// asctime is the local time of the Odoo process with milliseconds, dbname
// is "?" outside a database, perf_info is empty (the line then ends with a
// space) except for werkzeug's access lines ("<queries> <sql time> <other
// time>" or "- - -"). When stderr is a terminal or ODOO_PY_COLORS is set
// (a Docker container with tty: true), the level is wrapped in ANSI color
// sequences; they are removed. A traceback follows its record on the next
// lines (logging's Formatter appends exc_text after a newline). What the
// versions log differs (the cron messages); see catalog.yaml.
package odoolog

import (
	"bytes"
	"time"
)

// Level is a record's level.
type Level uint8

// Levels of Odoo's records. Odoo's RUNBOT level (25) is displayed as INFO.
const (
	LevelUnknown Level = iota
	LevelDebug
	LevelInfo
	LevelWarning
	LevelError
	LevelCritical
)

var levelNames = [...]string{"UNKNOWN", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}

// String returns the level as Odoo writes it.
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "UNKNOWN"
}

// Levels lists the levels, in their order of severity.
func Levels() []Level {
	return []Level{LevelDebug, LevelInfo, LevelWarning, LevelError, LevelCritical, LevelUnknown}
}

// ParseLevel returns the level named s (as Odoo writes it), or LevelUnknown.
func ParseLevel(s string) Level {
	return parseLevel([]byte(s))
}

func parseLevel(b []byte) Level {
	switch string(b) {
	case "INFO":
		return LevelInfo
	case "WARNING":
		return LevelWarning
	case "ERROR":
		return LevelError
	case "DEBUG":
		return LevelDebug
	case "CRITICAL":
		return LevelCritical
	}
	return LevelUnknown
}

// Record is one record of Odoo's log. Its byte slices are only valid until
// the handler that received it returns.
type Record struct {
	// Stamp is the timestamp as written, "2006-01-02 15:04:05,000" in the
	// Odoo process' local time zone; see Time.
	Stamp []byte
	PID   int
	Level Level
	// DB is the database of the thread that logged, "?" when none.
	DB []byte
	// Logger is the logger's name, e.g. odoo.addons.base.models.ir_cron.
	Logger []byte
	// Message is the first line of the message, without the trailing
	// perf_info separator (werkzeug's perf fields are kept).
	Message []byte
	// Text holds the record's continuation lines (the rest of a multi-line
	// message, a traceback), joined by newlines, at most the reader's
	// MaxRecord bytes.
	Text []byte
	// Exception is the type of the last exception of the traceback, as
	// Python prints it (e.g. psycopg2.errors.SerializationFailure), empty
	// when the record has none. It is found even when Text is truncated.
	Exception []byte
	// Lines is the number of lines of the record (1 + continuation lines).
	Lines int
	// Truncated is true when a line was cut at MaxLine or continuation
	// lines were dropped beyond MaxRecord.
	Truncated bool
}

// Time parses Stamp in loc (Odoo writes its local time; nil is UTC).
func (r *Record) Time(loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	return time.ParseInLocation("2006-01-02 15:04:05,000", string(r.Stamp), loc)
}

// stampLen is len("2006-01-02 15:04:05,000").
const stampLen = 23

// isStamp reports whether b starts with Odoo's timestamp.
func isStamp(b []byte) bool {
	if len(b) < stampLen {
		return false
	}
	for i := 0; i < stampLen; i++ {
		c := b[i]
		switch i {
		case 4, 7:
			if c != '-' {
				return false
			}
		case 10:
			if c != ' ' {
				return false
			}
		case 13, 16:
			if c != ':' {
				return false
			}
		case 19:
			if c != ',' {
				return false
			}
		default:
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// parseHeader parses line as the first line of a record into r; it
// returns false when line is not one (a continuation line or garbage).
func parseHeader(line []byte, r *Record) bool {
	if !isStamp(line) || len(line) < stampLen+2 || line[stampLen] != ' ' {
		return false
	}
	rest := line[stampLen+1:]
	// pid
	pid, n := 0, 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		if n < 10 {
			pid = pid*10 + int(rest[n]-'0')
		}
		n++
	}
	if n == 0 || n >= len(rest) || rest[n] != ' ' {
		return false
	}
	rest = rest[n+1:]
	// level, maybe colored: ESC[1;32mESC[1;49mINFOESC[0m
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return false
	}
	lv := rest[:sp]
	var level Level
	if lv[0] == 0x1b {
		var buf [16]byte
		level = parseLevel(stripANSI(buf[:0], lv))
	} else {
		level = parseLevel(lv)
	}
	rest = rest[sp+1:]
	// database
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return false
	}
	db := rest[:sp]
	rest = rest[sp+1:]
	// logger, then ": "
	sp = bytes.IndexByte(rest, ' ')
	var logger, msg []byte
	switch {
	case sp > 1 && rest[sp-1] == ':':
		logger, msg = rest[:sp-1], rest[sp+1:]
	case sp < 0 && len(rest) > 1 && rest[len(rest)-1] == ':':
		logger = rest[:len(rest)-1]
	default:
		return false
	}
	// perf_info is empty for every logger but werkzeug: the line ends with
	// the separator's space.
	if n := len(msg); n > 0 && msg[n-1] == ' ' {
		msg = msg[:n-1]
	}
	r.Stamp = line[:stampLen]
	r.PID = pid
	r.Level = level
	r.DB = db
	r.Logger = logger
	r.Message = msg
	return true
}

// stripANSI appends b without its escape sequences (ESC [ ... letter) to
// out.
func stripANSI(out, b []byte) []byte {
	for i := 0; i < len(b); i++ {
		if b[i] == 0x1b && i+1 < len(b) && b[i+1] == '[' {
			j := i + 2
			for j < len(b) && (b[j] < '@' || b[j] > '~') {
				j++
			}
			i = j
			continue
		}
		out = append(out, b[i])
	}
	return out
}
