package heal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Message is an Alertmanager webhook notification (payload version 4).
// Fields Alertmanager may add later are ignored.
type Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a Message.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Alert statuses.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Name is the alert's alertname label.
func (a Alert) Name() string { return a.Labels["alertname"] }

// Key identifies one episode of an alert: Alertmanager's fingerprint is a
// hash of the labels and repeats across episodes, startsAt tells them apart.
func (a Alert) Key() string { return a.Fingerprint + "@" + a.StartsAt.UTC().Format(time.RFC3339Nano) }

// DecodeError is a payload Alertmanager should not retry: the HTTP status
// and a reason for the sender.
type DecodeError struct {
	Code   int
	Reason string
}

func (e *DecodeError) Error() string { return e.Reason }

func badRequest(format string, args ...any) *DecodeError {
	return &DecodeError{Code: http.StatusBadRequest, Reason: fmt.Sprintf(format, args...)}
}

// DecodeWebhook reads and validates an Alertmanager webhook payload of at
// most maxBytes bytes. Its errors are *DecodeError values.
func DecodeWebhook(r io.Reader, maxBytes int64) (*Message, error) {
	body, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, badRequest("reading the body: %v", err)
	}
	if int64(len(body)) > maxBytes {
		return nil, &DecodeError{Code: http.StatusRequestEntityTooLarge, Reason: fmt.Sprintf("body larger than %d bytes", maxBytes)}
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, badRequest("invalid JSON at byte %d: %v", se.Offset, err)
		case errors.As(err, &te):
			return nil, badRequest("field %q: %v", te.Field, err)
		default:
			return nil, badRequest("invalid payload: %v", err)
		}
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Message) validate() error {
	if m.Version != "4" {
		return badRequest("unsupported payload version %q (want \"4\")", m.Version)
	}
	if len(m.Alerts) == 0 {
		return badRequest("no alerts in payload")
	}
	for i, a := range m.Alerts {
		if a.Status != StatusFiring && a.Status != StatusResolved {
			return badRequest("alerts[%d]: status %q is neither %q nor %q", i, a.Status, StatusFiring, StatusResolved)
		}
		if a.Fingerprint == "" {
			return badRequest("alerts[%d]: missing fingerprint", i)
		}
		if a.StartsAt.IsZero() {
			return badRequest("alerts[%d]: missing startsAt", i)
		}
		if a.Name() == "" {
			return badRequest("alerts[%d]: missing label alertname", i)
		}
	}
	return nil
}
