package odooproc

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Config holds Odoo's settings that bound its processes
// (odoo/tools/config.py), as Odoo resolves them: its defaults, then the
// configuration file, then the command line's options.
type Config struct {
	// Workers is the number of HTTP workers (0: threaded mode, no prefork).
	Workers int
	// MaxCronThreads is the number of cron workers in prefork mode.
	MaxCronThreads int
	// NoHTTP is http_enable = False (--no-http): a cron-only server, with
	// no HTTP worker and no gevent process.
	NoHTTP bool
	// LimitMemorySoft and LimitMemoryHard bound a worker's virtual memory
	// in bytes (0: no limit); the gevent ones apply to the gevent process
	// (Odoo 18+; 0: the general ones).
	LimitMemorySoft, LimitMemoryHard             int64
	LimitMemorySoftGevent, LimitMemoryHardGevent int64
	// LimitTimeCPU and LimitTimeReal bound a request, in seconds (0: none);
	// LimitTimeRealCron bounds a cron worker (-1: LimitTimeReal).
	LimitTimeCPU, LimitTimeReal, LimitTimeRealCron float64
}

// DefaultConfig returns Odoo's defaults (the same in 16, 17 and 18).
func DefaultConfig() Config {
	return Config{
		MaxCronThreads:    2,
		LimitMemorySoft:   2048 << 20,
		LimitMemoryHard:   2560 << 20,
		LimitTimeCPU:      60,
		LimitTimeReal:     120,
		LimitTimeRealCron: -1,
	}
}

// Expected returns how many processes of kind the configuration starts.
func (c Config) Expected(k Kind) int {
	switch {
	case k == Master:
		return 1
	case c.Workers <= 0:
		return 0 // threaded mode: one process
	case k == Cron:
		return c.MaxCronThreads
	case c.NoHTTP:
		return 0
	case k == HTTP:
		return c.Workers
	}
	return 1 // gevent
}

// MemorySoft returns the soft virtual memory limit of kind in bytes.
func (c Config) MemorySoft(k Kind) int64 {
	if k == Gevent && c.LimitMemorySoftGevent > 0 {
		return c.LimitMemorySoftGevent
	}
	return c.LimitMemorySoft
}

// MemoryHard returns the hard virtual memory limit of kind in bytes.
func (c Config) MemoryHard(k Kind) int64 {
	if k == Gevent && c.LimitMemoryHardGevent > 0 {
		return c.LimitMemoryHardGevent
	}
	return c.LimitMemoryHard
}

// TimeReal returns the wall-clock limit of a worker of kind in seconds.
func (c Config) TimeReal(k Kind) float64 {
	if k == Cron && c.LimitTimeRealCron >= 0 {
		return c.LimitTimeRealCron
	}
	return c.LimitTimeReal
}

// set sets the option key (a config file key: limit_memory_soft) to v;
// it ignores the keys it does not know.
func (c *Config) set(key, v string) error {
	v = strings.TrimSpace(v)
	var (
		in *int64
		fl *float64
		it *int
	)
	switch key {
	case "http_enable":
		c.NoHTTP = v == "False" || v == "false" || v == "0"
		return nil
	case "workers":
		it = &c.Workers
	case "max_cron_threads":
		it = &c.MaxCronThreads
	case "limit_memory_soft":
		in = &c.LimitMemorySoft
	case "limit_memory_hard":
		in = &c.LimitMemoryHard
	case "limit_memory_soft_gevent":
		in = &c.LimitMemorySoftGevent
	case "limit_memory_hard_gevent":
		in = &c.LimitMemoryHardGevent
	case "limit_time_cpu":
		fl = &c.LimitTimeCPU
	case "limit_time_real":
		fl = &c.LimitTimeReal
	case "limit_time_real_cron":
		fl = &c.LimitTimeRealCron
	default:
		return nil
	}
	// Odoo reads False and None as no value (no limit).
	if v == "False" || v == "None" || v == "" {
		v = "0"
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return fmt.Errorf("%s = %q: not a number", key, v)
	}
	switch {
	case it != nil:
		*it = int(f)
	case in != nil:
		*in = int64(f)
	default:
		*fl = f
	}
	return nil
}

// ReadConfigFile applies the [options] section of an Odoo configuration
// file (INI: "key = value", ";" and "#" comments) to c.
func (c *Config) ReadConfigFile(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	section, n := "", 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == ';' || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			section = strings.Trim(line, "[] ")
			continue
		}
		if section != "options" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			k, v, ok = strings.Cut(line, ":")
		}
		if !ok {
			continue
		}
		if err := c.set(strings.TrimSpace(k), v); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading Odoo's configuration: %w", err)
	}
	return nil
}

// ConfigFileArg returns the configuration file named on an Odoo command
// line (-c FILE, --config FILE, --config=FILE, -cFILE), or "".
func ConfigFileArg(cmd string) string {
	f := strings.Fields(cmd)
	for i, a := range f {
		switch {
		case a == "-c" || a == "--config":
			if i+1 < len(f) {
				return f[i+1]
			}
		case strings.HasPrefix(a, "--config="):
			return strings.TrimPrefix(a, "--config=")
		case strings.HasPrefix(a, "-c") && !strings.HasPrefix(a, "--"):
			return a[2:]
		}
	}
	return ""
}

// ApplyArgs applies the options of an Odoo command line that bound its
// processes (--workers 4, --limit-memory-soft=N, ...) to c.
func (c *Config) ApplyArgs(cmd string) error {
	f := strings.Fields(cmd)
	for i := 0; i < len(f); i++ {
		a := f[i]
		if a == "--no-http" {
			c.NoHTTP = true
			continue
		}
		if !strings.HasPrefix(a, "--") {
			continue
		}
		k, v, ok := strings.Cut(a[2:], "=")
		if !ok {
			if i+1 >= len(f) {
				continue
			}
			v = f[i+1]
		}
		k = strings.ReplaceAll(k, "-", "_")
		switch k {
		case "workers", "max_cron_threads", "limit_memory_soft", "limit_memory_hard",
			"limit_memory_soft_gevent", "limit_memory_hard_gevent",
			"limit_time_cpu", "limit_time_real", "limit_time_real_cron":
		default:
			continue
		}
		if err := c.set(k, v); err != nil {
			return fmt.Errorf("command line: %w", err)
		}
		if !ok {
			i++
		}
	}
	return nil
}
