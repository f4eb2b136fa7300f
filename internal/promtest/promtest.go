// Package promtest starts a real Prometheus and a real Alertmanager
// (Debian's prometheus and prometheus-alertmanager packages) on free
// loopback ports, with temporary storage, for end-to-end tests and the
// demo, and has small clients of their HTTP APIs: instant queries
// (/api/v1/query), Prometheus' alerts (/api/v1/alerts) and Alertmanager's
// alerts (/api/v2/alerts).
//
// Tested with Prometheus 2.42 and Alertmanager 0.25 (Debian 12). The
// Alertmanager runs alone: its cluster listener is disabled
// (--cluster.listen-address=""), so it neither gossips nor opens a port.
package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// PrometheusBinary finds Prometheus: $PROMETHEUS, /usr/bin/prometheus, then
// $PATH.
func PrometheusBinary() (string, error) {
	return binary("PROMETHEUS", "prometheus", "Debian's prometheus package")
}

// AlertmanagerBinary finds Alertmanager: $ALERTMANAGER,
// /usr/bin/prometheus-alertmanager (Debian's name), then alertmanager in
// $PATH.
func AlertmanagerBinary() (string, error) {
	if p, err := binary("ALERTMANAGER", "prometheus-alertmanager", "Debian's prometheus-alertmanager package"); err == nil {
		return p, nil
	}
	return binary("ALERTMANAGER", "alertmanager", "Debian's prometheus-alertmanager package")
}

func binary(env, name, pkg string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if !fileExists(p) {
			return "", fmt.Errorf("promtest: %s=%s does not exist", env, p)
		}
		return p, nil
	}
	if p := "/usr/bin/" + name; fileExists(p) {
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("promtest: %s not found (install %s, see scripts/install-deps.sh, or set %s)", name, pkg, env)
	}
	return p, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// process is a server started by this package.
type process struct {
	name   string
	dir    string
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
	once   sync.Once
}

func start(name, bin, dir string, port int, args []string) (*process, error) {
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	p := &process{name: name, dir: dir, url: "http://127.0.0.1:" + strconv.Itoa(port), log: log, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	// If the caller dies without cleaning up, the server goes too.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("promtest: starting %s: %w", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	if err := p.waitReady(60 * time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (p *process) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("promtest: %s exited at start: %v\n%s", p.name, p.cmd.ProcessState, p.LogTail())
		default:
		}
		resp, err := client.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("promtest: %s not ready within %v (last error %v)\n%s", p.name, timeout, err, p.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LogTail returns the end of the server's log.
func (p *process) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, p.name+".log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (p *process) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		p.log.Close()
	})
}

// Target is a scrape job of Prometheus.
type Target struct {
	Job     string
	Targets []string // host:port
	// BearerTokenFile, when set, is sent as Authorization: Bearer.
	BearerTokenFile string
}

// PrometheusConfig configures StartPrometheus.
type PrometheusConfig struct {
	// Dir holds the configuration, the TSDB and the log; it must exist.
	Dir string
	// ScrapeInterval and EvaluationInterval default to 1s; ScrapeTimeout
	// defaults to ScrapeInterval.
	ScrapeInterval, ScrapeTimeout, EvaluationInterval time.Duration
	// Rules are rule files' contents by file name.
	Rules map[string][]byte
	// Alertmanagers are host:port addresses alerts are sent to.
	Alertmanagers []string
	Scrape        []Target
	// Port is the listen port on 127.0.0.1; 0 picks a free one.
	Port int
}

// Prometheus is a running Prometheus.
type Prometheus struct {
	*process
	API
}

func seconds(d time.Duration) string { return model.Duration(d).String() }

