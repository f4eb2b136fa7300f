// Package odoosim is a stand-in for Odoo's HTTP surface, for tests: the
// web port (/web/login with its asset bundles, /web/assets/..., health and
// version_info routes) and the gevent port (/websocket with Odoo's Origin
// and version rules, subscribe, and delivery of bus_bus rows when imbus is
// NOTIFYed in the postgres database), backed by a real PostgreSQL database
// shaped like Odoo's (see internal/pgtest) and a filestore directory.
//
// It follows Odoo 17 by default; Config.Version selects the 16.0 or 18.0
// differences. Faults can be set in-process (SetFault, BreakBundle, Stop)
// or from outside through the admin endpoint POST /__odoosim/fault on the
// web port (see docs/probes.md).
package odoosim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Fault is a failure the stand-in can be told to show.
type Fault string

// Faults. Stall and StallSlow affect the gevent port only; DispatcherDead
// keeps the websocket up but delivers nothing on NOTIFY.
const (
	FaultNone           Fault = ""
	FaultStall          Fault = "stall"           // gevent port answers nothing
	FaultStallSlow      Fault = "stall_slow"      // gevent port answers and delivers after a delay
	FaultDispatcherDead Fault = "dispatcher_dead" // NOTIFY imbus is ignored
)

// Config configures a stand-in.
type Config struct {
	// DSN connects to the Odoo database (its name is the database name the
	// stand-in serves).
	DSN string
	// NotifyDSN connects to the database the dispatcher LISTENs on; empty
	// means DSN with the database "postgres", as Odoo does.
	NotifyDSN string
	// Version is "16.0", "17.0" (default) or "18.0".
	Version string
	// WebAddr and GeventAddr are the listen addresses; default
	// 127.0.0.1:0 (a free port).
	WebAddr, GeventAddr string
	// FilestoreDir is the filestore root; bundles live under
	// <FilestoreDir>/<database>/. Empty makes a temporary directory.
	FilestoreDir string
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
	// Log, when set, receives the records Odoo would write (start, cron
	// runs, boot errors) in Odoo's format.
	Log *OdooLog
	// CronInterval, above 0, logs a successful run of a cron job that
	// often.
	CronInterval time.Duration
}

// Server is a running stand-in.
type Server struct {
	cfg    Config
	db     string
	ver    version
	pool   *pgxpool.Pool
	logger *slog.Logger
	tmpDir string

	faultMu  sync.Mutex
	fault    Fault
	delay    time.Duration
	faultChg chan struct{} // closed and replaced on every fault change

	buildMu sync.Mutex // one bundle build at a time

	clientsMu sync.Mutex
	clients   map[*wsClient]struct{}

	runMu             sync.Mutex
	webAddr, gevAddr  string
	webSrv, geventSrv *http.Server
	running           bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	exited   chan struct{} // closed when the process must exit (boot error)
	exitOnce sync.Once
}

// Start connects to the database, starts the dispatcher and listens on
// both ports.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Version == "" {
		cfg.Version = "17.0"
	}
	ver, ok := versions[cfg.Version]
	if !ok {
		return nil, fmt.Errorf("odoosim: unsupported version %q (16.0, 17.0, 18.0)", cfg.Version)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.WebAddr == "" {
		cfg.WebAddr = "127.0.0.1:0"
	}
	if cfg.GeventAddr == "" {
		cfg.GeventAddr = "127.0.0.1:0"
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, errors.New("odoosim: cannot parse the DSN")
	}
	if pcfg.ConnConfig.Database == "" {
		return nil, errors.New("odoosim: the DSN names no database")
	}
	pcfg.MaxConns = 8
	s := &Server{
		cfg:      cfg,
		db:       pcfg.ConnConfig.Database,
		ver:      ver,
		logger:   cfg.Logger,
		faultChg: make(chan struct{}),
		clients:  map[*wsClient]struct{}{},
		webAddr:  cfg.WebAddr,
		gevAddr:  cfg.GeventAddr,
		exited:   make(chan struct{}),
	}
	if s.cfg.FilestoreDir == "" {
		if s.tmpDir, err = os.MkdirTemp("", "odoosim-filestore-"); err != nil {
			return nil, err
		}
		s.cfg.FilestoreDir = s.tmpDir
	}
	if err := s.checkBootMarker(); err != nil {
		return nil, err
	}
	if s.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return nil, fmt.Errorf("odoosim: connecting to %s: %w", s.db, err)
	}
	if err := s.pool.Ping(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("odoosim: connecting to %s: %w", s.db, err)
	}
	notifyCfg, err := s.notifyConfig()
	if err != nil {
		s.pool.Close()
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ready := make(chan error, 1)
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.dispatch(notifyCfg, ready) }()
	select {
	case err := <-ready:
		if err != nil {
			s.cancel()
			s.wg.Wait()
			s.pool.Close()
			return nil, err
		}
	case <-ctx.Done():
		s.cancel()
		s.wg.Wait()
		s.pool.Close()
		return nil, ctx.Err()
	}
	if err := s.listen(); err != nil {
		s.Close()
		return nil, err
	}
	s.logStart()
	if cfg.CronInterval > 0 {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.cronLoop(cfg.CronInterval) }()
	}
	return s, nil
}

