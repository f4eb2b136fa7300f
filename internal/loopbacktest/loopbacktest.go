// Package loopbacktest starts, for tests, an HTTP server on a second
// loopback address (127.0.0.2), as an internal service the exporter could
// reach would be, and counts the requests it receives: a probe that stays
// on Odoo's origin never reaches it.
package loopbacktest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Server is the counting server.
type Server struct {
	*httptest.Server
	hits atomic.Int64
}

// Hits returns the number of requests received so far.
func (s *Server) Hits() int64 { return s.hits.Load() }

// Start starts a Server on 127.0.0.2 (the test is skipped when the host
// has no such address), closed at the end of the test.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		w.Write([]byte("internal"))
	}))
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		tb.Skipf("no second loopback address: %v", err)
	}
	s.Listener.Close()
	s.Listener = l
	s.Start()
	tb.Cleanup(s.Close)
	return s
}
