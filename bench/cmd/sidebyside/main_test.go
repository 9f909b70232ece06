package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary serve as the children of a -quick run.
func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(mainArgs(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestQuick runs the whole comparison in its -quick form (all three
// stacks, 20 connections, 8 MiB, a 1 s accept-rate window, this machine's
// architecture only) and checks that every figure was measured.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both stacks and runs them; skipped with -short")
	}
	dir := t.TempDir()
	jsonPath, svgPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "m.svg")
	var stdout, stderr bytes.Buffer
	code := mainArgs([]string{"-quick", "-json", jsonPath, "-svg", svgPath}, &stdout, &stderr)
	t.Logf("progress:\n%s", stderr.String())
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	table := stdout.String()
	t.Logf("table:\n%s", table)

	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range zeroFields(doc, "") {
		t.Errorf("JSON field %s is zero or empty", p)
	}
	var res Results
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Stacks) != 3 || res.Stacks[0].Name != stackMote || res.Stacks[1].Name != stackLibp2p || res.Stacks[2].Name != stackQuicGo {
		t.Fatalf("stacks %v: want mote, go-libp2p and quic-go", res.Stacks)
	}
	for _, s := range res.Stacks {
		want := 2 // TCP, QUIC
		if s.Name == stackQuicGo {
			want = 1 // QUIC only
		}
		if len(s.Conns) != want || len(s.Latency) != want || len(s.Throughput) != want {
			t.Errorf("%s: %d connection, %d latency, %d throughput results; want %d each",
				s.Name, len(s.Conns), len(s.Latency), len(s.Throughput), want)
		}
	}
	if len(res.Sizes) != 1 {
		t.Errorf("%d binary sizes; want one architecture", len(res.Sizes))
	}

	if !strings.HasPrefix(table, "| Figure | mote | go-libp2p ") {
		t.Errorf("table header: %q", strings.SplitN(table, "\n", 2)[0])
	}
	if rows := tableRows(t, table, "| Figure", 4); rows != 2+3+2*3+4+2+2 {
		t.Errorf("table has %d rows, want %d", rows, 2+3+2*3+4+2+2)
	}
	if rows := tableRows(t, table, "| QUIC figure", 6); rows != 3+3 {
		t.Errorf("QUIC table has %d rows, want %d", rows, 3+3)
	}

	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(svg, []byte("<svg")) || bytes.Count(svg, []byte("<polyline")) != 4 {
		t.Errorf("SVG: want an <svg> with 4 lines, got %d lines", bytes.Count(svg, []byte("<polyline")))
	}
	for _, label := range []string{"mote TCP", "mote QUIC", "go-libp2p TCP", "go-libp2p QUIC"} {
		if !bytes.Contains(svg, []byte(">"+label+"<")) {
			t.Errorf("SVG has no legend %q", label)
		}
	}
}

// tableRows counts the rows of the markdown table in text whose header
// starts with header (header and separator not counted), and checks that
// each has cells cells. The table ends at the first line that is not a
// row.
func tableRows(t *testing.T, text, header string, cells int) int {
	t.Helper()
	rows, in := 0, false
	for line := range strings.Lines(text) {
		switch {
		case strings.HasPrefix(line, header):
			in = true
			continue
		case !in || strings.HasPrefix(line, "|---"):
			continue
		case !strings.HasPrefix(line, "| "):
			return rows
		}
		rows++
		if n := len(strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")); n != cells {
			t.Errorf("row %q: %d cells, want %d", line, n, cells)
		}
	}
	if !in {
		t.Errorf("no table with header %q", header)
	}
	return rows
}

