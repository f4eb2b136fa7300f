package heal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// State is what protects Odoo across a restart of the healer: the alert
// episodes (completed ones make re-sends duplicates, open ones resume),
// the cooldowns and the rate-limit windows.
type State struct {
	Version  int                    `json:"version"`
	Episodes map[string]*episode    `json:"episodes"`
	LastRun  map[string]time.Time   `json:"last_run"`
	Starts   []time.Time            `json:"starts"`
	RuleRuns map[string][]time.Time `json:"rule_runs"`
}

const stateVersion = 1

// StateFile keeps a State in a file, replaced atomically on every save
// (written to a temporary file in the same directory, fsynced, renamed
// over the old one, directory fsynced), so that a crash leaves the old or
// the new state, never a torn one. An exclusive lock on path+".lock"
// keeps a second healer from using the same file.
type StateFile struct {
	path string
	lock *os.File
}

// OpenStateFile locks the state file at path (its directory must exist).
func OpenStateFile(path string) (*StateFile, error) {
	lf, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, fmt.Errorf("state file %s is locked by another odoo_healer (%v): run one healer per state file", path, err)
	}
	return &StateFile{path: path, lock: lf}, nil
}

// Path is the state file's path.
func (s *StateFile) Path() string { return s.path }

// Load reads the state; a missing file is an empty state.
func (s *StateFile) Load() (*State, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the state file: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("state file %s: %w (move it away to start with an empty state)", s.path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("state file %s: version %d, want %d", s.path, st.Version, stateVersion)
	}
	if st.Episodes == nil {
		st.Episodes = map[string]*episode{}
	}
	return &st, nil
}

// Save replaces the state file with st.
func (s *StateFile) Save(st *State) error {
	st.Version = stateVersion
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding the state: %w", err)
	}
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(s.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("saving the state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("saving the state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("saving the state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving the state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("saving the state: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("saving the state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("saving the state: syncing %s: %w", dir, err)
	}
	return nil
}

// Close releases the lock.
func (s *StateFile) Close() error { return s.lock.Close() }
