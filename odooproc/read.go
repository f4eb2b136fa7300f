package odooproc

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// userHZ is the unit of /proc/<pid>/stat's start time (USER_HZ, 100 on
// every Linux architecture Odoo runs on).
const userHZ = 100

// ReadProcFS lists the Odoo processes (see IsOdoo) of the proc file system
// mounted at root ("/proc", or "/host/proc" for a container sharing the
// host's or Odoo's PID namespace). It reads every process's command line
// and only the Odoo processes' stat; a process that ends while it is read
// is skipped.
func ReadProcFS(root string) ([]Process, error) {
	pfs, err := procfs.NewFS(root)
	if err != nil {
		return nil, fmt.Errorf("proc file system %s: %w", root, err)
	}
	st, err := pfs.Stat()
	if err != nil {
		return nil, fmt.Errorf("proc file system %s: reading the boot time: %w", root, err)
	}
	boot := time.Unix(int64(st.BootTime), 0)
	all, err := pfs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("listing the processes of %s: %w", root, err)
	}
	var out []Process
	for _, p := range all {
		args, err := p.CmdLine()
		if err != nil || len(args) == 0 {
			continue // ended, a kernel thread, or hidden (hidepid)
		}
		cmd := strings.Join(args, " ")
		if !IsOdoo(cmd) {
			continue
		}
		s, err := p.Stat()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("reading the stat of Odoo process %d: %w", p.PID, err)
		}
		out = append(out, Process{
			PID: p.PID, PPID: s.PPID, Nice: s.Nice,
			Start: boot.Add(time.Duration(s.Starttime) * (time.Second / userHZ)),
			RSS:   uint64(max(s.ResidentMemory(), 0)), VMS: uint64(s.VirtualMemory()),
			Cmd: cmd,
		})
	}
	return out, nil
}

// TopArgs are the ps options the Docker Engine API's container top
// (GET /containers/{id}/top?ps_args=...) needs for ParseTop; the daemon
// runs ps on its host and keeps the container's processes, so PIDs are
// the host's.
var TopArgs = []string{"-o", "pid,ppid,ni,rss,vsz,etimes,args"}

// ParseTop reads the answer of a container top with TopArgs (procps
// titles PID, PPID, NI, RSS and VSZ in KiB, ELAPSED in seconds, COMMAND,
// the last holding the whole command line) and returns the container's
// Odoo processes; now dates their start from their elapsed time.
func ParseTop(titles []string, rows [][]string, now time.Time) ([]Process, error) {
	col := map[string]int{}
	for i, t := range titles {
		col[t] = i
	}
	for _, t := range []string{"PID", "PPID", "NI", "RSS", "VSZ", "ELAPSED", "COMMAND"} {
		if _, ok := col[t]; !ok {
			return nil, fmt.Errorf("container top: no %s column in %q (the daemon's ps does not take -o %s)", t, titles, TopArgs[1])
		}
	}
	num := func(row []string, t string) (int64, error) {
		v := row[col[t]]
		if t == "NI" && v == "-" {
			return 0, nil // a real-time process has no nice value
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("container top: column %s: %q is not a number", t, v)
		}
		return n, nil
	}
	var out []Process
	for _, row := range rows {
		if len(row) != len(titles) {
			return nil, fmt.Errorf("container top: a row of %d fields for %d titles", len(row), len(titles))
		}
		cmd := row[col["COMMAND"]]
		if !IsOdoo(cmd) {
			continue
		}
		var v [6]int64
		for i, t := range []string{"PID", "PPID", "NI", "RSS", "VSZ", "ELAPSED"} {
			n, err := num(row, t)
			if err != nil {
				return nil, err
			}
			v[i] = n
		}
		out = append(out, Process{
			PID: int(v[0]), PPID: int(v[1]), Nice: int(v[2]),
			RSS: uint64(max(v[3], 0)) << 10, VMS: uint64(max(v[4], 0)) << 10,
			Start: now.Add(-time.Duration(v[5]) * time.Second),
			Cmd:   cmd,
		})
	}
	return out, nil
}
