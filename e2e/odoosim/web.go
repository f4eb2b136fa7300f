package odoosim

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// version holds what differs between the Odoo series served.
type version struct {
	serie string
	info  []any // server_version_info
	// wsVersion is WebsocketConnectionHandler._VERSION; "" means no
	// version rule (16.0).
	wsVersion string
	// originRequired: Origin is a required handshake header (17+).
	originRequired bool
	// idInAssetURL: 15/16 put the attachment id in the URL
	// (/web/assets/<id>-<unique>/...), 17+ only the unique.
	idInAssetURL bool
	// missingFile500: 17+ answer 500 for a bundle whose file is missing;
	// older versions answer 200 with an empty body.
	missingFile500 bool
}

var versions = map[string]version{
	"16.0": {serie: "16.0", info: []any{16, 0, 0, "final", 0, ""}, idInAssetURL: true},
	"17.0": {serie: "17.0", info: []any{17, 0, 0, "final", 0, ""}, wsVersion: "17.0-1", originRequired: true, missingFile500: true},
	"18.0": {serie: "18.0", info: []any{18, 0, 0, "final", 0, ""}, wsVersion: "18.0-7", originRequired: true, missingFile500: true},
}

// bundle is one compiled asset bundle of the login page.
type bundle struct {
	xmlid string // web.assets_frontend
	ext   string // css | js
	lazy  bool   // referenced with data-src
}

func (b bundle) file() string { return b.xmlid + ".min." + b.ext }

// The login page's bundles (16.0+).
var loginBundles = []bundle{
	{xmlid: "web.assets_frontend", ext: "css"},
	{xmlid: "web.assets_frontend_minimal", ext: "js"},
	{xmlid: "web.assets_frontend_lazy", ext: "js", lazy: true},
}

// Bundles returns the file names of the login page's bundles
// ("web.assets_frontend.min.css", ...).
func Bundles() []string {
	var out []string
	for _, b := range loginBundles {
		out = append(out, b.file())
	}
	return out
}

func findBundle(file string) (bundle, bool) {
	for _, b := range loginBundles {
		if b.file() == file {
			return b, true
		}
	}
	return bundle{}, false
}

// content is the compiled bundle; unique is its version segment (Odoo
// derives it from the checksum of the sources).
func (s *Server) content(b bundle) []byte {
	body := fmt.Sprintf("/* %s (odoosim %s) */\n", b.xmlid, s.ver.serie)
	if b.ext == "css" {
		body += "body{font-family:sans-serif}.o_login_form{max-width:300px}\n"
	} else {
		body += "odoo.define('" + b.xmlid + "',[],function(){return {};});\n"
	}
	return []byte(body)
}

func checksum(b []byte) string {
	h := sha1.Sum(b)
	return hex.EncodeToString(h[:])
}

func (s *Server) unique(b bundle) string { return checksum(s.content(b))[:7] }

func (s *Server) webHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/web/login", s.login)
	mux.HandleFunc("/web/assets/", s.asset)
	mux.HandleFunc("/web/health", health)
	mux.HandleFunc("/websocket/health", health)
	mux.HandleFunc("/web/webclient/version_info", s.versionInfo)
	mux.HandleFunc("/websocket", func(w http.ResponseWriter, r *http.Request) {
		// Prefork HTTP workers cannot serve websockets: Odoo raises
		// RuntimeError("Couldn't bind the websocket...") and answers 500.
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
	})
	mux.HandleFunc("/web", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/web/login?redirect=%2Fweb%3F", http.StatusSeeOther)
	})
	mux.HandleFunc("/__odoosim/fault", s.adminFault)
	mux.HandleFunc("/__odoosim/state", s.adminState)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		http.Redirect(w, r, "/web/login", http.StatusSeeOther)
	})
	return mux
}

func health(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write([]byte(`{"status": "pass"}`))
}

// ensureSession sets a session cookie unless the request has one.
func ensureSession(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie("session_id"); err == nil {
		return
	}
	var b [20]byte
	_, _ = rand.Read(b[:])
	http.SetCookie(w, &http.Cookie{Name: "session_id", Value: hex.EncodeToString(b[:]), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Expires: time.Now().Add(7 * 24 * time.Hour)})
}

