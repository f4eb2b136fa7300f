package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/odoo-exporter/odoo_exporter/dashboards"
	"github.com/odoo-exporter/odoo_exporter/rules"
)

// composeFile is the part of a Compose file these tests read.
type composeFile struct {
	Services map[string]struct {
		Image   string   `yaml:"image"`
		Volumes []string `yaml:"volumes"`
		Secrets []string `yaml:"secrets"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

// dirVar starts the overlay's paths of the repository's files.
const dirVar = "${ODOO_EXPORTER_DIR:?set ODOO_EXPORTER_DIR}/"

func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// mountTarget returns where service mounts the file or directory of the
// repository rel (a path below $ODOO_EXPORTER_DIR), or "".
func (c composeFile) mountTarget(service, rel string) string {
	for _, v := range c.Services[service].Volumes {
		rest, ok := strings.CutPrefix(v, dirVar)
		if !ok {
			continue
		}
		if src, target, ok := strings.Cut(rest, ":"); ok && src == rel {
			target, _, _ = strings.Cut(target, ":")
			return target
		}
	}
	return ""
}

// TestComposeFiles checks what TestComposeOverlay cannot see by running
// the overlay: the Alertmanager configuration carries exactly the pack's
// inhibit rules, every mounted file of the repository exists, and every
// secret a service names is declared with a file of secrets.sh.
func TestComposeFiles(t *testing.T) {
	var am struct {
		InhibitRules []any `yaml:"inhibit_rules"`
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "examples/compose/alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &am); err != nil {
		t.Fatal(err)
	}
	pack, err := rules.InhibitRules()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(am.InhibitRules, pack) {
		t.Errorf("examples/compose/alertmanager.yml: inhibit_rules differ from rules/%s: copy them again", rules.InhibitFileName)
	}

	var c composeFile
	var raw map[string]any
	readYAML(t, composeOverlay, &raw)
	b, err = yaml.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	secretsSh, err := os.ReadFile(filepath.Join(root, "examples/compose/secrets.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for name, svc := range c.Services {
		for _, v := range svc.Volumes {
			src, ok := strings.CutPrefix(v, dirVar)
			if !ok {
				continue
			}
			src, _, _ = strings.Cut(src, ":")
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("service %s mounts %s: %v", name, src, err)
			}
		}
		for _, s := range svc.Secrets {
			decl, ok := c.Secrets[s]
			if !ok {
				t.Errorf("service %s: secret %s is not declared", name, s)
				continue
			}
			if !strings.Contains(string(secretsSh), "put "+filepath.Base(decl.File)+" ") {
				t.Errorf("secret %s: secrets.sh does not write %s", s, decl.File)
			}
		}
	}
	if got := c.mountTarget("prometheus", "rules/alerts_odoo.yml"); got == "" {
		t.Error("prometheus does not mount rules/alerts_odoo.yml")
	}
}

// TestGrafanaProvisioning validates dashboards/provisioning against what
// Grafana's provisioning reads (apiVersion 1, datasources, providers) and
// the overlay: Grafana cannot run here, so its loading them is not run.
// The datasource is a Prometheus, the default one, pointing at the
// overlay's prometheus service; the dashboards' queries all use either it
// or their datasource variable of type prometheus; the provider's path is
// where the overlay mounts the dashboards.
func TestGrafanaProvisioning(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name      string         `yaml:"name"`
			UID       string         `yaml:"uid"`
			Type      string         `yaml:"type"`
			Access    string         `yaml:"access"`
			URL       string         `yaml:"url"`
			IsDefault bool           `yaml:"isDefault"`
			Editable  bool           `yaml:"editable"`
			JSONData  map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	readYAML(t, "dashboards/provisioning/datasources/odoo-prometheus.yml", &ds)
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name                  string `yaml:"name"`
			OrgID                 int    `yaml:"orgId"`
			Folder                string `yaml:"folder"`
			FolderUID             string `yaml:"folderUid"`
			Type                  string `yaml:"type"`
			DisableDeletion       bool   `yaml:"disableDeletion"`
			AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
			UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
			Options               struct {
				Path                      string `yaml:"path"`
				FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "dashboards/provisioning/dashboards/odoo.yml", &prov)
	var raw map[string]any
	readYAML(t, composeOverlay, &raw)
	b, err := yaml.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}

	if ds.APIVersion != 1 || len(ds.Datasources) != 1 {
		t.Fatalf("datasources: apiVersion %d, %d datasources; want 1 and 1", ds.APIVersion, len(ds.Datasources))
	}
	d := ds.Datasources[0]
	if d.Type != "prometheus" || d.UID == "" || d.Access != "proxy" || !d.IsDefault {
		t.Errorf("datasource %+v: want type prometheus, a uid, access proxy, the default", d)
	}
	if _, ok := c.Services["prometheus"]; !ok || d.URL != "http://prometheus:9090" {
		t.Errorf("datasource url %s: want the overlay's prometheus service, http://prometheus:9090", d.URL)
	}
	if prov.APIVersion != 1 || len(prov.Providers) != 1 {
		t.Fatalf("providers: apiVersion %d, %d providers; want 1 and 1", prov.APIVersion, len(prov.Providers))
	}
	p := prov.Providers[0]
	if p.Type != "file" || p.Options.Path == "" || p.Folder == "" {
		t.Errorf("provider %+v: want type file, a path and a folder", p)
	}
	for rel, want := range map[string]string{
		"dashboards":                          p.Options.Path,
		"dashboards/provisioning/datasources": "/etc/grafana/provisioning/datasources",
		"dashboards/provisioning/dashboards":  "/etc/grafana/provisioning/dashboards",
	} {
		if got := c.mountTarget("grafana", rel); got != want {
			t.Errorf("grafana mounts %s at %q, want %q", rel, got, want)
		}
	}

	files, err := dashboards.Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no dashboards")
	}
	for name, b := range files {
		var dash struct {
			UID        string `json:"uid"`
			Templating struct {
				List []struct {
					Name, Type string
					Query      any
				} `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(b, &dash); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if dash.UID == "" {
			t.Errorf("%s: no uid (provisioning would give it a new one at every load)", name)
		}
		hasVar := false
		for _, v := range dash.Templating.List {
			if v.Name == "datasource" && v.Type == "datasource" && v.Query == d.Type {
				hasVar = true
			}
		}
		if !hasVar {
			t.Errorf("%s: no datasource variable of type %s", name, d.Type)
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		n := 0
		walkDatasources(doc, func(ref map[string]any) {
			n++
			typ, uid := ref["type"], ref["uid"]
			switch {
			case typ == "grafana" && uid == "-- Grafana --": // built-in annotations
			case typ == d.Type && (uid == "${datasource}" || uid == d.UID):
			default:
				t.Errorf("%s: datasource %v is neither the variable nor the provisioned %s", name, ref, d.UID)
			}
		})
		if n == 0 {
			t.Errorf("%s: no datasource reference", name)
		}
	}
}

// walkDatasources calls f with every "datasource" object of a dashboard.
func walkDatasources(x any, f func(map[string]any)) {
	switch v := x.(type) {
	case map[string]any:
		for k, e := range v {
			if ref, ok := e.(map[string]any); ok && k == "datasource" {
				f(ref)
			}
			walkDatasources(e, f)
		}
	case []any:
		for _, e := range v {
			walkDatasources(e, f)
		}
	}
}
