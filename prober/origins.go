package prober

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Origins is the set of HTTP origins (scheme, host and port) a probe may
// request. Probes follow what Odoo's pages and answers point to (bundle
// links, redirects): whoever can edit the login page (website editors,
// custom modules) could otherwise make the exporter send requests into
// its network and read back an up/down answer. Only http and https
// origins can be in the set.
type Origins struct {
	set map[string]struct{}
}

// ErrOffOrigin is wrapped by the error of a request to an origin that is
// not allowed (in a link or a redirect); no such request is sent.
var ErrOffOrigin = errors.New("origin not allowed")

// origin returns u's origin as "scheme://host:port" (host lower case,
// default port made explicit), or "" when u is not an absolute http(s)
// URL with a host.
func origin(u *url.URL) string {
	if u == nil {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return ""
	}
	port := u.Port()
	switch scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return ""
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// NewOrigins returns the origins of urls, absolute http(s) (or ws(s),
// taken as http(s)) URLs whose paths are ignored: the configured Odoo URLs.
func NewOrigins(urls ...string) (*Origins, error) {
	o := &Origins{set: map[string]struct{}{}}
	for _, raw := range urls {
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", Redact(raw), err)
		}
		switch strings.ToLower(u.Scheme) { // a websocket URL's requests are HTTP
		case "ws":
			u.Scheme = "http"
		case "wss":
			u.Scheme = "https"
		}
		s := origin(u)
		if s == "" {
			return nil, fmt.Errorf("%s is not an absolute http(s) or ws(s) URL", Redact(raw))
		}
		o.set[s] = struct{}{}
	}
	return o, nil
}

// ParseOrigin checks an origin given by the user (an allow-list entry):
// scheme://host[:port], http or https, with no user, path, query or
// fragment, so that an entry never reads as allowing less than it does.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("origin %q: %w", s, err)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("origin %q: want scheme://host[:port] only (no user, path, query or fragment)", s)
	}
	o := origin(u)
	if o == "" {
		return "", fmt.Errorf("origin %q: want an http:// or https:// origin with a host", s)
	}
	return o, nil
}

// Allow adds origins given by the user (see ParseOrigin).
func (o *Origins) Allow(origins ...string) error {
	for _, s := range origins {
		p, err := ParseOrigin(s)
		if err != nil {
			return err
		}
		o.set[p] = struct{}{}
	}
	return nil
}

// Allows reports whether u is an http(s) URL on one of the origins.
func (o *Origins) Allows(u *url.URL) bool {
	if o == nil {
		return false
	}
	s := origin(u)
	if s == "" {
		return false
	}
	_, ok := o.set[s]
	return ok
}

// String lists the origins, sorted.
func (o *Origins) String() string {
	if o == nil {
		return ""
	}
	l := make([]string, 0, len(o.set))
	for s := range o.set {
		l = append(l, s)
	}
	sort.Strings(l)
	return strings.Join(l, ",")
}

// originTransport refuses requests to origins not allowed, the first one
// and every redirect alike: all of a client's requests pass here.
type originTransport struct {
	origins *Origins
	next    http.RoundTripper
}

func (t *originTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.origins.Allows(req.URL) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%s: %w (allowed: %s)", originOrURL(req.URL), ErrOffOrigin, t.origins)
	}
	return t.next.RoundTrip(req)
}

// originOrURL names where a refused request would have gone, without its
// user or path (which the page chose).
func originOrURL(u *url.URL) string {
	if s := origin(u); s != "" {
		return s
	}
	return "scheme " + fmt.Sprintf("%q", u.Scheme)
}

// IsOffOrigin reports whether err comes from a request refused because
// its origin is not allowed.
func IsOffOrigin(err error) bool { return errors.Is(err, ErrOffOrigin) }
