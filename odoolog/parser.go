package odoolog

import (
	"bytes"
)

// Defaults of the bounds.
const (
	// DefaultMaxLine bounds one line; the rest of a longer line is dropped.
	DefaultMaxLine = 64 << 10
	// DefaultMaxRecord bounds the continuation lines kept with a record.
	DefaultMaxRecord = 64 << 10
)

// Stats counts what a Parser read.
type Stats struct {
	Lines     uint64 // lines read
	Records   uint64 // records emitted
	Orphans   uint64 // lines before the first record (not Odoo's format)
	Truncated uint64 // records with a line cut or continuation lines dropped
}

// Parser assembles lines into records: a line that starts with Odoo's
// header begins a record, every other line continues the current one. The
// record is handed to the handler when the next one begins or on Flush.
// A Parser is not safe for concurrent use.
type Parser struct {
	handle    func(*Record)
	maxRecord int

	cur     Record
	pending bool   // cur holds a record not yet handed over
	head    []byte // copy of cur's first line
	text    []byte // cur's continuation lines
	exc     []byte // cur's exception type
	inTB    bool   // inside a traceback's frames
	stats   Stats
}

// NewParser returns a parser that calls handle with every record. The
// record and its slices are only valid during the call. maxRecord bounds
// a record's continuation lines (0: DefaultMaxRecord).
func NewParser(maxRecord int, handle func(*Record)) *Parser {
	if maxRecord <= 0 {
		maxRecord = DefaultMaxRecord
	}
	return &Parser{handle: handle, maxRecord: maxRecord}
}

// Stats returns the counts so far.
func (p *Parser) Stats() Stats { return p.stats }

// Pending reports whether a record waits for its next line or Flush.
func (p *Parser) Pending() bool { return p.pending }

var tracebackStart = []byte("Traceback (most recent call last):")

// Line reads one line, without its line terminator. truncated tells that
// the line was cut (see LineSplitter).
func (p *Parser) Line(line []byte, truncated bool) {
	p.stats.Lines++
	if isStamp(line) {
		var r Record
		if parseHeader(line, &r) {
			p.Flush()
			p.head = append(p.head[:0], line...)
			// Re-point the slices into the copy.
			base := func(b []byte) []byte {
				if b == nil {
					return nil
				}
				off := cap(line) - cap(b)
				return p.head[off : off+len(b) : off+len(b)]
			}
			r.Stamp, r.DB, r.Logger, r.Message = base(r.Stamp), base(r.DB), base(r.Logger), base(r.Message)
			r.Lines = 1
			r.Truncated = truncated
			p.cur = r
			p.text = p.text[:0]
			p.exc = p.exc[:0]
			p.inTB = false
			p.pending = true
			return
		}
	}
	if !p.pending {
		p.stats.Orphans++
		return
	}
	p.cur.Lines++
	if truncated {
		p.cur.Truncated = true
	}
	// The exception is read from every line, kept or not.
	switch {
	case bytes.Equal(line, tracebackStart):
		p.inTB = true
	case p.inTB && len(line) > 0 && line[0] != ' ':
		p.inTB = false
		if t := exceptionType(line); t != nil {
			p.exc = append(p.exc[:0], t...)
		}
	}
	need := len(line)
	if len(p.text) > 0 {
		need++
	}
	if len(p.text)+need > p.maxRecord {
		p.cur.Truncated = true
		return
	}
	if len(p.text) > 0 {
		p.text = append(p.text, '\n')
	}
	p.text = append(p.text, line...)
}

// Flush hands the pending record, if any, to the handler.
func (p *Parser) Flush() {
	if !p.pending {
		return
	}
	p.pending = false
	p.cur.Text = p.text
	p.cur.Exception = p.exc
	if p.cur.Truncated {
		p.stats.Truncated++
	}
	p.stats.Records++
	p.handle(&p.cur)
}

// exceptionType returns the exception type of a traceback's last line
// ("psycopg2.errors.SerializationFailure: could not serialize access",
// "KeyboardInterrupt"), or nil when the line is not one.
func exceptionType(line []byte) []byte {
	end := bytes.IndexByte(line, ':')
	if end < 0 {
		end = len(line)
	}
	t := line[:end]
	if len(t) == 0 || len(t) > 200 {
		return nil
	}
	for i, c := range t {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9', c == '.':
			if i == 0 {
				return nil
			}
		default:
			return nil
		}
	}
	return t
}
