package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedDashboardsAreGenerated checks that the JSON files of
// dashboards/ are this program's output: edit the generator, then run
// go generate ./dashboards.
func TestCommittedDashboardsAreGenerated(t *testing.T) {
	files, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := filepath.Glob(filepath.Join("..", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(onDisk) != len(files) {
		t.Errorf("dashboards/ has %d JSON files, the generator makes %d", len(onDisk), len(files))
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Errorf("%s: %v (run go generate ./dashboards)", name, err)
			continue
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from the generator's output: run go generate ./dashboards", name)
		}
	}
}