var loginTmpl = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html lang="en-US">
    <head>
        <meta charset="utf-8"/>
        <meta http-equiv="X-UA-Compatible" content="IE=edge"/>
        <meta name="viewport" content="width=device-width, initial-scale=1, user-scalable=no"/>
        <title>Odoo</title>
        <link type="image/x-icon" rel="shortcut icon" href="/web/static/img/favicon.ico"/>
        <script id="web.layout.odooscript" type="text/javascript">
            var odoo = {
                csrf_token: "{{.CSRF}}",
                debug: "",
            };
        </script>
        <script type="text/javascript">
            odoo.__session_info__ = {{.SessionInfo}};
        </script>
{{range .Bundles}}{{if eq .Ext "css"}}        <link type="text/css" rel="stylesheet" href="{{.URL}}"{{if .Attr}} data-asset-bundle="{{.XMLID}}" data-asset-version="{{.Unique}}"{{end}}/>
{{else if .Lazy}}        <script type="text/javascript" data-src="{{.URL}}"{{if .Attr}} data-asset-bundle="{{.XMLID}}" data-asset-version="{{.Unique}}"{{end}} onerror="__odooAssetError=1"></script>
{{else}}        <script type="text/javascript" src="{{.URL}}"{{if .Attr}} data-asset-bundle="{{.XMLID}}" data-asset-version="{{.Unique}}"{{end}} onerror="__odooAssetError=1"></script>
{{end}}{{end}}    </head>
    <body class="bg-100">
        <div class="container py-5">
            <form class="oe_login_form" role="form" method="post" action="/web/login">
                <input type="hidden" name="csrf_token" value="{{.CSRF}}"/>
                <div class="mb-3 field-login">
                    <label for="login" class="form-label">Email</label>
                    <input type="text" placeholder="Email" name="login" id="login" required="required" autofocus="autofocus" autocapitalize="off" class="form-control "/>
                </div>
                <div class="mb-3">
                    <label for="password" class="form-label">Password</label>
                    <input type="password" placeholder="Password" name="password" id="password" required="required" autocomplete="current-password" maxlength="4096" class="form-control "/>
                </div>
                <div class="clearfix oe_login_buttons text-center gap-1 d-grid mb-1 pt-3">
                    <button type="submit" class="btn btn-primary">Log in</button>
                </div>
                <input type="hidden" name="redirect"/>
            </form>
            <div class="text-center small mt-4 pt-3 border-top">
                <a href="https://www.odoo.com?utm_source=db&amp;utm_medium=auth" target="_blank">Powered by <span>Odoo</span></a>
            </div>
        </div>
    </body>
