package interop

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain obtains the Kubo binary once, building it if needed. The suite
// FAILS (never skips) if that is impossible.
func TestMain(m *testing.M) {
	flag.Parse()
	// `go test` kills the test binary at -timeout + 1m, counted from when
	// the binary starts, so the build must leave room for the tests.
	budget := 20 * time.Minute
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 0 {
			budget = max(d-90*time.Second, 30*time.Second)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	info, err := EnsureKuboBinary(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: interop: cannot obtain Kubo v%s binary (build budget %v; prebuild with "+
			"`cd interop/kubo && go build -trimpath -o <cache>/kubo-v%s/ipfs %s` or raise -timeout): %v\n",
			KuboVersion, budget, KuboVersion, kuboPkg, err)
		os.Exit(1)
	}
	if info.Built {
		fmt.Fprintf(os.Stderr, "interop: built Kubo v%s in %v -> %s\n", info.Version, info.BuildDuration.Round(time.Second), info.Path)
	} else {
		fmt.Fprintf(os.Stderr, "interop: using cached Kubo v%s at %s\n", info.Version, info.Path)
	}
	os.Exit(m.Run())
}

func missingProtocols(have []string, want ...string) []string {
	var m []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			m = append(m, w)
		}
	}
	return m
}

func hasPeer(peers []string, id string) bool {
	for _, p := range peers {
		if strings.HasSuffix(p, "/p2p/"+id) {
			return true
		}
	}
	return false
}

func startKuboT(t *testing.T, ctx context.Context, opts KuboOptions) *Kubo {
	t.Helper()
	k, err := StartKubo(ctx, t, opts)
	if err != nil {
		t.Fatalf("StartKubo(%+v): %v", opts, err)
	}
	t.Logf("kubo %s started in %v: %v", k.ID(), k.StartupDuration().Round(time.Millisecond), k.Addrs())
	return k
}

func TestKuboHarness(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	a := startKuboT(t, ctx, KuboOptions{})
	b := startKuboT(t, ctx, KuboOptions{})
	for _, k := range []*Kubo{a, b} {
		if k.TCPAddr() == "" || k.QUICAddr() == "" {
			t.Fatalf("kubo %s: missing TCP or QUIC addr in %v", k.ID(), k.Addrs())
		}
		for _, addr := range k.Addrs() {
			if !strings.HasPrefix(addr, "/ip4/127.0.0.1/") {
				t.Errorf("kubo %s listens on non-loopback %s", k.ID(), addr)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("kubo startup output:\n%s", a.Output())

	if err := b.SwarmConnect(ctx, a.TCPAddr()); err != nil {
		t.Fatalf("SwarmConnect: %v", err)
	}
	for _, c := range []struct{ self, other *Kubo }{{a, b}, {b, a}} {
		peers, err := c.self.SwarmPeers(ctx)
		if err != nil {
			t.Fatalf("SwarmPeers: %v", err)
		}
		if !hasPeer(peers, c.other.ID()) {
			t.Fatalf("%s swarm peers %v lacks %s", c.self.ID(), peers, c.other.ID())
		}
	}

	info, err := b.IDOf(ctx, a.ID())
	if err != nil {
		t.Fatalf("IDOf: %v", err)
	}
	t.Logf("identify of kubo: agent %q protocols %v addrs %v", info.AgentVersion, info.Protocols, info.Addresses)
	if info.ID != a.ID() || info.PublicKey != a.PublicKey() {
		t.Errorf("IDOf: ID/key %s/%s, want %s/%s", info.ID, info.PublicKey, a.ID(), a.PublicKey())
	}
	if !strings.HasPrefix(info.AgentVersion, "kubo/"+KuboVersion) {
		t.Errorf("agent version %q, want prefix kubo/%s", info.AgentVersion, KuboVersion)
	}
	if m := missingProtocols(info.Protocols, "/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"); len(m) > 0 {
		t.Errorf("protocols %v missing %v", info.Protocols, m)
	}

	rtts, err := b.Ping(ctx, a.ID(), 3)
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	t.Logf("ping RTTs b->a: %v", rtts)

	// QUIC too.
	if err := a.SwarmConnect(ctx, b.QUICAddr()); err != nil {
		t.Fatalf("SwarmConnect over QUIC: %v", err)
	}
}

// TestKuboSecurityOption proves KuboOptions.Security really restricts the
// offered security protocols: a Noise-only and a TLS-only node cannot
// connect over TCP, while each can connect to a default node.
func TestKuboSecurityOption(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	tcpOnly := []string{"/ip4/127.0.0.1/tcp/0"}
	noise := startKuboT(t, ctx, KuboOptions{Security: "noise", Swarm: tcpOnly})
	tls := startKuboT(t, ctx, KuboOptions{Security: "tls", Swarm: tcpOnly})
	both := startKuboT(t, ctx, KuboOptions{Swarm: tcpOnly})

	// The effective config (as the running daemon reports it).
	for _, c := range []struct {
		k         *Kubo
		key, want string
	}{
		{noise, "Swarm.Transports.Security.TLS", "false"},
		{tls, "Swarm.Transports.Security.Noise", "false"},
		{both, "AutoConf.Enabled", "false"},
		{both, "AutoTLS.Enabled", "false"},
		{both, "Routing.Type", "none"},
		{both, "Plugins.Plugins.telemetry.Disabled", "true"},
	} {
		out, err := c.k.Run(ctx, "config", c.key)
		if got := strings.TrimSpace(string(out)); err != nil || got != c.want {
			t.Errorf("ipfs config %s = %q, %v; want %q", c.key, got, err, c.want)
		}
	}

	if err := noise.SwarmConnect(ctx, tls.TCPAddr()); err == nil {
		t.Errorf("noise-only node connected to tls-only node; Security option ineffective")
	} else {
		t.Logf("noise->tls failed as expected: %v", err)
	}
	for _, k := range []*Kubo{noise, tls} {
		if err := k.SwarmConnect(ctx, both.TCPAddr()); err != nil {
			t.Errorf("%s -> default node: %v", k.ID(), err)
		}
	}

	if _, err := StartKubo(ctx, t, KuboOptions{Swarm: []string{"/ip4/0.0.0.0/tcp/0"}}); err == nil {
		t.Errorf("non-loopback swarm address accepted")
	}
}
