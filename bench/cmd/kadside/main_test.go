package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestMain lets the test binary serve as the measured servers of a -self
// run.
func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(mainArgs(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestSmoke runs a small network (12 servers, 8 keys) with the measured
// servers started from the test binary, and checks that both stacks'
// servers were measured (figures and profiles) and both clients found
// every key's providers.
// The figures themselves are measurements, not checked.
func TestSmoke(t *testing.T) {
	const keys = 8
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "r.json")
	var stdout, stderr bytes.Buffer
	code := mainArgs([]string{"-self", "-nodes", "12", "-keys", "8", "-json", jsonPath, "-pprof", dir}, nil, &stdout, &stderr)
	t.Logf("progress:\n%s", stderr.String())
	t.Logf("table:\n%s", stdout.String())
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if res.Params.MoteServers != 6 || res.Params.GoServers != 6 {
		t.Errorf("servers: %d mote, %d go; want 6 each", res.Params.MoteServers, res.Params.GoServers)
	}
	if res.Provides.Records != keys*2 || res.Provides.Failed != 0 {
		t.Errorf("provides: %d records, %d failed; want %d, 0", res.Provides.Records, res.Provides.Failed, keys*2)
	}
	if len(res.Servers) != 2 || len(res.Clients) != 2 {
		t.Fatalf("%d servers, %d clients measured; want 2 each", len(res.Servers), len(res.Clients))
	}
	for i, name := range []string{stackMote, stackGo} {
		s := res.Servers[i]
		if s.Stack != name || s.BaseRSS <= 0 {
			t.Errorf("server %d is %q with base RSS %d, want %q and a base RSS", i, s.Stack, s.BaseRSS, name)
		}
		for _, prof := range []string{"goroutine", "heap"} {
			if fi, err := os.Stat(filepath.Join(dir, "kadside-"+name+"-"+prof+".txt")); err != nil || fi.Size() == 0 {
				t.Errorf("%s server's %s profile: %v", name, prof, err)
			}
		}
		for phase, st := range map[string]ServerStats{"formed": s.Formed, "loaded": s.Loaded} {
			if st.RSS <= 0 || st.PeakRSS < st.RSS || st.Goroutines <= 0 || st.HeapInuse == 0 || st.Table == 0 {
				t.Errorf("%s server, %s: %+v: want RSS, goroutines, heap and a routing table", name, phase, st)
			}
		}
		c := res.Clients[i]
		if c.Stack != name {
			t.Errorf("client %d is %q, want %q", i, c.Stack, name)
		}
		if c.Lookups != keys || c.Failed != 0 || c.FoundAll != keys || len(c.LatencyNs) != keys {
			t.Errorf("%s client: %d lookups, %d failed, %d found every provider, %d samples; want %d, 0, %d, %d (first error %q)",
				name, c.Lookups, c.Failed, c.FoundAll, len(c.LatencyNs), keys, keys, keys, c.FirstError)
		}
		for j, n := range c.Requests {
			if n <= 0 {
				t.Errorf("%s client: lookup %d sent %d requests", name, j, n)
			}
		}
	}
	if rows := strings.Count(stdout.String(), "\n| "); rows != 1+17 {
		t.Errorf("table has %d rows with the header, want 18", rows)
	}
}

func TestParseBootstrap(t *testing.T) {
	const id = "12D3KooWGRUVh7NJrDdyGsPwVvfWHmwwdkH5B1ydRwjx9ZwfY3Uv"
	tests := []struct {
		in      string
		want    []addrInfo
		wantErr bool
	}{
		{"", nil, false},
		{"/ip4/127.0.0.1/tcp/4001/p2p/" + id, []addrInfo{{ID: id, Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}}}, false},
		{"/p2p/" + id, []addrInfo{{ID: id}}, false},
		{" /ip4/127.0.0.1/tcp/1/p2p/a , /ip4/127.0.0.1/tcp/2/p2p/b,", []addrInfo{
			{ID: "a", Addrs: []string{"/ip4/127.0.0.1/tcp/1"}},
			{ID: "b", Addrs: []string{"/ip4/127.0.0.1/tcp/2"}},
		}, false},
		{"/ip4/127.0.0.1/tcp/4001", nil, true},
		{"/ip4/127.0.0.1/tcp/4001/p2p/", nil, true},
	}
	for _, tt := range tests {
		got, err := parseBootstrap(tt.in)
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseBootstrap(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil {
			var args []string
			for _, ai := range got {
				args = append(args, ai.bootstrapArg())
			}
			if again, err := parseBootstrap(strings.Join(args, ",")); err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("parseBootstrap(%q) round trip: %v, %v", tt.in, again, err)
			}
		}
	}
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		v    []int
		p    float64
		want float64
	}{
		{nil, 50, 0},
		{[]int{7}, 50, 7},
		{[]int{7}, 90, 7},
		{[]int{4, 1, 3, 2}, 50, 2},
		{[]int{4, 1, 3, 2}, 90, 4},
		{[]int{4, 1, 3, 2}, 0, 1},
		{[]int{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 90, 90},
	}
	for _, tt := range tests {
		if got := percentile(tt.v, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.v, tt.p, got, tt.want)
		}
	}
}

// TestBadArgs checks that bad flags and bad -serve arguments end with a
// message, not a panic or a hang.
func TestBadArgs(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string // in stdout (the child's error line) or stderr
	}{
		{[]string{"-nodes", "3"}, 2, "-nodes must be at least 4"},
		{[]string{"-keys", "0"}, 2, "positive"},
		{[]string{"-nodes", "6", "-providers", "5"}, 2, "only 4 servers"},
		{[]string{"-no-such-flag"}, 2, "not defined"},
		{[]string{"-serve", "nosuch"}, 1, `{"error":"-serve \"nosuch\": this binary has no such stack"}`},
		{[]string{"-serve", stackMote, "-bootstrap", "/ip4/127.0.0.1/tcp/1"}, 1, "no /p2p/ID at the end"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := mainArgs(tt.args, strings.NewReader(""), &stdout, &stderr)
		if code != tt.code || !strings.Contains(stdout.String()+stderr.String(), tt.want) {
			t.Errorf("%v: exit %d, output %q %q; want exit %d and %q", tt.args, code, stdout.String(), stderr.String(), tt.code, tt.want)
		}
	}
}
