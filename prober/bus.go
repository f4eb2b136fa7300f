package prober

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
)

// DefaultUserAgent is sent on the websocket handshake. Odoo checks the
// websocket worker version only for browsers (its user-agent parser finds
// a browser), so a non-browser agent is never closed as OUTDATED_VERSION.
const DefaultUserAgent = "odoo_exporter-prober"

// BusOptions say how to reach Odoo's bus websocket.
type BusOptions struct {
	// GeventURL is the base URL of the gevent port (http://host:8072) or of
	// a proxy that routes /websocket to it.
	GeventURL string
	// Version is the websocket_worker_version to send ("17.0-1"); empty
	// sends none (Odoo 16).
	Version string
	// Origin is sent as the Origin header, which Odoo 17+ requires.
	Origin string
	// UserAgent defaults to DefaultUserAgent.
	UserAgent string
	// Client carries the cookie jar holding the session cookie; it must
	// have no Timeout (the context bounds the handshake).
	Client *http.Client
}

// WebsocketURL returns the ws:// URL of the /websocket route under base.
func WebsocketURL(base, version string) (string, error) {
	u, err := url.Parse(strings.TrimRight(base, "/") + "/websocket")
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	if version != "" {
		u.RawQuery = url.Values{"version": {version}}.Encode()
	}
	return u.String(), nil
}

// Notification is one bus message as the websocket delivers it.
type Notification struct {
	ID      int64           `json:"id"`
	Message json.RawMessage `json:"message"`
}

// BusConn is an open bus websocket with a reader running, so that pings
// are answered and notifications are queued.
type BusConn struct {
	c     *websocket.Conn
	msgs  chan []Notification
	done  chan struct{}
	errMu sync.Mutex
	err   error
}

// DialBus opens the bus websocket.
func DialBus(ctx context.Context, o BusOptions) (*BusConn, error) {
	u, err := WebsocketURL(o.GeventURL, o.Version)
	if err != nil {
		return nil, &Error{Reason: ReasonUnavailable, Err: err}
	}
	ua := o.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	h := http.Header{"User-Agent": {ua}}
	if o.Origin != "" {
		h.Set("Origin", o.Origin)
	}
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: o.Client, HTTPHeader: h})
	if err != nil {
		if resp != nil {
			return nil, fail(ReasonHandshake, fmt.Errorf("websocket handshake: status %d: %w", resp.StatusCode, err))
		}
		return nil, fail(ReasonConnect, fmt.Errorf("websocket dial: %w", err))
	}
	c.SetReadLimit(1 << 20)
	b := &BusConn{c: c, msgs: make(chan []Notification, 16), done: make(chan struct{})}
	go b.read()
	return b, nil
}

func (b *BusConn) read() {
	defer close(b.done)
	for {
		_, data, err := b.c.Read(context.Background())
		if err != nil {
			b.errMu.Lock()
			b.err = err
			b.errMu.Unlock()
			return
		}
		var ns []Notification
		if json.Unmarshal(data, &ns) != nil {
			continue // not a notification batch; Odoo sends nothing else unasked
		}
		select {
		case b.msgs <- ns:
		default: // nobody waits: drop
		}
	}
}

// closedError describes why the reader stopped.
func (b *BusConn) closedError() error {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	if code := websocket.CloseStatus(b.err); code != -1 {
		var ce websocket.CloseError
		errors.As(b.err, &ce)
		return &Error{Reason: ReasonClosed, Err: fmt.Errorf("server closed the websocket: %d %s", code, ce.Reason)}
	}
	return fail(ReasonClosed, fmt.Errorf("websocket read: %w", b.err))
}

// Subscribe sends the subscribe event for channels, with last the id of
// the last notification already seen.
func (b *BusConn) Subscribe(ctx context.Context, channels []string, last int64) error {
	msg, _ := json.Marshal(map[string]any{
		"event_name": "subscribe",
		"data":       map[string]any{"channels": channels, "last": last},
	})
	if err := b.c.Write(ctx, websocket.MessageText, msg); err != nil {
		return b.opError(ctx, "subscribe", err)
	}
	return nil
}

