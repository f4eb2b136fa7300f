package prober

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestErrorsRedactCredentials: a URL flag may carry user:password (basic
// auth on the proxy); no probe error may show the password.
func TestErrorsRedactCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/short" { // promises more than it sends: a read error
			w.Header().Set("Content-Length", "100")
			w.Write([]byte("x"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	base := strings.Replace(srv.URL, "http://", "http://probe:s3cret@", 1)
	origins, err := NewOrigins(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := NewClient(true, 1, origins)
	ctx := context.Background()
	tests := []struct {
		name string
		run  func() error
	}{
		{"login page status", func() error { _, _, err := LoginPage(ctx, client, base+"/web/login"); return err }},
		{"login page read", func() error { _, _, err := LoginPage(ctx, client, base+"/short"); return err }},
		{"health status", func() error { return Health(ctx, client, base+"/websocket/health") }},
		{"health read", func() error { return Health(ctx, client, base+"/short") }},
		{"bundle read", func() error { return FetchBundle(ctx, client, Bundle{Name: "b", URL: base + "/short"}, 1<<20).Err }},
		{"http read", func() error { return HTTP(ctx, client, http.MethodGet, base+"/short", nil, nil).Err }},
		{"bad request", func() error { return HTTP(ctx, client, "BAD METHOD", base+"/", nil, nil).Err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}
