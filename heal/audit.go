package heal

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// AuditRecord is one line of the audit log.
type AuditRecord struct {
	Time            time.Time `json:"time"`
	Alert           string    `json:"alert"`
	Fingerprint     string    `json:"fingerprint"`
	StartsAt        time.Time `json:"starts_at"`
	Rule            string    `json:"rule"`
	Action          string    `json:"action"`
	Target          string    `json:"target"`
	DryRun          bool      `json:"dry_run"`
	Result          string    `json:"result"`
	Steps           []string  `json:"steps,omitempty"`
	Error           string    `json:"error,omitempty"`
	DurationSeconds float64   `json:"duration_seconds"`
}

// AuditLog writes AuditRecords as JSON lines. It is safe for concurrent
// use. Before each write it checks that the file at its path is still
// the one it writes to, and reopens it when it was removed or rotated
// (renamed away); Reopen (SIGHUP) does the same on demand.
type AuditLog struct {
	mu   sync.Mutex
	path string
	w    io.Writer
	f    *os.File
}

// NewAuditLog appends to the file at path, or writes to w when path is
// empty.
func NewAuditLog(path string, w io.Writer) (*AuditLog, error) {
	a := &AuditLog{path: path, w: w}
	if path != "" {
		if err := a.Reopen(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Reopen reopens the file (after a rotation).
func (a *AuditLog) Reopen() error {
	if a.path == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reopenLocked()
}

func (a *AuditLog) reopenLocked() error {
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("opening the audit log: %w", err)
	}
	if a.f != nil {
		a.f.Close()
	}
	a.f, a.w = f, f
	return nil
}

// Write appends one record.
func (a *AuditLog) Write(r AuditRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.path != "" && a.moved() {
		if err := a.reopenLocked(); err != nil {
			return err
		}
	}
	_, err = a.w.Write(b)
	return err
}

// moved reports whether the path no longer names the open file (removed,
// or renamed by a log rotation).
func (a *AuditLog) moved() bool {
	if a.f == nil {
		return true
	}
	open, err := a.f.Stat()
	if err != nil {
		return true
	}
	cur, err := os.Stat(a.path)
	return err != nil || !os.SameFile(open, cur)
}

// Close closes the file.
func (a *AuditLog) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f != nil {
		return a.f.Close()
	}
	return nil
}
