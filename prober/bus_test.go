package prober

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/odoo-exporter/odoo_exporter/e2e/odoosim"
)

func TestBusProbes(t *testing.T) {
	for _, version := range []string{"16.0", "17.0", "18.0"} {
		t.Run(version, func(t *testing.T) {
			s := startSim(t, version)
			page, _, err := LoginPage(context.Background(), http.DefaultClient, s.WebURL()+"/web/login")
			if err != nil {
				t.Fatal(err)
			}
			o := busOptions(s, WebsocketWorkerVersion(page))
			pub, err := NewPublisher(cluster.DSN(s.Database(), ""), "")
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			probe := func(name string, timeout time.Duration) error {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				switch name {
				case "health":
					return Health(ctx, http.DefaultClient, s.GeventURL()+"/websocket/health")
				case "websocket":
					_, err := Websocket(ctx, o)
					return err
				default:
					_, err := RoundTrip(ctx, o, pub)
					return err
				}
			}
			modes := []string{"health", "websocket", "roundtrip"}
			for _, m := range modes {
				if err := probe(m, 5*time.Second); err != nil {
					t.Fatalf("healthy %s probe: %v", m, err)
				}
			}

			s.SetFault(odoosim.FaultDispatcherDead, 0)
			for _, m := range modes[:2] {
				if err := probe(m, 5*time.Second); err != nil {
					t.Errorf("%s probe with a dead dispatcher: %v", m, err)
				}
			}
			if err := probe("roundtrip", 1*time.Second); Reason(err) != ReasonNoDelivery {
				t.Errorf("round trip with a dead dispatcher: got %v, want reason %s", err, ReasonNoDelivery)
			}

			s.SetFault(odoosim.FaultStall, 0)
			for _, m := range modes {
				if err := probe(m, 300*time.Millisecond); Reason(err) != ReasonTimeout {
					t.Errorf("%s probe on a stalled gevent port: got %v, want reason %s", m, err, ReasonTimeout)
				}
			}

			s.ClearFault()
			s.Stop()
			for _, m := range modes {
				if err := probe(m, 2*time.Second); Reason(err) != ReasonConnect {
					t.Errorf("%s probe on a stopped server: got %v, want reason %s", m, err, ReasonConnect)
				}
			}
			if err := s.Restart(); err != nil {
				t.Fatal(err)
			}
			for _, m := range modes {
				if err := probe(m, 5*time.Second); err != nil {
					t.Errorf("%s probe after restart: %v", m, err)
				}
			}
		})
	}
}

// TestWebsocketHandshakeRules checks the stand-in follows Odoo's rules:
// Origin required (17+), browsers with another worker version closed with
// 1000 OUTDATED_VERSION, the websocket route on the web port answers 500.
func TestWebsocketHandshakeRules(t *testing.T) {
	s := startSim(t, "17.0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	o := busOptions(s, "17.0-1")
	o.Origin = ""
	if _, err := Websocket(ctx, o); Reason(err) != ReasonHandshake || !strings.Contains(err.Error(), "400") {
		t.Errorf("no Origin: got %v, want a 400 handshake failure", err)
	}

	o = busOptions(s, "17.0-0")
	o.UserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
	b, err := DialBus(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Wait(ctx, func(Notification) bool { return true })
	b.Close()
	if Reason(err) != ReasonClosed || !strings.Contains(err.Error(), "1000 OUTDATED_VERSION") {
		t.Errorf("browser with an old version: got %v, want close 1000 OUTDATED_VERSION", err)
	}

	// A non-browser agent is not checked.
	o = busOptions(s, "17.0-0")
	if _, err := Websocket(ctx, o); err != nil {
		t.Errorf("non-browser with an old version: %v", err)
	}

	resp, err := http.Get(s.WebURL() + "/websocket?version=17.0-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("websocket on the web port: %d, want 500", resp.StatusCode)
	}

	// Past messages of the subscribed channel are delivered on subscribe.
	pub, _ := NewPublisher(cluster.DSN(s.Database(), ""), "")
	defer pub.Close()
	id, _, err := pub.Publish(ctx, "past_channel")
	if err != nil {
		t.Fatal(err)
	}
	b, err = DialBus(ctx, busOptions(s, "17.0-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Subscribe(ctx, []string{"past_channel"}, id-1); err != nil {
		t.Fatal(err)
	}
	n, err := b.Wait(ctx, func(n Notification) bool { return n.ID == id })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(n.Message), `"type":"odoo_exporter/probe"`) {
		t.Errorf("message %s", n.Message)
	}
}

func TestBundlesAgainstSim(t *testing.T) {
	for _, tt := range []struct {
		version    string
		brokenCode int
	}{{"16.0", 200}, {"17.0", 500}, {"18.0", 500}} {
		t.Run(tt.version, func(t *testing.T) {
			s := startSim(t, tt.version)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			fetchAll := func() map[string]BundleResult {
				page, base, err := LoginPage(ctx, http.DefaultClient, s.WebURL()+"/web/login")
				if err != nil {
					t.Fatal(err)
				}
				bs, err := ExtractBundles(strings.NewReader(string(page)), base)
				if err != nil {
					t.Fatal(err)
				}
				out := map[string]BundleResult{}
				for _, b := range bs {
					out[b.Name] = FetchBundle(ctx, http.DefaultClient, b, 1<<20)
				}
				return out
			}
			res := fetchAll()
			if len(res) != len(odoosim.Bundles()) {
				t.Fatalf("found bundles %v, want %v", res, odoosim.Bundles())
			}
			for name, r := range res {
				if !r.Up() {
					t.Errorf("%s: %+v", name, r)
				}
			}
			const broken = "web.assets_frontend.min.css"
			if err := s.BreakBundle(ctx, broken); err != nil {
				t.Fatal(err)
			}
			res = fetchAll()
			for name, r := range res {
				if (name == broken) == r.Up() {
					t.Errorf("after breaking %s: %s up=%v (%d, %d bytes)", broken, name, r.Up(), r.Status, r.Bytes)
				}
			}
			if r := res[broken]; r.Status != tt.brokenCode {
				t.Errorf("broken bundle status %d, want %d", r.Status, tt.brokenCode)
			}
			// The runbook's quick fix: delete the asset attachments.
			cluster.Exec(t, s.Database(), `DELETE FROM ir_attachment WHERE name LIKE 'web.assets_%' AND res_model = 'ir.ui.view'`)
			for name, r := range fetchAll() {
				if !r.Up() {
					t.Errorf("after the quick fix: %s %+v", name, r)
				}
			}
		})
	}
}

// TestStaleBundleRedirect: a stale version is answered 303 to the current
// one (17+), which FetchBundle follows.
func TestStaleBundleRedirect(t *testing.T) {
	s := startSim(t, "17.0")
	ctx := context.Background()
	r := FetchBundle(ctx, http.DefaultClient, Bundle{Name: "x", URL: s.WebURL() + "/web/assets/0000000/web.assets_frontend.min.css"}, 1<<20)
	if !r.Up() {
		t.Fatalf("stale bundle: %+v", r)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(s.WebURL() + "/web/assets/0000000/web.assets_frontend.min.css")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("stale bundle status %d, want 303", resp.StatusCode)
	}
}
