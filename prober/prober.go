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
	"net/url"
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

// NewClient returns an HTTP client for probes: proxy from the
// environment, no Timeout of its own (each probe's context bounds its
// requests, so a scrape's deadline applies), at most maxIdle idle
// connections per host. It sends requests only to origins (nil: none), the
// first request and every redirect alike; any other is refused with an
// error wrapping ErrOffOrigin and never sent. Redirects are followed only
// when follow is true.
func NewClient(follow bool, maxIdle int, origins *Origins) *http.Client {
	c := &http.Client{Transport: &originTransport{origins: origins, next: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: maxIdle,
		IdleConnTimeout:     time.Minute,
	}}}
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

// Answer is what Fetch read of a response.
type Answer struct {
	Status int      // HTTP status
	Body   []byte   // at most the limit, when kept
	Bytes  int64    // bytes of the body read (at most the limit)
	URL    *url.URL // final URL, after redirects
}

// Fetch sends one request bounded by ctx and reads at most limit bytes of
// the body, keeping them when keep is true (else they are discarded and
// only counted). An answer with any status is not an error; errors carry
// the URL with its password redacted; a request that cannot be built is
// an *Error with ReasonUnavailable.
func Fetch(ctx context.Context, client *http.Client, method, rawURL string, body io.Reader, header http.Header, limit int64, keep bool) (Answer, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return Answer{}, &Error{Reason: ReasonUnavailable, Err: fmt.Errorf("request %s: %w", Redact(rawURL), err)}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req) // net/http redacts the URL in its errors
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	a := Answer{Status: resp.StatusCode, URL: resp.Request.URL}
	r := io.LimitReader(resp.Body, limit)
	if keep {
		a.Body, err = io.ReadAll(r)
		a.Bytes = int64(len(a.Body))
	} else {
		a.Bytes, err = io.Copy(io.Discard, r)
	}
	if err != nil {
		return a, fmt.Errorf("reading the answer of %s: %w", Redact(rawURL), err)
	}
	return a, nil
}

// Redact returns rawURL with its password, if any, replaced by "xxxxx",
// for logs and errors.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<unparsable URL>"
	}
	return u.Redacted()
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
	a, err := Fetch(ctx, client, method, url, body, header, 1<<20, false)
	return HTTPResult{Status: a.Status, Duration: time.Since(begin), Err: fail(ReasonConnect, err)}
}

// Health requests Odoo's health route at url (e.g. the gevent port's
// /websocket/health) and checks for 200 and {"status": "pass"}.
func Health(ctx context.Context, client *http.Client, url string) error {
	a, err := Fetch(ctx, client, http.MethodGet, url, nil, nil, 4096, true)
	if err != nil {
		return fail(ReasonConnect, err)
	}
	if a.Status != http.StatusOK {
		return &Error{Reason: ReasonStatus, Err: fmt.Errorf("%s answered %d", Redact(url), a.Status)}
	}
	if !strings.Contains(strings.ReplaceAll(string(a.Body), " ", ""), `"status":"pass"`) {
		return &Error{Reason: ReasonProtocol, Err: fmt.Errorf("%s answered %q", Redact(url), truncate(a.Body, 100))}
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
