package prober

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/odoo-exporter/odoo_exporter/internal/loopbacktest"
)

func TestParseOrigin(t *testing.T) {
	for _, tt := range []struct {
		in, want string // want "" = refused
	}{
		{"https://cdn.example", "https://cdn.example:443"},
		{"https://CDN.example/", "https://cdn.example:443"},
		{"http://cdn.example:8080", "http://cdn.example:8080"},
		{"http://[::1]:8069", "http://[::1]:8069"},
		{"ftp://cdn.example", ""},
		{"file:///etc/passwd", ""},
		{"cdn.example", ""},
		{"//cdn.example", ""},
		{"https://cdn.example/static", ""},
		{"https://user:pw@cdn.example", ""},
		{"https://cdn.example?x=1", ""},
		{"https://", ""},
		{"javascript:alert(1)", ""},
	} {
		got, err := ParseOrigin(tt.in)
		if (err != nil) != (tt.want == "") || got != tt.want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNewOrigins(t *testing.T) {
	o, err := NewOrigins("http://odoo:8069/odoo", "wss://erp.example/", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := o.String(), "http://odoo:8069,https://erp.example:443"; got != want {
		t.Errorf("origins %q, want %q", got, want)
	}
	for _, bad := range []string{"ftp://odoo", "odoo:8069", "/web", "http://"} {
		if _, err := NewOrigins(bad); err == nil {
			t.Errorf("NewOrigins(%q): no error", bad)
		}
	}
}

// startRedirector is an Odoo stand-in whose /r answers 302 to the
// location query parameter and every other path 200 with a body.
func startRedirector(tb testing.TB) *httptest.Server {
	tb.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/r" {
			w.Header().Set("Location", r.URL.Query().Get("to"))
			w.WriteHeader(http.StatusFound)
			return
		}
		w.Write([]byte("body{}"))
	}))
	tb.Cleanup(s.Close)
	return s
}

// TestClientStaysOnOrigins: redirects of a probe client are followed on
// its origins only; elsewhere the request is never sent.
func TestClientStaysOnOrigins(t *testing.T) {
	other := loopbacktest.Start(t)
	odoo := startRedirector(t)
	tests := []struct {
		name      string
		to        string
		allow     []string
		wantUp    bool
		wantOff   bool
		wantOther int64
	}{
		{"same origin", "/web/assets/2/web.a.min.css", nil, true, false, 0},
		{"another host", other.URL + "/internal/secret", nil, false, true, 0},
		{"protocol-relative", "//" + other.Listener.Addr().String() + "/x", nil, false, true, 0},
		{"same host, https", strings.Replace(odoo.URL, "http:", "https:", 1) + "/x", nil, false, true, 0},
		{"non-HTTP scheme", "ftp://" + other.Listener.Addr().String() + "/x", nil, false, true, 0},
		{"file scheme", "file:///etc/passwd", nil, false, true, 0},
		{"allowed", other.URL + "/cdn/web.a.min.css", []string{other.URL}, true, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := other.Hits()
			origins, err := NewOrigins(odoo.URL)
			if err != nil {
				t.Fatal(err)
			}
			if err := origins.Allow(tt.allow...); err != nil {
				t.Fatal(err)
			}
			client := NewClient(true, 1, origins)
			r := FetchBundle(context.Background(), client,
				Bundle{Name: "web.a.min.css", URL: odoo.URL + "/r?to=" + url.QueryEscape(tt.to)}, 1<<20)
			if r.Up() != tt.wantUp || r.OffOrigin() != tt.wantOff {
				t.Errorf("up %v, off origin %v (err %v); want %v, %v", r.Up(), r.OffOrigin(), r.Err, tt.wantUp, tt.wantOff)
			}
			if got := other.Hits() - before; got != tt.wantOther {
				t.Errorf("the other server received %d requests, want %d", got, tt.wantOther)
			}
		})
	}
	// The first request is checked too, not only redirects.
	client := NewClient(true, 1, nil)
	if r := FetchBundle(context.Background(), client, Bundle{URL: other.URL + "/x"}, 1<<20); !r.OffOrigin() {
		t.Errorf("a client without origins sent a request: %v", r.Err)
	}
	if other.Hits() != 1 {
		t.Errorf("the other server received %d requests, want 1 (the allowed case)", other.Hits())
	}
}

// FuzzBundleResolution resolves a bundle link of a login page (relative,
// protocol-relative, absolute, any scheme) and fetches it through a
// redirect to a location, both fuzzed: a server on another loopback
// address ("OTHER" in the inputs) must never receive a request, and every
// bundle kept must be on the page's origin.
func FuzzBundleResolution(f *testing.F) {
	for _, seed := range [][2]string{
		{"/web/assets/1/web.a.min.css", "/web/assets/2/web.a.min.css"},
		{"//OTHER/web/assets/1/web.a.min.js", "/x"},
		{"http://OTHER/web/assets/1/web.a.min.js", "http://OTHER/internal/secret"},
		{"HTTP://OTHER/web/assets/1/web.a.min.js", "//OTHER/x"},
		{"../web/assets/1/evil.min.js", "http://user@OTHER/"},
		{"/web/assets/1/web.a.min.css", "\\\\OTHER/x"},
		{"/web/assets/1/web.a.min.css", "/\\OTHER/x"},
		{"/web/assets/1/web.a.min.css", "http:OTHER/x"},
		{"/web/assets/1/web.a.min.css", "ftp://OTHER/x"},
		{"https:OTHER/web/assets/1/web.a.min.js", "https://OTHER/x"},
		{"http://127.0.0.1@OTHER/web/assets/1/web.a.min.js", "/"},
		{"http://OTHER%2f@x/web/assets/1/web.a.min.js", "http://[::ffff:OTHER]/"},
	} {
		f.Add(seed[0], seed[1])
	}
	other := loopbacktest.Start(f)
	odoo := startRedirector(f)
	otherHost := other.Listener.Addr().String()
	origins, err := NewOrigins(odoo.URL)
	if err != nil {
		f.Fatal(err)
	}
	client := NewClient(true, 1, origins)
	base, _ := url.Parse(odoo.URL + "/web/login")
	f.Fuzz(func(t *testing.T, ref, location string) {
		ref = strings.ReplaceAll(ref, "OTHER", otherHost)
		location = strings.ReplaceAll(location, "OTHER", otherHost)
		page := `<script src="` + strings.ReplaceAll(ref, `"`, "&quot;") + `"></script>`
		bs, err := ExtractBundles(strings.NewReader(page), base)
		if err != nil {
			return
		}
		keep, _ := SelectBundles(bs, origins, 10)
		ctx := context.Background()
		for _, b := range keep {
			u, err := url.Parse(b.URL)
			if err != nil || !origins.Allows(u) {
				t.Fatalf("kept %q, not on %s", b.URL, origins)
			}
			FetchBundle(ctx, client, b, 1<<10)
		}
		FetchBundle(ctx, client, Bundle{URL: odoo.URL + "/r?to=" + url.QueryEscape(location)}, 1<<10)
		if n := other.Hits(); n != 0 {
			t.Fatalf("the other server received %d requests (ref %q, location %q)", n, ref, location)
		}
	})
}
