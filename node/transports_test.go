package node

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/transport/quic"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// countingTransport counts the dials of the transport it wraps.
type countingTransport struct {
	transport.Transport
	dials atomic.Int32
}

func (c *countingTransport) Dial(ctx context.Context, addr ma.Multiaddr, remote peer.ID) (transport.Conn, error) {
	c.dials.Add(1)
	return c.Transport.Dial(ctx, addr, remote)
}

// TestConfigTransports: transports given in Config are made before the
// first listen, carry the node's connections, and replace the defaults.
func TestConfigTransports(t *testing.T) {
	ctx := testCtx(t)
	mn := transport.NewMemNetwork()
	var made *countingTransport
	counting := func(env TransportEnv) (transport.Transport, error) {
		if env.Upgrader == nil || env.Key == nil || env.TLS == nil || env.Limits.MaxInboundStreams == 0 {
			t.Errorf("transport environment lacks something: %+v", env)
		}
		inner, err := Memory(mn)(env)
		made = &countingTransport{Transport: inner}
		return made, err
	}
	a := newNode(t, mn, true) // listens on /memory/0 through Config.Transports
	b, err := New(Config{Transports: []TransportMaker{counting}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Connect(ctx, a.ID(), a.Addrs()...); err != nil {
		t.Fatal(err)
	}
	if got := made.dials.Load(); got != 1 {
		t.Errorf("the configured transport dialed %d times, want 1", got)
	}
	if b.CanListen(ma.StringCast("/ip4/127.0.0.1/tcp/0")) {
		t.Error("a node given only the memory transport can listen on TCP")
	}
}

// fakeClass is a transport that only says its dial class.
type fakeClass struct {
	transport.Transport
	class transport.DialClass
}

func (f fakeClass) DialClass(ma.Multiaddr) transport.DialClass { return f.class }

// TestPlanClasses: QUIC first, direct transports a head start later,
// relayed addresses a head start after those; a class with no address
// adds no wait.
func TestPlanClasses(t *testing.T) {
	const h = 250 * time.Millisecond
	q := fakeClass{class: transport.DialFirst}
	r := fakeClass{class: transport.DialRelay}
	var plain transport.Transport = &transport.TCP{}
	for _, tc := range []struct {
		name    string
		in      []transport.Transport
		classes []transport.DialClass
		delays  []time.Duration
	}{
		{"quic tcp relay", []transport.Transport{r, plain, q}, []transport.DialClass{0, 1, 2}, []time.Duration{0, h, 2 * h}},
		{"tcp only", []transport.Transport{plain, plain}, []transport.DialClass{1, 1}, []time.Duration{0, 0}},
		{"tcp and relay", []transport.Transport{r, plain}, []transport.DialClass{1, 2}, []time.Duration{0, h}},
		{"two quic one tcp", []transport.Transport{plain, q, q}, []transport.DialClass{0, 0, 1}, []time.Duration{0, 0, h}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var targets []dialTarget
			for _, tr := range tc.in {
				targets = append(targets, dialTarget{t: tr, class: dialClass(tr, nil)})
			}
			got := planClasses(targets, h)
			for i, g := range got {
				if g.class != tc.classes[i] || g.delay != tc.delays[i] {
					t.Errorf("target %d: class %d after %v, want class %d after %v", i, g.class, g.delay, tc.classes[i], tc.delays[i])
				}
			}
		})
	}
}

// TestCircuitNotDirect: no built-in transport takes a relayed address
// for a direct one.
func TestCircuitNotDirect(t *testing.T) {
	key, err := peer.GenerateEd25519(nil)
	if err != nil {
		t.Fatal(err)
	}
	up, err := transport.NewUpgrader(transport.UpgraderConfig{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	qt, err := quic.New(quic.Config{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer qt.Close()
	relay, target := peer.IDFromPublicKey(key.Public()), peer.IDFromPublicKey(key.Public())
	for _, tr := range []struct {
		name string
		t    transport.Transport
		base string
	}{
		{"tcp", transport.NewTCP(up), "/ip4/192.0.2.1/tcp/4001"},
		{"quic", qt, "/ip4/192.0.2.1/udp/4001/quic-v1"},
		{"memory", transport.NewMem(transport.NewMemNetwork(), up), "/memory/7"},
	} {
		direct := ma.StringCast(tr.base)
		circuit := ma.StringCast(tr.base + "/p2p/" + relay.String() + "/p2p-circuit/p2p/" + target.String())
		if !tr.t.CanDial(direct) {
			t.Errorf("%s does not take its own address %s", tr.name, direct)
		}
		if tr.t.CanDial(circuit) {
			t.Errorf("%s takes the relayed address %s for a direct one", tr.name, circuit)
		}
	}
}
