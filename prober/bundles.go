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
	// "web.assets_frontend.min.css"; it is stable across rebuilds. It comes
	// from the page: use Label for a metric label.
	Name string
	// URL is the absolute URL the page references.
	URL string
}

// OtherBundles is the label of the bundles whose names do not follow
// Odoo's naming: they are grouped under it, so that a page cannot create
// label values of its choosing.
const OtherBundles = "other"

// bundleNameRE is Odoo's naming of bundle files: "<module>.<bundle>" (two
// dot-separated parts, as ir.asset's _parse_bundle_name requires in 17+),
// then ".rtl" for right-to-left CSS (17+), a chunk number (14's split
// CSS), ".min" outside debug=assets, and the type; 15/16 put RTL variants
// in an "rtl/" directory. Module names are Python identifiers; bundle
// names are XML ids.
var bundleNameRE = regexp.MustCompile(`^(?:rtl/)?[A-Za-z0-9_]{1,64}\.([A-Za-z0-9_]{1,128})(?:\.rtl)?(?:\.[0-9]{1,4})?(?:\.min)?\.(?:js|css)$`)

// ValidBundleName reports whether name follows Odoo's naming of bundle
// files (e.g. "web.assets_frontend.min.css", "rtl/web.assets_common.min.css",
// "web.assets_frontend.rtl.min.css"). "evil.min.js" does not: Odoo reads
// it as the one-part bundle "evil" and refuses it.
func ValidBundleName(name string) bool {
	m := bundleNameRE.FindStringSubmatch(name)
	return m != nil && m[1] != "min" && m[1] != "rtl"
}

// Label is the value of the bundle label: the name when it follows Odoo's
// naming, else OtherBundles.
func (b Bundle) Label() string {
	if ValidBundleName(b.Name) {
		return b.Name
	}
	return OtherBundles
}

// maxPageBytes bounds how much of a page the extraction reads.
const maxPageBytes = 4 << 20

// ExtractBundles parses an HTML page and returns the asset bundles its
// link and script tags reference (href, src and the lazy data-src), made
// absolute against base, each URL once, in page order. It does not judge
// where they point: SelectBundles does.
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
					if b, ok := bundleRef(string(val), base); ok && !seen[b.URL] {
						seen[b.URL] = true
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

// Reasons a bundle of the page is not probed, the values of
// odoo_asset_bundles_skipped's reason label.
const (
	// SkipOffOrigin: the link, or a redirect of the bundle, leads to an
	// origin that is not allowed, or is not http(s).
	SkipOffOrigin = "off_origin"
	// SkipOverLimit: the page names more bundles than the limit.
	SkipOverLimit = "over_limit"
)

// SkipReasons lists every skip reason, for initialising series.
var SkipReasons = []string{SkipOffOrigin, SkipOverLimit}

// SelectBundles returns the bundles to probe: those on origins, one per
// name (the first), at most max (in page order); the others are counted
// by skip reason. A link elsewhere is never requested.
func SelectBundles(bundles []Bundle, origins *Origins, max int) (keep []Bundle, skipped map[string]int) {
	skipped = map[string]int{}
	names := map[string]bool{}
	for _, b := range bundles {
		u, err := url.Parse(b.URL)
		if err != nil || !origins.Allows(u) {
			skipped[SkipOffOrigin]++
			continue
		}
		if names[b.Name] {
			continue // the same bundle, another version or query string
		}
		names[b.Name] = true
		if len(keep) >= max {
			skipped[SkipOverLimit]++
			continue
		}
		keep = append(keep, b)
	}
	return keep, skipped
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

// OffOrigin reports whether the bundle was not judged because a redirect
// led to an origin the client does not allow.
func (r BundleResult) OffOrigin() bool { return IsOffOrigin(r.Err) }

// FetchBundle fetches one bundle with client (which follows redirects:
// Odoo 17+ answers a stale version with 303; see NewClient for where it
// may go), reading at most maxBytes of the body.
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