// StartPrometheus writes the configuration and rule files into cfg.Dir
// and starts Prometheus; the caller must Stop it.
func StartPrometheus(cfg PrometheusConfig) (*Prometheus, error) {
	bin, err := PrometheusBinary()
	if err != nil {
		return nil, err
	}
	if cfg.ScrapeInterval == 0 {
		cfg.ScrapeInterval = time.Second
	}
	if cfg.ScrapeTimeout == 0 {
		cfg.ScrapeTimeout = cfg.ScrapeInterval
	}
	if cfg.EvaluationInterval == 0 {
		cfg.EvaluationInterval = time.Second
	}
	var ruleFiles []string
	for name, content := range cfg.Rules {
		p := filepath.Join(cfg.Dir, name)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return nil, err
		}
		ruleFiles = append(ruleFiles, p)
	}
	conf := map[string]any{
		"global": map[string]any{
			"scrape_interval":     seconds(cfg.ScrapeInterval),
			"scrape_timeout":      seconds(cfg.ScrapeTimeout),
			"evaluation_interval": seconds(cfg.EvaluationInterval),
		},
		"rule_files": ruleFiles,
	}
	if len(cfg.Alertmanagers) > 0 {
		conf["alerting"] = map[string]any{"alertmanagers": []any{
			map[string]any{"static_configs": []any{map[string]any{"targets": cfg.Alertmanagers}}},
		}}
	}
	var scrapes []any
	for _, t := range cfg.Scrape {
		sc := map[string]any{"job_name": t.Job, "static_configs": []any{map[string]any{"targets": t.Targets}}}
		if t.BearerTokenFile != "" {
			sc["authorization"] = map[string]any{"type": "Bearer", "credentials_file": t.BearerTokenFile}
		}
		scrapes = append(scrapes, sc)
	}
	conf["scrape_configs"] = scrapes
	confPath := filepath.Join(cfg.Dir, "prometheus.yml")
	if err := writeYAML(confPath, conf); err != nil {
		return nil, err
	}
	if cfg.Port == 0 {
		if cfg.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	args := []string{
		"--config.file=" + confPath,
		"--storage.tsdb.path=" + filepath.Join(cfg.Dir, "data"),
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(cfg.Port),
		"--web.enable-lifecycle",
		"--log.level=warn",
	}
	p, err := start("prometheus", bin, cfg.Dir, cfg.Port, args)
	if err != nil {
		return nil, err
	}
	return &Prometheus{process: p, API: API{URL: p.url}}, nil
}

// URL is Prometheus' base URL.
func (p *Prometheus) URL() string { return p.url }

// Stop stops Prometheus (its directory is the caller's).
func (p *Prometheus) Stop() { p.stop() }

// Webhook is a webhook receiver of Alertmanager.
type Webhook struct {
	Name string
	URL  string
	// BearerTokenFile, when set, is sent as Authorization: Bearer.
	BearerTokenFile string
	// Matchers route alerts to this receiver (Alertmanager matcher syntax,
	// e.g. `heal=~".+"`); every receiver's route continues, so an alert
	// reaches every receiver it matches.
	Matchers []string
}

// AlertmanagerConfig configures StartAlertmanager.
type AlertmanagerConfig struct {
	// Dir holds the configuration, the storage and the log; it must exist.
	Dir string
	// GroupWait, GroupInterval and RepeatInterval of the root route;
	// defaults 1s, 1s, 1m.
	GroupWait, GroupInterval, RepeatInterval time.Duration
	// GroupBy of the root route; default every label ("...").
	GroupBy  []string
	Webhooks []Webhook
	// InhibitRules is the configuration's inhibit_rules list, as decoded
	// from YAML (e.g. rules.InhibitRules, the pack's).
	InhibitRules []any
	// Port is the listen port on 127.0.0.1; 0 picks a free one.
	Port int
}

// Alertmanager is a running Alertmanager.
type Alertmanager struct {
	*process
}

// StartAlertmanager writes the configuration into cfg.Dir and starts
// Alertmanager; the caller must Stop it.
func StartAlertmanager(cfg AlertmanagerConfig) (*Alertmanager, error) {
	bin, err := AlertmanagerBinary()
	if err != nil {
		return nil, err
	}
	if cfg.GroupWait == 0 {
		cfg.GroupWait = time.Second
	}
	if cfg.GroupInterval == 0 {
		cfg.GroupInterval = time.Second
	}
	if cfg.RepeatInterval == 0 {
		cfg.RepeatInterval = time.Minute
	}
	if len(cfg.GroupBy) == 0 {
		cfg.GroupBy = []string{"..."}
	}
	receivers := []any{map[string]any{"name": "null"}}
	var routes []any
	for _, w := range cfg.Webhooks {
		wc := map[string]any{"url": w.URL, "send_resolved": true}
		if w.BearerTokenFile != "" {
			wc["http_config"] = map[string]any{"authorization": map[string]any{"type": "Bearer", "credentials_file": w.BearerTokenFile}}
		}
		receivers = append(receivers, map[string]any{"name": w.Name, "webhook_configs": []any{wc}})
		r := map[string]any{"receiver": w.Name, "continue": true}
		if len(w.Matchers) > 0 {
			r["matchers"] = w.Matchers
		}
		routes = append(routes, r)
	}
	conf := map[string]any{
		"route": map[string]any{
			"receiver":        "null",
			"group_by":        cfg.GroupBy,
			"group_wait":      seconds(cfg.GroupWait),
			"group_interval":  seconds(cfg.GroupInterval),
			"repeat_interval": seconds(cfg.RepeatInterval),
			"routes":          routes,
		},
		"receivers": receivers,
	}
	if len(cfg.InhibitRules) > 0 {
		conf["inhibit_rules"] = cfg.InhibitRules
	}
	confPath := filepath.Join(cfg.Dir, "alertmanager.yml")
	if err := writeYAML(confPath, conf); err != nil {
		return nil, err
	}
	if cfg.Port == 0 {
		if cfg.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	args := []string{
		"--config.file=" + confPath,
		"--storage.path=" + filepath.Join(cfg.Dir, "am-data"),
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(cfg.Port),
		"--cluster.listen-address=",
		"--log.level=warn",
	}
	p, err := start("alertmanager", bin, cfg.Dir, cfg.Port, args)
	if err != nil {
		return nil, err
	}
	return &Alertmanager{process: p}, nil
}

// URL is Alertmanager's base URL.
func (a *Alertmanager) URL() string { return a.url }

// Addr is Alertmanager's host:port, for Prometheus' configuration.
func (a *Alertmanager) Addr() string { return strings.TrimPrefix(a.url, "http://") }

// Stop stops Alertmanager.
func (a *Alertmanager) Stop() { a.stop() }

func writeYAML(path string, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// API is a client of Prometheus' HTTP API.
type API struct {
	URL string
}

// Sample is one element of an instant vector.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant query at the current time and returns the
// vector (a scalar is returned as one sample without labels).
func (a API) Query(ctx context.Context, expr string) ([]Sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := get(ctx, a.URL+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), &data); err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	switch data.ResultType {
	case "vector":
		var v []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, err
		}
		out := make([]Sample, 0, len(v))
		for _, s := range v {
			f, err := parseValue(s.Value[1])
			if err != nil {
				return nil, err
			}
			out = append(out, Sample{Metric: s.Metric, Value: f})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, err
		}
		f, err := parseValue(v[1])
		if err != nil {
			return nil, err
		}
		return []Sample{{Value: f}}, nil
	default:
		return nil, fmt.Errorf("query %s: unexpected result type %q", expr, data.ResultType)
	}
}