func (s *Server) notifyConfig() (*pgx.ConnConfig, error) {
	if s.cfg.NotifyDSN != "" {
		c, err := pgx.ParseConfig(s.cfg.NotifyDSN)
		if err != nil {
			return nil, errors.New("odoosim: cannot parse the notify DSN")
		}
		return c, nil
	}
	c, err := pgx.ParseConfig(s.cfg.DSN)
	if err != nil {
		return nil, errors.New("odoosim: cannot parse the DSN")
	}
	c.Database = "postgres"
	return c, nil
}

// listen opens both ports and serves them.
func (s *Server) listen() error {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.running {
		return nil
	}
	wl, err := net.Listen("tcp", s.webAddr)
	if err != nil {
		return fmt.Errorf("odoosim: web port: %w", err)
	}
	gl, err := net.Listen("tcp", s.gevAddr)
	if err != nil {
		wl.Close()
		return fmt.Errorf("odoosim: gevent port: %w", err)
	}
	// Keep the ports across Stop/Restart.
	s.webAddr, s.gevAddr = wl.Addr().String(), gl.Addr().String()
	s.webSrv = &http.Server{Handler: s.accessLog(s.webHandler()), ReadHeaderTimeout: 10 * time.Second}
	s.geventSrv = &http.Server{Handler: s.geventHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.webSrv.Serve(wl) }()
	go func() { _ = s.geventSrv.Serve(gl) }()
	s.running = true
	return nil
}

// WebURL is the base URL of the web port (http://127.0.0.1:port).
func (s *Server) WebURL() string { return "http://" + s.addr(true) }

// GeventURL is the base URL of the gevent port.
func (s *Server) GeventURL() string { return "http://" + s.addr(false) }

func (s *Server) addr(web bool) string {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if web {
		return s.webAddr
	}
	return s.gevAddr
}

// Database is the name of the Odoo database served.
func (s *Server) Database() string { return s.db }

// Version is the Odoo series served ("17.0").
func (s *Server) Version() string { return s.cfg.Version }

// FilestoreDir is the filestore root.
func (s *Server) FilestoreDir() string { return s.cfg.FilestoreDir }

// SetFault sets the current fault; delay is the answer delay of
// FaultStallSlow (default 2 s).
func (s *Server) SetFault(f Fault, delay time.Duration) {
	if f == FaultStallSlow && delay <= 0 {
		delay = 2 * time.Second
	}
	s.faultMu.Lock()
	s.fault, s.delay = f, delay
	close(s.faultChg)
	s.faultChg = make(chan struct{})
	s.faultMu.Unlock()
}

// ClearFault clears stall and dispatcher faults.
func (s *Server) ClearFault() { s.SetFault(FaultNone, 0) }

// Fault returns the current fault and delay.
func (s *Server) Fault() (Fault, time.Duration) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.fault, s.delay
}

// gate applies the stall faults: it returns when the request may go on,
// or false when ctx ended first.
func (s *Server) gate(ctx context.Context) bool {
	for {
		s.faultMu.Lock()
		f, d, chg := s.fault, s.delay, s.faultChg
		s.faultMu.Unlock()
		switch f {
		case FaultStall:
			select {
			case <-chg:
				continue
			case <-ctx.Done():
				return false
			case <-s.ctx.Done():
				return false
			}
		case FaultStallSlow:
			t := time.NewTimer(d)
			select {
			case <-t.C:
				return true
			case <-ctx.Done():
				t.Stop()
				return false
			case <-s.ctx.Done():
				t.Stop()
				return false
			}
		default:
			return true
		}
	}
}

// Stop stops listening on both ports and drops every open websocket, as a
// stopped Odoo does ("down"). Restart listens again on the same ports.
func (s *Server) Stop() {
	s.runMu.Lock()
	if s.running {
		_ = s.webSrv.Close()
		_ = s.geventSrv.Close()
		s.running = false
	}
	s.runMu.Unlock()
	s.clientsMu.Lock()
	for c := range s.clients {
		_ = c.c.CloseNow() // hijacked connections outlive http.Server.Close
	}
	s.clientsMu.Unlock()
}

// Restart listens again after Stop, on the same ports; like restarting
// Odoo it clears stall and dispatcher faults.
func (s *Server) Restart() error {
	s.ClearFault()
	var err error
	for i := 0; i < 50; i++ { // the port may linger briefly
		if err = s.listen(); err == nil || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Close stops everything and removes a temporary filestore.
func (s *Server) Close() {
	s.Stop()
	s.cancel()
	s.wg.Wait()
	s.pool.Close()
	if s.tmpDir != "" {
		os.RemoveAll(s.tmpDir)
	}
}
