package nginxtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProxyAndBreak(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	defer up.Close()
	p := New(t, strings.TrimPrefix(up.URL, "http://"), "")
	get := func() (int, string) {
		resp, err := http.Get(p.URL() + "/web/login")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 200 || body != "upstream /web/login" {
		t.Fatalf("through the proxy: %d %q", code, body)
	}
	if err := p.Break(); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(); code != http.StatusBadGateway {
		t.Fatalf("broken proxy: %d, want 502", code)
	}
	if err := p.SetUpstream(strings.TrimPrefix(up.URL, "http://")); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(); code != 200 {
		t.Fatalf("repaired proxy: %d", code)
	}
}
