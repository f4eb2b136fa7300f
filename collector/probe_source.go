package collector

import (
	"log/slog"
	"sync"
	"time"

	"github.com/odoo-exporter/odoo_exporter/prober"
)

// probeSource follows whether the source of a probe collector (Odoo's web
// port, its public URL, its gevent port) answers. A source that is down is
// the probe's finding, not the collector's failure: the collectors report
// it as a metric (odoo_http_up, odoo_asset_page_up, odoo_longpoll_up),
// keep odoo_exporter_collector_success at 1, and log through probeSource
// one line when the state changes (down, back up) instead of an error per
// scrape. The http, assets and longpoll collectors share it.
type probeSource struct {
	logger    *slog.Logger
	collector string // e.g. "assets"
	target    string // e.g. "login page"
	url       string // redacted

	mu    sync.Mutex
	state int8 // 0 unknown, 1 up, -1 down
	since time.Time
}

func newProbeSource(logger *slog.Logger, collector, target, rawURL string) *probeSource {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &probeSource{logger: logger, collector: collector, target: target, url: prober.Redact(rawURL)}
}

// observe records the outcome of one probe of the source (err nil: it
// answered) and returns the value of its up gauge. It logs a warning when
// the source goes down (or is down at the first probe) and a line when it
// is back; repeated outcomes log nothing.
func (s *probeSource) observe(err error) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	attrs := []any{"collector", s.collector, "target", s.target, "url", s.url}
	switch {
	case err != nil && s.state != -1:
		s.logger.Warn("probe source is down (reported as a metric until it answers again)",
			append(attrs, "reason", prober.Reason(err), "err", err)...)
		s.state, s.since = -1, now
	case err == nil && s.state == -1:
		s.logger.Info("probe source is back up", append(attrs, "down_for", now.Sub(s.since).Round(time.Millisecond).String())...)
		s.state, s.since = 1, now
	case err == nil && s.state == 0:
		s.logger.Debug("probe source is up", attrs...)
		s.state, s.since = 1, now
	}
	if err != nil {
		return 0
	}
	return 1
}