// Ping sends a ping frame and waits for the pong; Odoo answers it from the
// same loop that handles subscribe, so a pong also means the subscription
// was processed.
func (b *BusConn) Ping(ctx context.Context) error {
	if err := b.c.Ping(ctx); err != nil {
		return b.opError(ctx, "ping", err)
	}
	return nil
}

func (b *BusConn) opError(ctx context.Context, op string, err error) error {
	select {
	case <-b.done:
		return b.closedError()
	default:
	}
	if ctx.Err() != nil {
		return &Error{Reason: ReasonTimeout, Err: fmt.Errorf("%s: %w", op, ctx.Err())}
	}
	return fail(ReasonConnect, fmt.Errorf("%s: %w", op, err))
}

// Wait returns the first notification match accepts. When ctx ends first
// the error's reason is no_delivery.
func (b *BusConn) Wait(ctx context.Context, match func(Notification) bool) (Notification, error) {
	for {
		select {
		case ns := <-b.msgs:
			for _, n := range ns {
				if match(n) {
					return n, nil
				}
			}
		case <-b.done:
			return Notification{}, b.closedError()
		case <-ctx.Done():
			return Notification{}, &Error{Reason: ReasonNoDelivery, Err: fmt.Errorf("waiting for the probe message: %w", ctx.Err())}
		}
	}
}

// Close closes the websocket (normal closure, without waiting long).
func (b *BusConn) Close() {
	_ = b.c.CloseNow()
	<-b.done
}

// RandomChannel returns a fresh channel name, so that probes never see
// each other's messages.
func RandomChannel() string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return "odoo_exporter_probe_" + hex.EncodeToString(r[:])
}

// Websocket connects to the bus, subscribes to a random channel and pings;
// it returns the time the three took.
func Websocket(ctx context.Context, o BusOptions) (time.Duration, error) {
	begin := time.Now()
	b, err := DialBus(ctx, o)
	if err != nil {
		return time.Since(begin), err
	}
	defer b.Close()
	if err := b.Subscribe(ctx, []string{RandomChannel()}, 0); err != nil {
		return time.Since(begin), err
	}
	if err := b.Ping(ctx); err != nil {
		return time.Since(begin), err
	}
	return time.Since(begin), nil
}

// RoundTrip subscribes to a random channel, publishes a message on it the
// way Odoo does (a bus_bus row, then NOTIFY imbus in the notify database)
// and waits until the websocket delivers it. It returns the time from the
// NOTIFY to the delivery. Only this probe sees a dead bus dispatcher.
func RoundTrip(ctx context.Context, o BusOptions, p *Publisher) (time.Duration, error) {
	last, err := p.LastID(ctx)
	if err != nil {
		return 0, err
	}
	b, err := DialBus(ctx, o)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	channel := RandomChannel()
	if err := b.Subscribe(ctx, []string{channel}, last); err != nil {
		return 0, err
	}
	// The pong comes after the subscription (and its first poll of past
	// messages) was handled: what arrives from now on came through NOTIFY.
	if err := b.Ping(ctx); err != nil {
		return 0, err
	}
	id, sent, err := p.Publish(ctx, channel)
	if id > 0 {
		defer p.Delete(id)
	}
	if err != nil {
		return 0, err
	}
	if _, err := b.Wait(ctx, func(n Notification) bool { return n.ID == id }); err != nil {
		return time.Since(sent), err
	}
	return time.Since(sent), nil
}

// Publisher writes probe messages into an Odoo database's bus, with its
// own connections (it needs INSERT and DELETE on bus_bus, which the
// exporter's read-only source never has).
type Publisher struct {
	odooCfg, notifyCfg *pgx.ConnConfig
	mu                 sync.Mutex
	odoo, notify       *pgx.Conn
}

