package collector

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/prober"
)

var (
	assetsBaseURL = kingpin.Flag("collector.assets.url",
		"Base URL whose login page and bundles are probed (default: --odoo.web-url, else --odoo.public-url).").
		Default("").String()
	assetsPage = kingpin.Flag("collector.assets.page",
		"Page whose link and script tags name the bundles.").Default("/web/login").String()
	assetsTimeout = kingpin.Flag("collector.assets.timeout",
		"Timeout of the whole asset probe (page and bundles; the scrape's deadline applies when sooner).").
		Default("10s").Duration()
	assetsMaxBytes = kingpin.Flag("collector.assets.max-bytes",
		"At most this much of each bundle is read (a bundle is up when it answers 200 with a non-empty body).").
		Default("1048576").Int64()
	assetsConcurrency = kingpin.Flag("collector.assets.concurrency",
		"Bundles fetched at once.").Default("4").Int()
	assetsMaxBundles = kingpin.Flag("collector.assets.max-bundles",
		"At most this many bundles of the page are fetched per scrape (one odoo_asset_bundle_up series each); the rest are skipped and counted in odoo_asset_bundles_skipped{reason=\"over_limit\"}.").
		Default("32").Int()
	assetsAllowedOrigins = kingpin.Flag("collector.assets.allowed-origin",
		"An origin (scheme://host[:port]) besides the probed URL's own where bundle links and redirects may lead, e.g. a CDN; repeatable. Links elsewhere are never requested (odoo_asset_bundles_skipped{reason=\"off_origin\"}).").
		Strings()
)

func init() {
	registerCollector("assets", true, func(d Deps) (any, error) {
		base := *assetsBaseURL
		if base == "" {
			base = *odooWebURL
		}
		if base == "" {
			base = *odooPublicURL
		}
		c, err := NewAssetsCollector(AssetsOptions{BaseURL: base, Page: *assetsPage, Timeout: *assetsTimeout,
			MaxBytes: *assetsMaxBytes, Concurrency: *assetsConcurrency, MaxBundles: *assetsMaxBundles,
			AllowedOrigins: *assetsAllowedOrigins, Logger: d.Logger})
		if c == nil || err != nil {
			return nil, err
		}
		return c, nil
	})
}

// AssetsOptions configures the assets collector.
type AssetsOptions struct {
	BaseURL     string
	Page        string        // default /web/login
	Timeout     time.Duration // default 10 s
	MaxBytes    int64         // default 1 MiB
	Concurrency int           // default 4
	MaxBundles  int           // default 32
	// AllowedOrigins are origins (scheme://host[:port]) besides BaseURL's
	// where bundle links and redirects may lead (a CDN).
	AllowedOrigins []string
	Logger         *slog.Logger
}

// AssetsCollector fetches the login page on every scrape, finds the
// compiled asset bundles its link and script tags reference and fetches
// each one (following Odoo's 303 for stale versions): the "500 on
// /web/assets" incident shows as a bundle down.
//
// What the page names is not trusted: bundles are fetched only on the
// base URL's origin (and AllowedOrigins), redirects too; at most
// MaxBundles per scrape; names not in Odoo's naming share one label.
type AssetsCollector struct {
	opts    AssetsOptions
	origins *prober.Origins
	client  *http.Client
	page    *probeSource
}

