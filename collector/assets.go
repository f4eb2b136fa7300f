package collector

import (
	"bytes"
	"context"
	"fmt"
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
)

func init() {
	registerCollector("assets", true, func(Deps) (any, error) {
		base := *assetsBaseURL
		if base == "" {
			base = *odooWebURL
		}
		if base == "" {
			base = *odooPublicURL
		}
		c := NewAssetsCollector(AssetsOptions{BaseURL: base, Page: *assetsPage, Timeout: *assetsTimeout,
			MaxBytes: *assetsMaxBytes, Concurrency: *assetsConcurrency})
		if c == nil {
			return nil, nil
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
}

// AssetsCollector fetches the login page on every scrape, finds the
// compiled asset bundles its link and script tags reference and fetches
// each one (following Odoo's 303 for stale versions): the "500 on
// /web/assets" incident shows as a bundle down.
type AssetsCollector struct {
	opts   AssetsOptions
	client *http.Client
}

// NewAssetsCollector returns nil when no URL is configured.
func NewAssetsCollector(o AssetsOptions) *AssetsCollector {
	if o.BaseURL == "" {
		return nil
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
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	return &AssetsCollector{opts: o, client: prober.NewClient(true, o.Concurrency)}
}

var (
	assetBundleUpDesc = prometheus.NewDesc("odoo_asset_bundle_up",
		"Whether the compiled asset bundle referenced by the login page answered 200 with a non-empty body.",
		[]string{"bundle"}, nil)
	assetBundlesFailingDesc = prometheus.NewDesc("odoo_asset_bundles_failing",
		"Number of bundles of the login page that are not served.", nil, nil)
)

// Describe implements Collector.
func (c *AssetsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- assetBundleUpDesc
	ch <- assetBundlesFailingDesc
}

// Update implements Collector.
//
// A bundle that does not answer within the probe's Timeout is down. When
// the scrape's deadline comes first, the bundles still pending are not
// judged (no odoo_asset_bundle_up for them, no failing count) and Update
// fails: a short scrape timeout must not pass for broken bundles, whose
// alert may have the healer clear the assets of a merely slow Odoo.
func (c *AssetsCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	scrape := ctx
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	page, base, err := prober.LoginPage(ctx, c.client, c.opts.BaseURL+c.opts.Page)
	if err != nil {
		return fmt.Errorf("fetching the login page: %w", err)
	}
	bundles, err := prober.ExtractBundles(bytes.NewReader(page), base)
	if err != nil {
		return err
	}
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
	for _, r := range results {
		if cut && r.Err != nil {
			unjudged++
			continue
		}
		up := 1.0
		if !r.Up() {
			up = 0
			failing++
		}
		ch <- prometheus.MustNewConstMetric(assetBundleUpDesc, prometheus.GaugeValue, up, r.Name)
	}
	if unjudged > 0 {
		return fmt.Errorf("scrape deadline reached with %d of %d bundles unanswered: %w", unjudged, len(results), scrape.Err())
	}
	ch <- prometheus.MustNewConstMetric(assetBundlesFailingDesc, prometheus.GaugeValue, float64(failing))
	return nil
}
