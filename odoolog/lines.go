package odoolog

import "bytes"

// LineSplitter is an io.Writer that cuts what is written into lines (LF or
// CRLF terminated) of at most max bytes and calls fn with each. A longer
// line is handed over cut at max bytes, with truncated set, and the rest of
// it is dropped: memory stays bounded whatever the input (a 1 GiB line,
// binary data without newlines). The slice passed to fn is only valid
// during the call. A LineSplitter is not safe for concurrent use.
type LineSplitter struct {
	max        int
	fn         func(line []byte, truncated bool)
	buf        []byte // the start of a line not yet terminated
	discarding bool   // the current line was cut: drop up to its end
}

// NewLineSplitter returns a splitter of lines of at most max bytes (0:
// DefaultMaxLine).
func NewLineSplitter(max int, fn func(line []byte, truncated bool)) *LineSplitter {
	if max <= 0 {
		max = DefaultMaxLine
	}
	return &LineSplitter{max: max, fn: fn}
}

// Write implements io.Writer; it never fails.
func (s *LineSplitter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.partial(p)
			break
		}
		chunk := p[:i]
		p = p[i+1:]
		if s.discarding {
			s.discarding = false
			continue
		}
		if len(s.buf) > 0 {
			if len(s.buf)+len(chunk) > s.max {
				s.buf = append(s.buf, chunk[:s.max-len(s.buf)]...)
				s.emit(s.buf, true)
			} else {
				s.buf = append(s.buf, chunk...)
				s.emit(s.buf, false)
			}
			s.buf = s.buf[:0]
			continue
		}
		if len(chunk) > s.max {
			s.emit(chunk[:s.max], true)
		} else {
			s.emit(chunk, false)
		}
	}
	return n, nil
}

// partial keeps the start of an unterminated line.
func (s *LineSplitter) partial(p []byte) {
	if s.discarding {
		return
	}
	if len(s.buf)+len(p) > s.max {
		s.buf = append(s.buf, p[:s.max-len(s.buf)]...)
		s.emit(s.buf, true)
		s.buf = s.buf[:0]
		s.discarding = true
		return
	}
	s.buf = append(s.buf, p...)
}

// Flush hands over an unterminated line, if any (at the end of a stream).
func (s *LineSplitter) Flush() {
	if len(s.buf) > 0 {
		s.emit(s.buf, false)
		s.buf = s.buf[:0]
	}
	s.discarding = false
}

// Buffered reports whether an unterminated line is held.
func (s *LineSplitter) Buffered() bool { return len(s.buf) > 0 }

func (s *LineSplitter) emit(line []byte, truncated bool) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	s.fn(line, truncated)
}