</html>
`))

type bundleLink struct {
	URL, XMLID, Unique, Ext string
	Lazy, Attr              bool
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var links []bundleLink
	for _, b := range loginBundles {
		u := "/web/assets/" + s.unique(b) + "/" + b.file()
		if s.ver.idInAssetURL {
			// 15/16 build the attachment while rendering, to know its id.
			var err error
			if u, err = s.ensureAttachment(r.Context(), b); err != nil {
				s.logger.Error("building bundle", "bundle", b.file(), "err", err)
				http.Error(w, "Internal Server Error", http.StatusInternalServerError)
				return
			}
		}
		links = append(links, bundleLink{URL: u, XMLID: b.xmlid, Unique: s.unique(b), Ext: b.ext, Lazy: b.lazy, Attr: s.ver.idInAssetURL})
	}
	// Odoo writes the session info with Python's json.dumps: ", " and ": ".
	info := []struct {
		k string
		v any
	}{
		{"is_admin", false}, {"is_system", false}, {"is_website_user", false}, {"user_id", false},
		{"is_frontend", true}, {"profile_session", nil}, {"profile_collectors", nil}, {"profile_params", nil},
		{"show_effect", true}, {"bundle_params", json.RawMessage(`{"lang": "en_US"}`)},
	}
	if s.ver.wsVersion != "" {
		info = append(info, struct {
			k string
			v any
		}{"websocket_worker_version", s.ver.wsVersion})
	}
	var parts []string
	for _, kv := range info {
		v, _ := json.Marshal(kv.v)
		parts = append(parts, fmt.Sprintf("%q: %s", kv.k, v))
	}
	infoJSON := "{" + strings.Join(parts, ", ") + "}"
	var csrf [20]byte
	_, _ = rand.Read(csrf[:])
	ensureSession(w, r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = loginTmpl.Execute(w, map[string]any{
		"CSRF":        hex.EncodeToString(csrf[:]) + "o1700000000",
		"SessionInfo": template.JS(infoJSON),
		"Bundles":     links,
	})
}

func (s *Server) versionInfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	var req struct {
		ID any `json:"id"`
	}
	_ = json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"jsonrpc": "2.0",
		"id":      req.ID,
		"result": map[string]any{
			"server_version":      s.ver.serie,
			"server_version_info": s.ver.info,
			"server_serie":        s.ver.serie,
			"protocol_version":    1,
		},
	})
}

// storePath is where a file of the given checksum lives in the filestore
// (Odoo's layout: <filestore>/<db>/<sha[:2]>/<sha>).
func (s *Server) storePath(storeFname string) string {
	return filepath.Join(s.cfg.FilestoreDir, s.db, filepath.FromSlash(storeFname))
}

// ensureAttachment returns the URL of b's attachment, building it (file +
// ir_attachment row) when there is none, as Odoo regenerates a deleted
// bundle.
func (s *Server) ensureAttachment(ctx context.Context, b bundle) (string, error) {
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	unique := s.unique(b)
	var url string
	pattern := "/web/assets/%/" + b.file()
	err := s.pool.QueryRow(ctx, `SELECT url FROM ir_attachment
		WHERE res_model = 'ir.ui.view' AND url LIKE $1 AND name = $2 ORDER BY id DESC LIMIT 1`,
		pattern, b.file()).Scan(&url)
	if err == nil && strings.Contains(url, unique) {
		return url, nil
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", err
	}
	return s.build(ctx, b)
}

// build writes b's file into the filestore and inserts its attachment row.
// The caller holds buildMu.
func (s *Server) build(ctx context.Context, b bundle) (string, error) {
	data := s.content(b)
	sum := checksum(data)
	fname := sum[:2] + "/" + sum
	p := s.storePath(fname)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return "", err
	}
	mimetype := "text/css"
	if b.ext == "js" {
		mimetype = "application/javascript"
	}
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO ir_attachment
		(name, res_model, res_id, type, url, public, store_fname, file_size, checksum, mimetype)
		VALUES ($1, 'ir.ui.view', 0, 'binary', '', true, $2, $3, $4, $5) RETURNING id`,
		b.file(), fname, len(data), sum, mimetype).Scan(&id)
	if err != nil {
		return "", err
	}
	url := "/web/assets/" + s.unique(b) + "/" + b.file()
	if s.ver.idInAssetURL {
		url = fmt.Sprintf("/web/assets/%d-%s/%s", id, s.unique(b), b.file())
	}
	if _, err := s.pool.Exec(ctx, "UPDATE ir_attachment SET url = $1 WHERE id = $2", url, id); err != nil {
		return "", err
	}
	return url, nil
}

