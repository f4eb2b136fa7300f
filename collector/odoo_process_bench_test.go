package collector

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/odoo-exporter/odoo_exporter/internal/dockertest"
	"github.com/odoo-exporter/odoo_exporter/odooproc"
)

// hundred is an Odoo stand-in of 100 processes: the master, 82 HTTP
// workers, 16 cron workers and the gevent process.
var hundred = dockertest.OdooConfig{Workers: 82, Cron: 16, Gevent: true}

// benchCollect runs b.N collections of c and checks the last one saw the
// 100 processes.
func benchCollect(b *testing.B, c *OdooProcessCollector, name string) {
	ctx := context.Background()
	ch := make(chan prometheus.Metric, 256)
	done := make(chan int)
	go func() {
		n := 0
		for range ch {
			n++
		}
		done <- n
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := c.Update(ctx, ch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(ch)
	<-done
	m := procScrape(b, c)
	var n float64
	for _, k := range odooproc.Kinds {
		for _, s := range m.find("odoo_processes", "name", name, "kind", string(k)) {
			n += s.GetGauge().GetValue()
		}
	}
	if n != 100 {
		b.Fatalf("%v Odoo processes seen, want 100", n)
	}
}

// BenchmarkOdooProcessHost: one collection from /proc (every process's
// command line, the Odoo processes' stat) with 100 Odoo processes.
func BenchmarkOdooProcessHost(b *testing.B) {
	h, err := dockertest.StartOdooOnHost(context.Background(), b, hundred)
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewOdooProcessCollector(OdooProcessOptions{Match: regexp.QuoteMeta(h.Addr)})
	if err != nil {
		b.Fatal(err)
	}
	waitProcesses(b, c, "")
	benchCollect(b, c, "")
}

// BenchmarkOdooProcessContainer: one collection through Docker's
// container top (the daemon runs ps on its host) with 100 processes.
func BenchmarkOdooProcessContainer(b *testing.B) {
	d := dockertest.New(b)
	cfg := hundred
	app, err := d.RunApp(context.Background(), dockertest.AppConfig{Name: "odoo-bench-1", Odoo: &cfg})
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewOdooProcessCollector(OdooProcessOptions{Containers: []string{app.Name}, DockerHost: d.Host()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	waitProcesses(b, c, app.Name)
	benchCollect(b, c, app.Name)
}

// BenchmarkOdooProcessClassify: ParseTop, Find and Aggregate alone on a
// container top answer of 100 processes.
func BenchmarkOdooProcessClassify(b *testing.B) {
	titles := []string{"PID", "PPID", "NI", "RSS", "VSZ", "ELAPSED", "COMMAND"}
	rows := [][]string{{"1000", "900", "0", "135428", "188944", "2688", "/usr/bin/python3 /usr/bin/odoo -c /etc/odoo/odoo.conf"}}
	for i := range 99 {
		ni, cmd := "0", "/usr/bin/python3 /usr/bin/odoo -c /etc/odoo/odoo.conf"
		switch {
		case i == 0:
			cmd = "/usr/bin/python3 /usr/bin/odoo gevent -c /etc/odoo/odoo.conf"
		case i < 17:
			ni = "10"
		}
		rows = append(rows, []string{strconv.Itoa(1001 + i), "1000", ni, "150500", "268836", "60", cmd})
	}
	now := time.Now()
	b.ReportAllocs()
	for range b.N {
		ps, err := odooproc.ParseTop(titles, rows, now)
		if err != nil {
			b.Fatal(err)
		}
		if a := odooproc.Aggregate(odooproc.Find(ps)); a[odooproc.HTTP].Count != 82 {
			b.Fatalf("%d HTTP workers", a[odooproc.HTTP].Count)
		}
	}
}

// waitProcesses waits until the stand-in's 100 processes run.
func waitProcesses(b *testing.B, c *OdooProcessCollector, name string) {
	deadline := time.Now().Add(time.Minute)
	for {
		m := procScrape(b, c)
		var n float64
		for _, s := range m.find("odoo_processes", "name", name) {
			n += s.GetGauge().GetValue()
		}
		if n == 100 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%v processes after a minute, want 100", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
