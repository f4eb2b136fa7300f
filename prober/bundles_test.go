package prober

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestExtractBundles(t *testing.T) {
	base, _ := url.Parse("http://odoo.example:8069/web/login")
	tests := []struct {
		name string
		page string
		want []string // name=url
	}{
		{
			name: "odoo 17 login page",
			page: `<html><head>
<link type="image/x-icon" rel="shortcut icon" href="/web/static/img/favicon.ico"/>
<link type="text/css" rel="stylesheet" href="/web/assets/5adf804/web.assets_frontend.min.css"/>
<script type="text/javascript" src="/web/assets/3ef6816/web.assets_frontend_minimal.min.js" onerror="__odooAssetError=1"></script>
<script type="text/javascript" data-src="/web/assets/b153db6/web.assets_frontend_lazy.min.js"></script>
<script>odoo.__session_info__ = {"websocket_worker_version": "17.0-1"};</script>
</head><body><a href="/web/assets/1/not_a_tag.css">x</a></body></html>`,
			want: []string{
				"web.assets_frontend.min.css=http://odoo.example:8069/web/assets/5adf804/web.assets_frontend.min.css",
				"web.assets_frontend_minimal.min.js=http://odoo.example:8069/web/assets/3ef6816/web.assets_frontend_minimal.min.js",
				"web.assets_frontend_lazy.min.js=http://odoo.example:8069/web/assets/b153db6/web.assets_frontend_lazy.min.js",
			},
		},
		{
			name: "odoo 16 ids and rtl, website id, absolute CDN url, duplicates",
			page: `<link rel="stylesheet" href="/web/assets/412-5adf804/rtl/web.assets_frontend.min.css" data-asset-bundle="web.assets_frontend"/>
<link rel="stylesheet" href="/web/assets/1/5adf804/web.assets_frontend.min.css"/>
<link rel="stylesheet" href="/web/assets/1/5adf804/web.assets_frontend.min.css"/>
<script src="https://cdn.example/web/assets/413-aaaaaaa/web.assets_common.min.js"></script>`,
			want: []string{
				"rtl/web.assets_frontend.min.css=http://odoo.example:8069/web/assets/412-5adf804/rtl/web.assets_frontend.min.css",
				"web.assets_frontend.min.css=http://odoo.example:8069/web/assets/1/5adf804/web.assets_frontend.min.css",
				"web.assets_common.min.js=https://cdn.example/web/assets/413-aaaaaaa/web.assets_common.min.js",
			},
		},
		{
			name: "odoo 14 web/content",
			page: `<script type="text/javascript" src="/web/content/123-abcdef0/web.assets_common.js" data-asset-xmlid="web.assets_common"></script>`,
			want: []string{"web.assets_common.js=http://odoo.example:8069/web/content/123-abcdef0/web.assets_common.js"},
		},
		{
			name: "no bundles, broken html, other schemes",
			page: `<link href="javascript:alert(1)/web/assets/x.js"><script src="/web/static/lib/x.js"></script><script src="/web/assets/abc/bundle.txt"><link href="`,
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, err := ExtractBundles(strings.NewReader(tt.page), base)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range bs {
				got = append(got, b.Name+"="+b.URL)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func TestWebsocketWorkerVersion(t *testing.T) {
	for page, want := range map[string]string{
		`odoo.__session_info__ = {"is_admin": false, "websocket_worker_version": "17.0-1", "x": 1};`: "17.0-1",
		`{"websocket_worker_version":"saas-18.3-7"}`:                                                 "saas-18.3-7",
		`odoo.__session_info__ = {"is_admin": false};`:                                               "",
	} {
		if got := WebsocketWorkerVersion([]byte(page)); got != want {
			t.Errorf("WebsocketWorkerVersion(%q) = %q, want %q", page, got, want)
		}
	}
}

// FuzzExtractBundles checks that any page parses without panicking and
// that every bundle found is an absolute URL under /web/assets/ or
// /web/content/ with a .js or .css name, found once.
func FuzzExtractBundles(f *testing.F) {
	f.Add(`<link rel="stylesheet" href="/web/assets/5adf804/web.assets_frontend.min.css"/>`)
	f.Add(`<script data-src="/web/assets/b153db6/web.assets_frontend_lazy.min.js"></script>`)
	base, _ := url.Parse("http://127.0.0.1:8069/web/login")
	f.Fuzz(func(t *testing.T, page string) {
		bs, err := ExtractBundles(strings.NewReader(page), base)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, b := range bs {
			u, err := url.Parse(b.URL)
			if err != nil {
				t.Fatalf("bundle URL %q does not parse: %v", b.URL, err)
			}
			if !u.IsAbs() {
				t.Fatalf("bundle URL %q is not absolute", b.URL)
			}
			if !strings.Contains(u.Path, "/web/assets/") && !strings.Contains(u.Path, "/web/content/") {
				t.Fatalf("bundle URL %q is not an asset route", b.URL)
			}
			if !strings.HasSuffix(b.Name, ".js") && !strings.HasSuffix(b.Name, ".css") {
				t.Fatalf("bundle name %q", b.Name)
			}
			if seen[b.URL] {
				t.Fatalf("bundle URL %q found twice", b.URL)
			}
			seen[b.URL] = true
			if l := b.Label(); l != OtherBundles && l != b.Name {
				t.Fatalf("label %q of %q", l, b.Name)
			}
		}
	})
}

func TestValidBundleName(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"web.assets_frontend.min.css", true},        // 17, 18
		{"web.assets_frontend_minimal.min.js", true}, // 17, 18
		{"web.assets_frontend_lazy.min.js", true},    // 17, 18 (data-src)
		{"web.assets_frontend.rtl.min.css", true},    // 17+ right-to-left
		{"web.assets_frontend.css", true},            // debug=assets
		{"rtl/web.assets_frontend.min.css", true},    // 15, 16
		{"web_editor.backend_assets_wysiwyg.min.js", true},
		{"web.assets_common.js", true},    // 14
		{"web.assets_common.0.css", true}, // 14's CSS chunks
		{"evil.min.js", false},            // Odoo: one-part bundle "evil", refused
		{"web.rtl.css", false},
		{"bundle.txt", false},
		{"a.b.c.min.js", false}, // three parts
		{"web.assets frontend.min.css", false},
		{"web.assets_frontend.min.css?x", false},
		{"x/web.assets_frontend.min.css", false},
		{"web." + strings.Repeat("a", 129) + ".min.js", false},
		{"wéb.assets.min.js", false},
		{"", false},
	} {
		if got := ValidBundleName(tt.name); got != tt.want {
			t.Errorf("ValidBundleName(%q) = %v, want %v", tt.name, got, tt.want)
		}
		want := tt.name
		if !tt.want {
			want = OtherBundles
		}
		if got := (Bundle{Name: tt.name}).Label(); got != want {
			t.Errorf("Label of %q = %q, want %q", tt.name, got, want)
		}
	}
}

func TestSelectBundles(t *testing.T) {
	base, _ := url.Parse("http://odoo.example:8069/web/login")
	page := `<link href="/web/assets/1/web.a.min.css"/>
<script src="//odoo.example:8069/web/assets/1/web.b.min.js"></script>
<script src="HTTP://ODOO.EXAMPLE:8069/web/assets/1/web.c.min.js"></script>
<script src="//odoo.example:8070/web/assets/1/web.d.min.js"></script>
<script src="https://odoo.example:8069/web/assets/1/web.e.min.js"></script>
<script src="http://127.0.0.2:8069/web/assets/1/web.f.min.js"></script>
<script src="//cdn.example/web/assets/1/web.g.min.js"></script>
<script src="ftp://odoo.example:8069/web/assets/1/web.h.min.js"></script>
<script src="file:///web/assets/1/web.i.min.js"></script>
<link href="/web/assets/2/web.a.min.css"/>
<script src="/web/assets/1/web.j.min.js"></script>
<script src="/web/assets/1/web.k.min.js"></script>`
	bs, err := ExtractBundles(strings.NewReader(page), base)
	if err != nil {
		t.Fatal(err)
	}
	names := func(bs []Bundle) (out []string) {
		for _, b := range bs {
			out = append(out, b.Name)
		}
		return out
	}
	tests := []struct {
		name        string
		allow       []string
		max         int
		want        []string
		wantSkipped map[string]int
	}{
		{"web URL's origin only", nil, 100,
			[]string{"web.a.min.css", "web.b.min.js", "web.c.min.js", "web.j.min.js", "web.k.min.js"},
			map[string]int{SkipOffOrigin: 6}},
		{"limit", nil, 2,
			[]string{"web.a.min.css", "web.b.min.js"},
			map[string]int{SkipOffOrigin: 6, SkipOverLimit: 3}},
		{"CDN allowed", []string{"https://cdn.example"}, 100,
			[]string{"web.a.min.css", "web.b.min.js", "web.c.min.js", "web.j.min.js", "web.k.min.js"},
			map[string]int{SkipOffOrigin: 6}}, // //cdn.example resolves to http://, not https://
		{"CDN allowed, scheme matching", []string{"http://cdn.example/"}, 100,
			[]string{"web.a.min.css", "web.b.min.js", "web.c.min.js", "web.g.min.js", "web.j.min.js", "web.k.min.js"},
			map[string]int{SkipOffOrigin: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			origins, err := NewOrigins(base.String())
			if err != nil {
				t.Fatal(err)
			}
			if err := origins.Allow(tt.allow...); err != nil {
				t.Fatal(err)
			}
			keep, skipped := SelectBundles(bs, origins, tt.max)
			if !reflect.DeepEqual(names(keep), tt.want) {
				t.Errorf("kept %v, want %v", names(keep), tt.want)
			}
			if !reflect.DeepEqual(skipped, tt.wantSkipped) {
				t.Errorf("skipped %v, want %v", skipped, tt.wantSkipped)
			}
		})
	}
}