// asset serves /web/assets/[<website_id>/]<unique>/<file> (17+) or
// /web/assets/<id>-<unique>/<file> (16) from ir_attachment and the
// filestore.
func (s *Server) asset(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	file := path.Base(r.URL.Path)
	b, known := findBundle(file)
	var storeFname, mimetype string
	err := s.pool.QueryRow(ctx, `SELECT store_fname, COALESCE(mimetype, '') FROM ir_attachment
		WHERE url = $1 AND res_model = 'ir.ui.view' ORDER BY id DESC LIMIT 1`, r.URL.Path).Scan(&storeFname, &mimetype)
	switch {
	case err == nil:
		data, err := os.ReadFile(s.storePath(storeFname))
		if errors.Is(err, fs.ErrNotExist) {
			s.logger.Warn("bundle file missing", "url", r.URL.Path, "store_fname", storeFname)
			if s.ver.missingFile500 {
				http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			} else {
				w.Header().Set("Content-Type", mimetype)
				w.WriteHeader(http.StatusOK)
			}
			return
		}
		if err != nil {
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", mimetype)
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		_, _ = w.Write(data)
		return
	case !errors.Is(err, pgx.ErrNoRows):
		s.logger.Error("reading ir_attachment", "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	case !known:
		http.NotFound(w, r)
		return
	}
	// No attachment for this URL: a current URL is built on the fly
	// (Odoo regenerates deleted bundles); a stale one is redirected.
	want := "/" + s.unique(b) + "/"
	if !s.ver.idInAssetURL && strings.Contains(r.URL.Path, want) {
		s.buildMu.Lock()
		_, err := s.build(ctx, b)
		s.buildMu.Unlock()
		if err != nil {
			s.logger.Error("building bundle", "bundle", file, "err", err)
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		s.asset(w, r)
		return
	}
	url, err := s.ensureAttachment(ctx, b)
	if err != nil {
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	if url == r.URL.Path {
		s.asset(w, r)
		return
	}
	http.Redirect(w, r, url, http.StatusSeeOther)
}

// BreakBundle deletes the filestore file of the bundle named file
// ("web.assets_frontend.min.css"), building the bundle first if needed, so
// that it answers 500 (17+) or an empty 200 (16) until its attachment rows
// are deleted.
func (s *Server) BreakBundle(ctx context.Context, file string) error {
	b, ok := findBundle(file)
	if !ok {
		return fmt.Errorf("odoosim: unknown bundle %q (have %s)", file, strings.Join(Bundles(), ", "))
	}
	if _, err := s.ensureAttachment(ctx, b); err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, `SELECT store_fname FROM ir_attachment
		WHERE res_model = 'ir.ui.view' AND name = $1 AND url LIKE '/web/assets/%'`, file)
	if err != nil {
		return err
	}
	fnames, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, f := range fnames {
		if err := os.Remove(s.storePath(f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// adminFault is POST /__odoosim/fault?fault=<name>[&delay=2s][&duration=5s][&bundle=<file>][&starts=N].
// cron_failure logs a failed cron run; boot_error logs a boot error, exits
// and fails the next N starts the same way.
func (s *Server) adminFault(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	dur := func(name string, def time.Duration) (time.Duration, error) {
		v := r.Form.Get(name)
		if v == "" {
			return def, nil
		}
		return time.ParseDuration(v)
	}
	switch f := r.Form.Get("fault"); f {
	case "clear":
		s.ClearFault()
	case string(FaultStall), string(FaultDispatcherDead):
		s.SetFault(Fault(f), 0)
	case string(FaultStallSlow):
		d, err := dur("delay", 2*time.Second)
		if err != nil {
			http.Error(w, "delay: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.SetFault(FaultStallSlow, d)
	case "broken_bundle":
		if err := s.BreakBundle(r.Context(), r.Form.Get("bundle")); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	case "cron_failure":
		s.LogCronRun(false)
	case "boot_error":
		more, err := strconv.Atoi(r.Form.Get("starts"))
		if r.Form.Get("starts") == "" {
			more, err = 0, nil
		}
		if err != nil || more < 0 {
			http.Error(w, "starts: a count of failing starts to come", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("boot error, exiting\n"))
		go func() {
			time.Sleep(50 * time.Millisecond) // let the answer leave
			if err := s.SetBootError(more); err != nil {
				s.logger.Error("boot error", "err", err)
			}
		}()
		return
	case "down":
		d, err := dur("duration", 5*time.Second)
		if err != nil {
			http.Error(w, "duration: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("down for " + d.String() + "\n"))
		go func() {
			time.Sleep(50 * time.Millisecond) // let the answer leave
			s.Stop()
			time.Sleep(d)
			if err := s.Restart(); err != nil {
				s.logger.Error("restart after down", "err", err)
			}
		}()
		return
	default:
		http.Error(w, "fault must be one of stall, stall_slow, dispatcher_dead, broken_bundle, cron_failure, boot_error, down, clear", http.StatusBadRequest)
		return
	}
	s.adminState(w, r)
}

func (s *Server) adminState(w http.ResponseWriter, r *http.Request) {
	f, d := s.Fault()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"fault": string(f), "delay": d.String(), "version": s.ver.serie, "database": s.db,
		"web_url": s.WebURL(), "gevent_url": s.GeventURL(), "bundles": Bundles(),
	})
}
