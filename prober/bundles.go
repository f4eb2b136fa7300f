package prober

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Bundle is one compiled asset bundle referenced by a page.
type Bundle struct {
	// Name is the bundle's file name without its version segment, e.g.
	// "web.assets_frontend.min.css"; it is stable across rebuilds.
	Name string
	// URL is the absolute URL the page references.
	URL string
}

// maxPageBytes bounds how much of a page the extraction reads.
const maxPageBytes = 4 << 20

// ExtractBundles parses an HTML page and returns the asset bundles its
// link and script tags reference (href, src and the lazy data-src), made
// absolute against base, without duplicates and in page order.
//
// A reference is a bundle when its path is under /web/assets/ (Odoo 15+)
// or /web/content/ (Odoo 14) and ends in .js or .css; no bundle name is
// assumed, so custom and website bundles are found too.
func ExtractBundles(r io.Reader, base *url.URL) ([]Bundle, error) {
	z := html.NewTokenizer(io.LimitReader(r, maxPageBytes))
	seen := map[string]bool{}
	var out []Bundle
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if err := z.Err(); err != nil && !errors.Is(err, io.EOF) {
				return out, fmt.Errorf("parsing page: %w", err)
			}
			return out, nil
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			if (a != atom.Link && a != atom.Script) || !hasAttr {
				continue
			}
			for {
				key, val, more := z.TagAttr()
				switch string(key) {
				case "href", "src", "data-src":
					if b, ok := bundleRef(string(val), base); ok && !seen[b.Name] {
						seen[b.Name] = true
						out = append(out, b)
					}
				}
				if !more {
					break
				}
			}
		}
	}
}

// bundleRef resolves ref against base and reports whether it names a bundle.
func bundleRef(ref string, base *url.URL) (Bundle, bool) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return Bundle{}, false
	}
	u, err := url.Parse(ref)
	if err != nil {
		return Bundle{}, false
	}
	if base != nil {
		u = base.ResolveReference(u)
	}
	if u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https" {
		return Bundle{}, false
	}
	p := u.Path
	if !strings.Contains(p, "/web/assets/") && !strings.Contains(p, "/web/content/") {
		return Bundle{}, false
	}
	file := path.Base(p)
	if !strings.HasSuffix(file, ".js") && !strings.HasSuffix(file, ".css") {
		return Bundle{}, false
	}
	name := file
	// Odoo 15/16 put right-to-left variants in an "rtl" directory.
	if path.Base(path.Dir(p)) == "rtl" {
		name = "rtl/" + file
	}
	return Bundle{Name: name, URL: u.String()}, true
}

// websocketVersionRE finds the websocket worker version in the session
// info Odoo embeds in its pages (odoo.__session_info__ = {...}).
var websocketVersionRE = regexp.MustCompile(`"websocket_worker_version"\s*:\s*"([^"]{1,64})"`)

// WebsocketWorkerVersion returns the websocket_worker_version of a page's
// session info ("17.0-1"), or "" when the page has none (Odoo 16).
func WebsocketWorkerVersion(page []byte) string {
	m := websocketVersionRE.FindSubmatch(page)
	if m == nil {
		return ""
	}
	var s string
	if err := json.Unmarshal(append(append([]byte{'"'}, m[1]...), '"'), &s); err != nil {
		return ""
	}
	return s
}

// BundleResult is the outcome of fetching one bundle.
type BundleResult struct {
	Bundle
	Status   int
	Bytes    int64
	Duration time.Duration
	Err      error
}

// Up reports whether the bundle was served: status 200 and a non-empty
// body (older Odoo answers 200 with an empty body for a missing file).
func (r BundleResult) Up() bool { return r.Err == nil && r.Status == http.StatusOK && r.Bytes > 0 }

// FetchBundle fetches one bundle with client (which follows redirects:
// Odoo 17+ answers a stale version with 303), reading at most maxBytes of
// the body.
func FetchBundle(ctx context.Context, client *http.Client, b Bundle, maxBytes int64) BundleResult {
	begin := time.Now()
	a, err := Fetch(ctx, client, http.MethodGet, b.URL, nil, nil, maxBytes, false)
	return BundleResult{Bundle: b, Status: a.Status, Bytes: a.Bytes, Duration: time.Since(begin), Err: err}
}

// LoginPage fetches a page (normally /web/login) and returns its body, at
// most maxPageBytes of it, and its final URL.
func LoginPage(ctx context.Context, client *http.Client, pageURL string) ([]byte, *url.URL, error) {
	a, err := Fetch(ctx, client, http.MethodGet, pageURL, nil, nil, maxPageBytes, true)
	if err != nil {
		return a.Body, a.URL, err
	}
	if a.Status != http.StatusOK {
		return a.Body, a.URL, fmt.Errorf("%s answered %d", Redact(pageURL), a.Status)
	}
	return a.Body, a.URL, nil
}
