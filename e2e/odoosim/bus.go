package odoosim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
)

func (s *Server) geventHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/websocket", s.websocket)
	mux.HandleFunc("/websocket/health", health)
	mux.HandleFunc("/web/health", health)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.gate(r.Context()) {
			return // stalled until the client gave up
		}
		mux.ServeHTTP(w, r)
	})
}

// browserRE approximates Odoo's vendored user-agent parser: the version
// rule applies only when it recognises a browser.
var browserRE = regexp.MustCompile(`(?i)(mozilla|chrome|firefox|safari|opera|msie|edge|webkit)`)

// wsClient is one open websocket.
type wsClient struct {
	c        *websocket.Conn
	mu       sync.Mutex
	channels map[string]bool // compact JSON ["<db>","<channel>"]
	last     int64
	lastSet  bool
	wake     chan struct{}
}

func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	if s.ver.originRequired && r.Header.Get("Origin") == "" {
		// werkzeug BadRequest from _assert_handshake_validity.
		http.Error(w, "Bad Request: Empty or missing header(s): origin", http.StatusBadRequest)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	c.SetReadLimit(1 << 20)
	cl := &wsClient{c: c, channels: map[string]bool{}, wake: make(chan struct{}, 1)}
	if s.ver.wsVersion != "" && browserRE.MatchString(r.Header.Get("User-Agent")) &&
		r.URL.Query().Get("version") != s.ver.wsVersion {
		_ = c.Close(websocket.StatusNormalClosure, "OUTDATED_VERSION")
		return
	}
	s.clientsMu.Lock()
	s.clients[cl] = struct{}{}
	s.clientsMu.Unlock()
	ctx, cancel := context.WithCancel(s.ctx)
	defer func() {
		cancel()
		s.clientsMu.Lock()
		delete(s.clients, cl)
		s.clientsMu.Unlock()
		_ = c.CloseNow()
	}()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-cl.wake:
				if !s.gate(ctx) {
					return
				}
				if err := s.deliver(ctx, cl); err != nil {
					s.logger.Debug("delivery failed", "err", err)
				}
			}
		}
	}()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		var ev struct {
			EventName string `json:"event_name"`
			Data      struct {
				Channels []any `json:"channels"`
				Last     int64 `json:"last"`
			} `json:"data"`
		}
		if err := json.Unmarshal(data, &ev); err != nil || ev.EventName == "" {
			// Odoo logs the InvalidWebsocketRequest and goes on.
			s.logger.Debug("invalid websocket message", "err", err)
			continue
		}
		if ev.EventName != "subscribe" {
			continue
		}
		channels := map[string]bool{}
		for _, ch := range ev.Data.Channels {
			name, ok := ch.(string)
			if !ok {
				continue // Odoo accepts only string channels from the client
			}
			key, _ := json.Marshal([]string{s.db, name})
			channels[string(key)] = true
		}
		cl.mu.Lock()
		cl.channels = channels
		if !cl.lastSet { // Odoo takes the client's last only once
			cl.last, cl.lastSet = ev.Data.Last, true
		}
		cl.mu.Unlock()
		// Odoo dispatches past notifications right after subscribing,
		// before it reads the next frame.
		if err := s.deliver(ctx, cl); err != nil {
			s.logger.Debug("delivery failed", "err", err)
		}
	}
}

// deliver sends cl the bus_bus rows of its channels newer than its last.
func (s *Server) deliver(ctx context.Context, cl *wsClient) error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if len(cl.channels) == 0 {
		return nil
	}
	chans := make([]string, 0, len(cl.channels))
	for ch := range cl.channels {
		chans = append(chans, ch)
	}
	rows, err := s.pool.Query(ctx, `SELECT id, message FROM bus_bus
		WHERE id > $1 AND channel = ANY($2) ORDER BY id`, cl.last, chans)
	if err != nil {
		return fmt.Errorf("polling bus_bus: %w", err)
	}
	type notif struct {
		ID      int64           `json:"id"`
		Message json.RawMessage `json:"message"`
	}
	var out []notif
	for rows.Next() {
		var id int64
		var msg string
		if err := rows.Scan(&id, &msg); err != nil {
			rows.Close()
			return err
		}
		raw := json.RawMessage(msg)
		if !json.Valid(raw) {
			raw, _ = json.Marshal(msg)
		}
		out = append(out, notif{ID: id, Message: raw})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(out) == 0 {
		return nil
	}
	cl.last = out[len(out)-1].ID
	data, _ := json.Marshal(out)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return cl.c.Write(wctx, websocket.MessageText, data)
}

// dispatch is the bus dispatcher: it LISTENs on imbus in the notify
// database and wakes the websockets subscribed to the notified channels.
// ready receives the result of the first LISTEN.
func (s *Server) dispatch(cfg *pgx.ConnConfig, ready chan<- error) {
	first := true
	for s.ctx.Err() == nil {
		err := s.listenLoop(cfg, func() {
			if first {
				first = false
				ready <- nil
			}
		})
		if first {
			ready <- fmt.Errorf("odoosim: LISTEN imbus in %s: %w", cfg.Database, err)
			return
		}
		if s.ctx.Err() == nil {
			s.logger.Warn("dispatcher lost its connection, retrying", "err", err)
			select {
			case <-s.ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

func (s *Server) listenLoop(cfg *pgx.ConnConfig, listening func()) error {
	ctx := s.ctx
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN imbus"); err != nil {
		return err
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if f, _ := s.Fault(); f == FaultDispatcherDead {
			continue
		}
		// 16-18: the payload is the JSON list of channels, each
		// ["<db>","<channel>"] (or a bare string for global channels).
		var channels []json.RawMessage
		if err := json.Unmarshal([]byte(n.Payload), &channels); err != nil {
			s.logger.Warn("bad imbus payload", "payload", n.Payload)
			continue
		}
		keys := map[string]bool{}
		for _, ch := range channels {
			var v any
			if json.Unmarshal(ch, &v) == nil {
				compact, _ := json.Marshal(v)
				keys[string(compact)] = true
			}
		}
		s.clientsMu.Lock()
		for cl := range s.clients {
			cl.mu.Lock()
			hit := false
			for k := range keys {
				if cl.channels[k] {
					hit = true
					break
				}
			}
			cl.mu.Unlock()
			if hit {
				select {
				case cl.wake <- struct{}{}:
				default: // a dispatch is already planned
				}
			}
		}
		s.clientsMu.Unlock()
	}
}
