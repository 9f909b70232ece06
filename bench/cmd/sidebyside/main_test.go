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

// TestQuick runs the whole comparison in its -quick form (both stacks,
// 20 connections, 8 MiB, a 1 s accept-rate window, this machine's
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
	if len(res.Stacks) != 2 || res.Stacks[0].Name != stackMote || res.Stacks[1].Name != stackLibp2p {
		t.Fatalf("stacks %v: want mote and go-libp2p", res.Stacks)
	}
	for _, s := range res.Stacks {
		if len(s.Conns) != 2 || len(s.Latency) != 2 || len(s.Throughput) != 2 {
			t.Errorf("%s: %d connection, %d latency, %d throughput results; want 2 each (TCP, QUIC)",
				s.Name, len(s.Conns), len(s.Latency), len(s.Throughput))
		}
	}
	if len(res.Sizes) != 1 {
		t.Errorf("%d binary sizes; want one architecture", len(res.Sizes))
	}

	if !strings.HasPrefix(table, "| Figure | mote | go-libp2p ") {
		t.Errorf("table header: %q", strings.SplitN(table, "\n", 2)[0])
	}
	rows := 0
	for line := range strings.Lines(table) {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| Figure") {
			rows++
			if cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|"); len(cells) != 4 {
				t.Errorf("row %q: %d cells, want 4", line, len(cells))
			}
		}
	}
	if want := 2 + 3 + 2*3 + 4 + 2 + 2; rows != want {
		t.Errorf("table has %d rows, want %d", rows, want)
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
