//go:build unix

package main

import (
	"regexp"
	"strings"
	"testing"
)

var perfLine = regexp.MustCompile(`(?m)^(upload|download): (\d+) bytes in \d+\.\d\d s = \d+\.\d Mbit/s$`)

// TestPerf runs `mote perf` against a daemon started with --perf, over
// TCP and over QUIC.
func TestPerf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, listen, over string }{
		{"tcp", loopback, "/tcp/"},
		{"quic", "/ip4/127.0.0.1/udp/0/quic-v1", "/quic-v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := childEnv()
			repo := t.TempDir()
			d := startDaemon(t, env, repo, "--repo", repo, "--listen", tc.listen, "--perf")
			r := mustMote(t, env, "perf", "--upload", "1048576", "--download", "1048576", d.addr())
			if r.stderr != "" {
				t.Errorf("mote perf wrote to stderr:\n%s", r.stderr)
			}
			if !strings.HasPrefix(r.stdout, "PERF "+d.id+" (mote/") {
				t.Errorf("mote perf: output does not start with PERF %s:\n%s", d.id, r.stdout)
			}
			if first, _, _ := strings.Cut(r.stdout, "\n"); !strings.Contains(first, tc.over) {
				t.Errorf("mote perf: first line %q, want a connection over %s", first, tc.over)
			}
			got := map[string]string{}
			for _, m := range perfLine.FindAllStringSubmatch(r.stdout, -1) {
				got[m[1]] = m[2]
			}
			if got["upload"] != "1048576" || got["download"] != "1048576" {
				t.Errorf("mote perf: want an upload and a download line of 1048576 bytes:\n%s", r.stdout)
			}
			if !strings.Contains(d.stderr.String(), "/perf/1.0.0") {
				t.Errorf("daemon --perf gave no warning on stderr:\n%s", d.stderr)
			}
		})
	}
}

// TestPerfNotServed: a daemon without --perf refuses, and mote perf says
// so in one line.
func TestPerfNotServed(t *testing.T) {
	t.Parallel()
	env := childEnv()
	repo := t.TempDir()
	d := startDaemon(t, env, repo, "--repo", repo, "--listen", loopback)
	r := mote(t, env, "perf", "--upload", "1000", "--download", "1000", d.addr())
	if r.code != 1 {
		t.Fatalf("mote perf against a daemon without --perf: %s", r)
	}
	want := "Error: peer " + d.id + " does not support /perf/1.0.0"
	if !strings.HasPrefix(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr %q, want one line starting %q", r.stderr, want)
	}
	if strings.Contains(r.stdout, "upload:") {
		t.Errorf("mote perf printed results after a refusal:\n%s", r.stdout)
	}
}

func TestPerfUsage(t *testing.T) {
	t.Parallel()
	env := childEnv()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"perf"}, 1, "want one MULTIADDR"},
		{[]string{"perf", "--upload", "-1", "/ip4/127.0.0.1/tcp/1/p2p/x"}, 2, "invalid value"},
		{[]string{"perf", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"perf", "/ip4/127.0.0.1/tcp/1"}, 1, "/p2p/"},
	} {
		r := mote(t, env, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("mote %s: %s\nwant exit %d and %q", strings.Join(tc.args, " "), r, tc.code, tc.want)
		}
	}
}
