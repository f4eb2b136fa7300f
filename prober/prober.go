// Package prober holds the probes the exporter runs against Odoo from
// outside, as a browser sees it: the gevent port's health route, the bus
// websocket (connect, subscribe, ping), a bus round trip through
// PostgreSQL's NOTIFY, plain HTTP requests, and the asset bundles of the
// login page. It follows blackbox_exporter's prober style: each probe takes
// a context whose deadline bounds it and returns what it measured.
package prober

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Failure reasons, the values of odoo_longpoll_probe_failures_total's
// reason label.
const (
	ReasonTimeout     = "timeout"     // the deadline passed (a stall)
	ReasonConnect     = "connect"     // connection refused or reset
	ReasonStatus      = "status"      // unexpected HTTP status
	ReasonHandshake   = "handshake"   // websocket upgrade refused
	ReasonClosed      = "closed"      // the server closed the websocket
	ReasonProtocol    = "protocol"    // unexpected answer body
	ReasonPublish     = "publish"     // inserting or notifying the probe message failed
	ReasonNoDelivery  = "no_delivery" // the probe message never arrived
	ReasonUnavailable = "unavailable" // the probe could not be prepared (login page, DSN)
)

// Reasons lists every failure reason, for initialising counters.
var Reasons = []string{ReasonTimeout, ReasonConnect, ReasonStatus, ReasonHandshake,
	ReasonClosed, ReasonProtocol, ReasonPublish, ReasonNoDelivery, ReasonUnavailable}

// Error is a probe failure with its reason.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// fail wraps err with reason unless err already carries one; a deadline
// or a timeout always becomes ReasonTimeout.
func fail(reason string, err error) error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	if isTimeout(err) {
		reason = ReasonTimeout
	}
	return &Error{Reason: reason, Err: err}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, http.ErrHandlerTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Reason returns the failure reason of err ("" for nil).
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Reason
	}
	if isTimeout(err) {
		return ReasonTimeout
	}
	return ReasonConnect
}

// HTTPResult is the outcome of one HTTP request.
type HTTPResult struct {
	Status   int // 0 when no answer came
	Duration time.Duration
	Err      error
}

// Up reports whether the server answered with a status below 400.
func (r HTTPResult) Up() bool { return r.Err == nil && r.Status > 0 && r.Status < 400 }

// HTTP sends one request and reads (and discards) at most 1 MiB of the
// answer. client should not follow redirects when the redirect itself is
// the expected answer (/ and /web answer 303).
func HTTP(ctx context.Context, client *http.Client, method, url string, body io.Reader, header http.Header) HTTPResult {
	begin := time.Now()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return HTTPResult{Err: err}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return HTTPResult{Duration: time.Since(begin), Err: fail(ReasonConnect, err)}
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	res := HTTPResult{Status: resp.StatusCode, Duration: time.Since(begin)}
	if err != nil {
		res.Err = fail(ReasonConnect, fmt.Errorf("reading the answer: %w", err))
	}
	return res
}

// Health requests Odoo's health route at url (e.g. the gevent port's
// /websocket/health) and checks for 200 and {"status": "pass"}.
func Health(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return &Error{Reason: ReasonUnavailable, Err: err}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fail(ReasonConnect, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return fail(ReasonConnect, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &Error{Reason: ReasonStatus, Err: fmt.Errorf("%s answered %d", url, resp.StatusCode)}
	}
	if !strings.Contains(strings.ReplaceAll(string(body), " ", ""), `"status":"pass"`) {
		return &Error{Reason: ReasonProtocol, Err: fmt.Errorf("%s answered %q", url, truncate(body, 100))}
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