// NewAssetsCollector returns nil when no URL is configured, and an error
// when the base URL or an allowed origin is not an http(s) URL.
func NewAssetsCollector(o AssetsOptions) (*AssetsCollector, error) {
	if o.BaseURL == "" {
		return nil, nil
	}
	if o.Page == "" {
		o.Page = "/web/login"
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 20
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.MaxBundles <= 0 {
		o.MaxBundles = 32
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	origins, err := prober.NewOrigins(o.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("asset probe URL: %w", err)
	}
	if err := origins.Allow(o.AllowedOrigins...); err != nil {
		return nil, fmt.Errorf("--collector.assets.allowed-origin: %w", err)
	}
	return &AssetsCollector{
		opts:    o,
		origins: origins,
		client:  prober.NewClient(true, o.Concurrency, origins),
		page:    newProbeSource(o.Logger, "assets", "login page", o.BaseURL+o.Page),
	}, nil
}

var (
	assetPageUpDesc = prometheus.NewDesc("odoo_asset_page_up",
		"Whether the page whose bundles are probed (the login page) answered 200; when 0 the bundles are not judged (no odoo_asset_bundle_up, no odoo_asset_bundles_failing).",
		nil, nil)
	assetBundleUpDesc = prometheus.NewDesc("odoo_asset_bundle_up",
		"Whether the compiled asset bundle referenced by the login page answered 200 with a non-empty body (bundle=\"other\": all bundles whose names are not in Odoo's naming).",
		[]string{"bundle"}, nil)
	assetBundlesFailingDesc = prometheus.NewDesc("odoo_asset_bundles_failing",
		"Number of bundles of the login page that are not served.", nil, nil)
	assetBundlesSkippedDesc = prometheus.NewDesc("odoo_asset_bundles_skipped",
		"Bundles of the login page not fetched in the last scrape: off_origin (link or redirect to an origin not allowed), over_limit (beyond --collector.assets.max-bundles).",
		[]string{"reason"}, nil)
)

// Describe implements Collector.
func (c *AssetsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- assetPageUpDesc
	ch <- assetBundleUpDesc
	ch <- assetBundlesFailingDesc
	ch <- assetBundlesSkippedDesc
}

// Update implements Collector.
//
// A login page that does not answer (Odoo or the proxy down, or stalled
// past the scrape's deadline) is a metric, odoo_asset_page_up 0, and no
// failure. A bundle that does not answer within the probe's Timeout is
// down. When the scrape's deadline comes first, the bundles still pending
// are not judged (no odoo_asset_bundle_up for them, no failing count) and
// Update fails: a short scrape timeout must not pass for broken bundles,
// whose alert may have the healer clear the assets of a merely slow Odoo.
func (c *AssetsCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	scrape := ctx
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	page, base, err := prober.LoginPage(ctx, c.client, c.opts.BaseURL+c.opts.Page)
	switch {
	case err == nil:
	case prober.IsOffOrigin(err):
		// A redirect off the probed origin: the configuration's doing.
		return fmt.Errorf("fetching the login page: %w", err)
	case scrape.Err() != nil:
		// Not answered within the scrape's budget: down for this scrape,
		// as odoo_http_up reads, but not a state change of Odoo to log.
		ch <- prometheus.MustNewConstMetric(assetPageUpDesc, prometheus.GaugeValue, 0)
		return nil
	default:
		ch <- prometheus.MustNewConstMetric(assetPageUpDesc, prometheus.GaugeValue, c.page.observe(err))
		return nil
	}
	ch <- prometheus.MustNewConstMetric(assetPageUpDesc, prometheus.GaugeValue, c.page.observe(nil))
	found, err := prober.ExtractBundles(bytes.NewReader(page), base)
	if err != nil {
		return err
	}
	bundles, skipped := prober.SelectBundles(found, c.origins, c.opts.MaxBundles)
	results := make([]prober.BundleResult, len(bundles))
	var wg sync.WaitGroup
	sem := make(chan struct{}, c.opts.Concurrency)
	for i, b := range bundles {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = prober.FetchBundle(ctx, c.client, b, c.opts.MaxBytes)
		}()
	}
	wg.Wait()
	cut := scrape.Err() != nil
	failing, unjudged := 0, 0
	up := map[string]float64{} // by label; a grouped label is up when all its bundles are
	var labels []string
	for _, r := range results {
		switch {
		case r.OffOrigin():
			skipped[prober.SkipOffOrigin]++
			continue
		case cut && r.Err != nil:
			unjudged++
			continue
		}
		l := r.Label()
		if _, ok := up[l]; !ok {
			up[l] = 1
			labels = append(labels, l)
		}
		if !r.Up() {
			up[l] = 0
			failing++
		}
	}
	for _, l := range labels {
		ch <- prometheus.MustNewConstMetric(assetBundleUpDesc, prometheus.GaugeValue, up[l], l)
	}
	for _, reason := range prober.SkipReasons {
		ch <- prometheus.MustNewConstMetric(assetBundlesSkippedDesc, prometheus.GaugeValue, float64(skipped[reason]), reason)
	}
	if unjudged > 0 {
		return fmt.Errorf("scrape deadline reached with %d of %d bundles unanswered: %w", unjudged, len(results), scrape.Err())
	}
	ch <- prometheus.MustNewConstMetric(assetBundlesFailingDesc, prometheus.GaugeValue, float64(failing))
	return nil
}
