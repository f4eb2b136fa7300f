package heal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// A notification as Alertmanager 0.27 sends it (with a field this code
// does not know).
const amPayload = `{
  "receiver": "odoo-healer",
  "status": "firing",
  "alerts": [
    {
      "status": "firing",
      "labels": {"alertname": "OdooDbLockContention", "database": "odoo", "heal": "end_blockers", "severity": "warning"},
      "annotations": {"summary": "Backends wait on locks."},
      "startsAt": "2025-03-01T10:00:00.123Z",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "http://prometheus:9090/graph",
      "fingerprint": "5b0a4d1c2e3f4a5b"
    },
    {
      "status": "resolved",
      "labels": {"alertname": "OdooCronStuck", "database": "odoo"},
      "annotations": {},
      "startsAt": "2025-03-01T09:00:00Z",
      "endsAt": "2025-03-01T09:30:00Z",
      "generatorURL": "",
      "fingerprint": "0a0b0c0d0e0f0102"
    }
  ],
  "groupLabels": {"alertname": "OdooDbLockContention"},
  "commonLabels": {"database": "odoo"},
  "commonAnnotations": {},
  "externalURL": "http://alertmanager:9093",
  "version": "4",
  "groupKey": "{}:{alertname=\"OdooDbLockContention\"}",
  "truncatedAlerts": 0,
  "notification_reason": "new"
}`

func TestDecodeWebhook(t *testing.T) {
	m, err := DecodeWebhook(strings.NewReader(amPayload), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	a := m.Alerts[0]
	if len(m.Alerts) != 2 || a.Name() != "OdooDbLockContention" || a.Labels["database"] != "odoo" || a.Status != StatusFiring ||
		!a.StartsAt.Equal(time.Date(2025, 3, 1, 10, 0, 0, 123e6, time.UTC)) || m.Alerts[1].Status != StatusResolved {
		t.Errorf("decoded %+v", m)
	}
	if a.Key() != "5b0a4d1c2e3f4a5b@2025-03-01T10:00:00.123Z" {
		t.Errorf("key %q", a.Key())
	}
	// A body of exactly the limit is accepted, one byte more is not.
	if _, err := DecodeWebhook(strings.NewReader(amPayload), int64(len(amPayload))); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	_, err = DecodeWebhook(strings.NewReader(amPayload), int64(len(amPayload)-1))
	var de *DecodeError
	if !errors.As(err, &de) || de.Code != 413 {
		t.Errorf("over the limit: %v", err)
	}
}

// FuzzDecodeWebhook: decoding never panics, errors are DecodeErrors with
// a 4xx code and a reason, and an accepted payload is valid.
func FuzzDecodeWebhook(f *testing.F) {
	// More seeds are in testdata/fuzz/FuzzDecodeWebhook.
	f.Add([]byte(amPayload))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeWebhook(bytes.NewReader(b), 64<<10)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Code < 400 || de.Code > 499 || de.Reason == "" {
				t.Fatalf("error %v (%T) is not a 4xx DecodeError with a reason", err, err)
			}
			return
		}
		if m.Version != "4" || len(m.Alerts) == 0 {
			t.Fatalf("accepted an invalid payload: %+v", m)
		}
		for _, a := range m.Alerts {
			if (a.Status != StatusFiring && a.Status != StatusResolved) || a.Fingerprint == "" || a.StartsAt.IsZero() || a.Name() == "" {
				t.Fatalf("accepted an invalid alert: %+v", a)
			}
		}
	})
}