func parseValue(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v)
	}
	return strconv.ParseFloat(s, 64)
}

// Alert is an alert as Prometheus' /api/v1/alerts lists it.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"` // pending | firing
	ActiveAt    time.Time         `json:"activeAt"`
	Value       string            `json:"value"`
}

// Alerts returns the pending and firing alerts.
func (a API) Alerts(ctx context.Context) ([]Alert, error) {
	var data struct {
		Alerts []Alert `json:"alerts"`
	}
	if err := get(ctx, a.URL+"/api/v1/alerts", &data); err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	return data.Alerts, nil
}

// Firing returns the firing alerts named name whose labels include
// every label of match.
func (a API) Firing(ctx context.Context, name string, match map[string]string) ([]Alert, error) {
	all, err := a.Alerts(ctx)
	if err != nil {
		return nil, err
	}
	var out []Alert
	for _, al := range all {
		if al.State == "firing" && al.Labels["alertname"] == name && includes(al.Labels, match) {
			out = append(out, al)
		}
	}
	return out, nil
}

func includes(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// get reads a Prometheus API answer ({"status":"success","data":...})
// into data.
func get(ctx context.Context, u string, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s: %s: %.200s", u, resp.Status, b)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", resp.Status, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

// AMAlert is an alert as Alertmanager's /api/v2/alerts lists it.
type AMAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Fingerprint string            `json:"fingerprint"`
	Status      struct {
		State       string   `json:"state"`       // active | suppressed | unprocessed
		InhibitedBy []string `json:"inhibitedBy"` // fingerprints of the inhibiting alerts
	} `json:"status"`
	Receivers []struct {
		Name string `json:"name"`
	} `json:"receivers"`
}

// Alerts returns Alertmanager's active alerts named name (every alert
// when name is empty).
func (a *Alertmanager) Alerts(ctx context.Context, name string) ([]AMAlert, error) {
	return a.alerts(ctx, name, false)
}

// Inhibited returns Alertmanager's inhibited alerts named name (every
// alert when name is empty).
func (a *Alertmanager) Inhibited(ctx context.Context, name string) ([]AMAlert, error) {
	return a.alerts(ctx, name, true)
}

func (a *Alertmanager) alerts(ctx context.Context, name string, inhibited bool) ([]AMAlert, error) {
	q := url.Values{"active": {strconv.FormatBool(!inhibited)}, "silenced": {"false"}, "inhibited": {strconv.FormatBool(inhibited)}}
	if name != "" {
		q.Set("filter", fmt.Sprintf("alertname=%q", name))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url+"/api/v2/alerts?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("alertmanager alerts: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("alertmanager alerts: %s: %.200s", resp.Status, b)
	}
	var out []AMAlert
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("alertmanager alerts: %w", err)
	}
	return out, nil
}

// Reload asks Prometheus to reload its configuration and rule files
// (needs --web.enable-lifecycle, which StartPrometheus sets).
func (p *Prometheus) Reload(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/-/reload", bytes.NewReader(nil))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("prometheus reload: " + resp.Status)
	}
	return nil
}
