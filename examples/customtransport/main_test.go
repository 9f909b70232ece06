package main

import (
	"strings"
	"testing"
)

// TestRun runs the example: two nodes connect over the Unix transport,
// identify each other and ping three times.
func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	for _, want := range []string{
		"listening on /unix/",
		"B connected to A over unix (/noise, /yamux/1.0.0)",
		"identify: A runs mote/",
		"/ipfs/ping/1.0.0",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "\nping A: "); n != 3 {
		t.Errorf("%d pings, want 3:\n%s", n, out.String())
	}
}