// TestQuicTable checks, without measuring, that the QUIC table appears
// exactly when the results carry quic-go alone, with its figures and the
// ratio and difference to mote; that the first table keeps its three
// value columns; and that quic-go's JSON leaves out the idle host and the
// accept rate, which it does not measure.
func TestQuicTable(t *testing.T) {
	res := &Results{
		GoLibp2p: "v0.51.0",
		QuicGo:   "v0.64.1",
		Params:   Params{Conns: []int{100, 1000}, Bytes: 8 << 20},
		Stacks: []StackResult{
			{Name: stackMote, Idle: IdleResult{RSS: 1 << 20}, Rate: RateResult{PerSec: 1},
				Conns:      []ConnResult{{Transport: "quic", N: 100, RSSPerConn: 80 << 10}, {Transport: "quic", N: 1000, RSSPerConn: 60 << 10}},
				Latency:    []LatencyResult{{Transport: "quic", P50Ms: 4, P99Ms: 5}},
				Throughput: []ThroughputResult{{Transport: "quic", MBps: 190}}},
			{Name: stackLibp2p, Idle: IdleResult{RSS: 2 << 20}, Rate: RateResult{PerSec: 1},
				Conns:      []ConnResult{{Transport: "quic", N: 100, RSSPerConn: 90 << 10}},
				Throughput: []ThroughputResult{{Transport: "quic", MBps: 180}}},
		},
	}
	if table := res.table(); strings.Contains(table, "quic-go alone") {
		t.Errorf("table without quic-go results has a quic-go table:\n%s", table)
	}
	res.Stacks = append(res.Stacks, StackResult{Name: stackQuicGo,
		Conns:      []ConnResult{{Transport: "quic", N: 100, RSSPerConn: 76 << 10}, {Transport: "quic", N: 1000, RSSPerConn: 58 << 10}},
		Latency:    []LatencyResult{{Transport: "quic", P50Ms: 2, P99Ms: 4}},
		Throughput: []ThroughputResult{{Transport: "quic", MBps: 200}}})
	table := res.table()
	if rows := tableRows(t, table, "| Figure", 4); rows == 0 {
		t.Error("first table has no rows")
	}
	if rows := tableRows(t, table, "| QUIC figure", 6); rows != 2*3+3 {
		t.Errorf("QUIC table has %d rows, want %d:\n%s", rows, 2*3+3, table)
	}
	for _, want := range []string{
		"| QUIC figure | mote | go-libp2p v0.51.0 | quic-go alone | mote ÷ quic-go | mote − quic-go |",
		"| 100 idle connections, per connection at the listener: RSS | 80.0 KiB | 90.0 KiB | 76.0 KiB | 1.05 | +4.0 KiB |",
		"| 1000 idle connections, per connection at the listener: RSS | 60.0 KiB | 0.0 KiB | 58.0 KiB | 1.03 | +2.0 KiB |",
		"| Dial → first stream 1-byte echo, p50 | 4.00 ms | 0.00 ms | 2.00 ms | 2.00 | +2.00 ms |",
		"| One-stream throughput (8 MiB, 64 KiB writes) | 190 MB/s | 180 MB/s | 200 MB/s | 0.95 | -10 MB/s |",
	} {
		if !strings.Contains(table, want+"\n") {
			t.Errorf("table has no row %q:\n%s", want, table)
		}
	}

	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Stacks []map[string]json.RawMessage `json:"stacks"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, s := range doc.Stacks {
		var name string
		json.Unmarshal(s["name"], &name)
		_, idle := s["idle"]
		_, rate := s["rate"]
		if wantBoth := name != stackQuicGo; idle != wantBoth || rate != wantBoth {
			t.Errorf("JSON of %s: idle %v, rate %v; want %v", name, idle, rate, wantBoth)
		}
	}
}

// zeroFields lists the paths of numbers that are 0, strings that are
// empty and arrays or objects that are empty in a decoded JSON document.
func zeroFields(v any, path string) []string {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			return []string{path}
		}
		var out []string
		for k, x := range v {
			out = append(out, zeroFields(x, path+"."+k)...)
		}
		return out
	case []any:
		if len(v) == 0 {
			return []string{path}
		}
		var out []string
		for i, x := range v {
			out = append(out, zeroFields(x, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	case float64:
		if v == 0 {
			return []string{path}
		}
	case string:
		if v == "" {
			return []string{path}
		}
	case nil:
		return []string{path}
	}
	return nil
}
