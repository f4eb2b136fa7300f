package odoolog

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// benchBlock is a block of log shaped like a production Odoo's: mostly
// werkzeug access lines, the real 17 and 18 logs, every catalog case
// (tracebacks included) and errors no entry knows.
func benchBlock(tb testing.TB) []byte {
	tb.Helper()
	var b bytes.Buffer
	real17, err := os.ReadFile("testdata/odoo17.log")
	if err != nil {
		tb.Fatal(err)
	}
	real18, err := os.ReadFile("testdata/odoo18.log")
	if err != nil {
		tb.Fatal(err)
	}
	b.Write(real17)
	b.Write(real18)
	for _, c := range catalogCases {
		b.WriteString(c.log)
		b.WriteByte('\n')
	}
	b.WriteString("2026-12-02 17:33:01,002 4243 ERROR odoo odoo.addons.custom: boom \nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\nKeyError: 'x'\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "2026-12-02 17:26:%02d,%03d 11479 INFO odoo werkzeug: 127.0.0.1 - - [02/Dec/2026 17:26:37] \"POST /web/dataset/call_kw/res.partner/web_search_read HTTP/1.1\" 200 - %d 0.011 0.119\n", i%60, i%1000, i%40)
	}
	return b.Bytes()
}

// pipeline is what the collector runs for each source: split, parse,
// match.
func pipeline(tb testing.TB) (*LineSplitter, *Parser, *int) {
	cat, err := LoadCatalog()
	if err != nil {
		tb.Fatal(err)
	}
	matched := 0
	var m Match
	p := NewParser(0, func(r *Record) {
		if cat.Match(r, &m) != nil {
			matched++
		}
	})
	return NewLineSplitter(0, p.Line), p, &matched
}

// BenchmarkParseMatch measures the reader and the matcher on one core:
//
//	go test -run '^$' -bench ParseMatch -benchmem -cpu 1 ./odoolog/
func BenchmarkParseMatch(b *testing.B) {
	block := benchBlock(b)
	lines := bytes.Count(block, []byte("\n"))
	s, p, _ := pipeline(b)
	b.SetBytes(int64(len(block)))
	b.ResetTimer()
	for range b.N {
		s.Write(block)
	}
	p.Flush()
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
}

// TestWriteBenchLog writes a log of ODOOLOG_BENCH_SIZE MiB (default 1024)
// of benchBlock to the file ODOOLOG_BENCH_WRITE, for the comparison with
// mtail and TestReadBenchLog (docs/benchmarks.md).
func TestWriteBenchLog(t *testing.T) {
	path := os.Getenv("ODOOLOG_BENCH_WRITE")
	if path == "" {
		t.Skip("ODOOLOG_BENCH_WRITE not set")
	}
	size := 1024
	if v := os.Getenv("ODOOLOG_BENCH_SIZE"); v != "" {
		fmt.Sscan(v, &size)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	block := benchBlock(t)
	var n int64
	for n < int64(size)<<20 {
		w.Write(block)
		n += int64(len(block))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestReadBenchLog reads the file ODOOLOG_BENCH_READ through the
// collector's pipeline and reports lines per second and the heap, sampled
// every 64 MiB: flat means bounded by the limits, not by the file.
func TestReadBenchLog(t *testing.T) {
	path := os.Getenv("ODOOLOG_BENCH_READ")
	if path == "" {
		t.Skip("ODOOLOG_BENCH_READ not set")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, p, matched := pipeline(t)
	buf := make([]byte, 64<<10)
	var read int64
	var heaps []string
	var ms runtime.MemStats
	begin := time.Now()
	for {
		n, err := f.Read(buf)
		s.Write(buf[:n])
		read += int64(n)
		if read%(64<<20) < int64(n) {
			runtime.ReadMemStats(&ms)
			heaps = append(heaps, fmt.Sprintf("%.1f", float64(ms.HeapInuse)/(1<<20)))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Flush()
	p.Flush()
	took := time.Since(begin)
	st := p.Stats()
	t.Logf("%d MiB, %d lines, %d records, %d matched in %v: %.0f lines/s, %.0f MiB/s",
		read>>20, st.Lines, st.Records, *matched, took.Round(time.Millisecond),
		float64(st.Lines)/took.Seconds(), float64(read)/(1<<20)/took.Seconds())
	t.Logf("heap in use (MiB) every 64 MiB: %s", strings.Join(heaps, " "))
}

// BenchmarkFilePollIdle measures one look at a followed file that did not
// change (what FileSource does every Poll): fstat, read to EOF, stat of
// the path.
//
//	go test -run '^$' -bench FilePollIdle -benchmem ./odoolog/
func BenchmarkFilePollIdle(b *testing.B) {
	path := filepath.Join(b.TempDir(), "odoo.log")
	if err := os.WriteFile(path, benchBlock(b), 0o644); err != nil {
		b.Fatal(err)
	}
	o := SourceOptions{}
	o.defaults()
	t := &tailer{path: path, o: o, out: io.Discard, buf: make([]byte, 64<<10)}
	t.step(true, true)
	if t.file == nil {
		b.Fatal("not opened")
	}
	b.ResetTimer()
	for range b.N {
		t.step(false, false)
	}
	t.close()
}
