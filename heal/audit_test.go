package heal

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditReopensRemovedFile: after the audit file is removed or renamed
// away (log rotation), the next record goes to a new file at the path,
// without a SIGHUP.
func TestAuditReopensRemovedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	a, err := NewAuditLog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i, move := range []func() error{
		func() error { return nil },
		func() error { return os.Remove(path) },
		func() error { return os.Rename(path, path+".1") },
	} {
		if err := move(); err != nil {
			t.Fatal(err)
		}
		if err := a.Write(AuditRecord{Alert: "A", Result: ResultSuccess, Rule: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if n := strings.Count(string(b), "\n"); n != 1 || !strings.Contains(string(b), `"rule":"`+string(rune('a'+i))+`"`) {
			t.Errorf("step %d: the file at the path holds %q", i, b)
		}
	}
	if b, _ := os.ReadFile(path + ".1"); !strings.Contains(string(b), `"rule":"b"`) {
		t.Errorf("the rotated file holds %q", b)
	}
}

// TestAuditFailureIs5xx: a notification whose decision cannot be audited
// (the disk is full: /dev/full) is answered 500, so that Alertmanager
// sends it again, and the failure is counted.
func TestAuditFailureIs5xx(t *testing.T) {
	full, err := NewAuditLog("/dev/full", nil)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	th := newTestHealerWith(t, fmt.Sprintf(strings.Replace(assetsRule, "{heal: clear_assets}", "{alertname: OdooAssetsBroken}", 1), "odoo"), func(o *Options) { o.Audit = full })
	code, body := th.post(t, payload(firing("SomethingElse", "fp1", "odoo")))
	if code != http.StatusInternalServerError || !strings.Contains(fmt.Sprint(body), "audit") {
		t.Errorf("%d %v, want 500 naming the audit log", code, body)
	}
	if n := counterValue(th.metrics.auditFailures); n != 1 {
		t.Errorf("odoo_healer_audit_write_failures_total = %v", n)
	}
}