// NewPublisher parses dsn (a connection to the Odoo database) and derives
// the connection to notifyDB, the database Odoo's dispatcher LISTENs on
// ("postgres", Odoo's db_system).
func NewPublisher(dsn, notifyDB string) (*Publisher, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("prober: cannot parse the round-trip DSN (not shown: it may hold a password)")
	}
	if cfg.Database == "" {
		return nil, errors.New("prober: the round-trip DSN names no database")
	}
	if notifyDB == "" {
		notifyDB = "postgres"
	}
	cfg.RuntimeParams["application_name"] = "odoo_exporter_prober"
	ncfg := cfg.Copy()
	ncfg.Database = notifyDB
	return &Publisher{odooCfg: cfg, notifyCfg: ncfg}, nil
}

// Database is the Odoo database the messages go to.
func (p *Publisher) Database() string { return p.odooCfg.Database }

func (p *Publisher) conns(ctx context.Context) (*pgx.Conn, *pgx.Conn, error) {
	var err error
	if p.odoo == nil || p.odoo.IsClosed() {
		if p.odoo, err = pgx.ConnectConfig(ctx, p.odooCfg); err != nil {
			p.odoo = nil
			return nil, nil, fail(ReasonPublish, fmt.Errorf("connecting to %s: %w", p.odooCfg.Database, err))
		}
	}
	if p.notify == nil || p.notify.IsClosed() {
		if p.notify, err = pgx.ConnectConfig(ctx, p.notifyCfg); err != nil {
			p.notify = nil
			return nil, nil, fail(ReasonPublish, fmt.Errorf("connecting to %s: %w", p.notifyCfg.Database, err))
		}
	}
	return p.odoo, p.notify, nil
}

func (p *Publisher) reset() {
	if p.odoo != nil {
		p.odoo.Close(context.Background())
		p.odoo = nil
	}
	if p.notify != nil {
		p.notify.Close(context.Background())
		p.notify = nil
	}
}

// LastID returns the highest bus_bus id.
func (p *Publisher) LastID(ctx context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	odoo, _, err := p.conns(ctx)
	if err != nil {
		return 0, err
	}
	var id int64
	if err := odoo.QueryRow(ctx, "SELECT COALESCE(max(id), 0) FROM bus_bus").Scan(&id); err != nil {
		p.reset()
		return 0, fail(ReasonPublish, fmt.Errorf("reading bus_bus: %w", err))
	}
	return id, nil
}

// Publish inserts a probe message for channel and wakes the dispatcher
// with pg_notify('imbus', '[["<db>","<channel>"]]') in the notify
// database, as Odoo 16-18 do. It returns the row id and when the NOTIFY
// was sent.
func (p *Publisher) Publish(ctx context.Context, channel string) (int64, time.Time, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	odoo, notify, err := p.conns(ctx)
	if err != nil {
		return 0, time.Time{}, err
	}
	ch, _ := json.Marshal([]string{p.odooCfg.Database, channel})
	msg, _ := json.Marshal(map[string]any{"type": "odoo_exporter/probe", "payload": map[string]any{"sent": time.Now().UnixMilli()}})
	var id int64
	err = odoo.QueryRow(ctx, `INSERT INTO bus_bus (channel, message, create_date, write_date)
		VALUES ($1, $2, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC') RETURNING id`, string(ch), string(msg)).Scan(&id)
	if err != nil {
		p.reset()
		return 0, time.Time{}, fail(ReasonPublish, fmt.Errorf("inserting into bus_bus: %w", err))
	}
	payload := "[" + string(ch) + "]"
	sent := time.Now()
	if _, err := notify.Exec(ctx, "SELECT pg_notify('imbus', $1)", payload); err != nil {
		p.reset()
		return id, sent, fail(ReasonPublish, fmt.Errorf("notifying imbus: %w", err))
	}
	return id, sent, nil
}

// Delete removes a probe message (Odoo's autovacuum would after ~100 s).
func (p *Publisher) Delete(id int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.odoo == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := p.odoo.Exec(ctx, "DELETE FROM bus_bus WHERE id = $1", id); err != nil {
		p.reset()
	}
}

// Close closes the connections.
func (p *Publisher) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reset()
}
