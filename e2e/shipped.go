package e2e

import (
	"fmt"
	"time"

	"github.com/alecthomas/kingpin/v2"

	// The exporter's collectors register their flags, with their shipped
	// defaults, on kingpin's command line.
	_ "github.com/odoo-exporter/odoo_exporter/collector"
)

// shippedLongpollInterval is the default of the exporter's
// --collector.longpoll.interval, read from the flag itself so that the
// soak and the demo follow what operators get.
func shippedLongpollInterval() (time.Duration, error) {
	f := kingpin.CommandLine.GetFlag("collector.longpoll.interval")
	if f == nil || len(f.Model().Default) != 1 {
		return 0, fmt.Errorf("e2e: the exporter's --collector.longpoll.interval flag or its default not found")
	}
	d, err := time.ParseDuration(f.Model().Default[0])
	if err != nil {
		return 0, fmt.Errorf("e2e: default of --collector.longpoll.interval: %w", err)
	}
	return d, nil
}
