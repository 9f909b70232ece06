package abuse

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/ping"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// privateAddrs are what an attacker advertises to make the daemon probe a
// stranger's LAN: private, link-local and shared ranges the server
// preset's dial filter (Kubo's server profile) covers. The suite never
// sends a packet to them: the daemon only ever learns them from an
// in-process node whose transport refuses anything but loopback.
var privateAddrs = []string{
	"/ip4/10.0.0.1/tcp/4001",
	"/ip4/169.254.1.1/tcp/4001",
	"/ip4/192.168.1.1/tcp/1",
	"/ip4/172.16.0.1/tcp/4001",
	"/ip4/100.64.0.1/tcp/4001",
	"/ip6/fe80::1/tcp/4001",
	"/ip6/fc00::1/tcp/4001",
}

// guardedTCP is the TCP transport recording every address the node
// tries, and refusing (before any socket is made) all but loopback ones,
// so that a node that fails to filter still sends nothing off the host.
type guardedTCP struct {
	transport.Transport
	mu     sync.Mutex
	tried  []ma.Multiaddr
	leaked []ma.Multiaddr // tried and not loopback
}

var errOffLoopback = errors.New("abuse: refusing to dial off loopback")

func (g *guardedTCP) Dial(ctx context.Context, addr ma.Multiaddr, id peer.ID) (transport.Conn, error) {
	g.mu.Lock()
	g.tried = append(g.tried, addr)
	loop := ma.IsIPLoopback(addr)
	if !loop {
		g.leaked = append(g.leaked, addr)
	}
	g.mu.Unlock()
	if !loop {
		return nil, errOffLoopback
	}
	return g.Transport.Dial(ctx, addr, id)
}

func (g *guardedTCP) dialsOffLoopback() []ma.Multiaddr {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]ma.Multiaddr(nil), g.leaked...)
}

// TestDialFilterNode: a node configured as the daemon is with the server
// preset (its limits and node.ServerAddrFilters) learns private and
// link-local addresses of a peer from identify; once the peer has left,
// dialing it by ID (as any protocol service would, NewStream or Connect)
// must be refused by the filter, with an error that says so, before any
// socket is opened.
func TestDialFilterNode(t *testing.T) {
	limits, err := node.Preset("server")
	if err != nil {
		t.Fatal(err)
	}
	g := &guardedTCP{}
	n, err := node.New(node.Config{
		Limits:        limits,
		AddrFilters:   node.ServerAddrFilters(),
		LimitLoopback: true,
		Transports: []node.TransportMaker{func(env node.TransportEnv) (transport.Transport, error) {
			g.Transport = transport.NewTCP(env.Upgrader)
			return g, nil
		}},
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()

	p := newRawPeer(t)
	var addrs [][]byte
	for _, s := range privateAddrs {
		addrs = append(addrs, ma.StringCast(s).Bytes())
	}
	p.answer = identifyFrames(t, p.key, addrs, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := p.dialTo(ctx, n.ID(), n.Addrs()[0], attackerIP(0))
	if err != nil {
		t.Fatal(err)
	}
	// The node's side of identify: closed once it stored what we said.
	nc := n.Conns(p.id)
	for len(nc) == 0 {
		if ctx.Err() != nil {
			t.Fatal("node never registered the attacker's connection")
		}
		time.Sleep(10 * time.Millisecond) // polling
		nc = n.Conns(p.id)
	}
	select {
	case <-nc[0].Identified():
	case <-ctx.Done():
		t.Fatal("node did not finish identifying the attacker")
	}
	learned := n.Peerstore().Addrs(p.id)
	c.close()
	waitDisconnected(t, ctx, n, p.id)

	_, connErr := n.Connect(ctx, p.id)
	_, streamErr := n.NewStream(ctx, p.id, ping.ID)
	leaked := g.dialsOffLoopback()
	t.Logf("dial-filter            node   | learned %d addrs from identify | Connect: %v | NewStream: %v | dials off loopback: %d %v",
		len(learned), connErr, streamErr, len(leaked), leaked)
	if len(learned) == 0 {
		t.Fatalf("node kept none of the advertised addresses: the test proves nothing")
	}
	if connErr == nil || !strings.Contains(connErr.Error(), "AddrFilters") {
		t.Errorf("Connect to the peer by ID: %v; want a refusal naming the dial filter (AddrFilters)", connErr)
	}
	// The refusal counts as a failed dial: the next one may be refused by
	// the backoff it set, still without a socket.
	if streamErr == nil || !strings.Contains(streamErr.Error(), "AddrFilters") && !errors.Is(streamErr, node.ErrDialBackoff) {
		t.Errorf("NewStream to the peer by ID: %v; want a refusal by the dial filter (AddrFilters) or its backoff", streamErr)
	}
	if len(leaked) > 0 {
		t.Errorf("node tried to dial %v, which the server preset's filter covers (refused by the test before any socket)", leaked)
	}
}

// waitDisconnected polls until the node has no connection to id.
func waitDisconnected(t *testing.T, ctx context.Context, n *node.Node, id peer.ID) {
	t.Helper()
	for len(n.Conns(id)) > 0 {
		if ctx.Err() != nil {
			t.Fatalf("peer %s still connected: %v", id, ctx.Err())
		}
		time.Sleep(10 * time.Millisecond) // polling
	}
}

// canaryRange is a loopback range the daemon's dial filter is configured
// to cover, besides Kubo's server-profile ranges, so that a dial the
// filter should have stopped reaches a listener of the test instead of a
// stranger's LAN.
const (
	canaryRange = "/ip4/127.0.0.16/ipcidr/28"
	canaryIP    = "127.0.0.20"
)

// serverProfileFilters are node.ServerAddrFilters in config form.
func serverProfileFilters() []string {
	var out []string
	for _, p := range node.ServerAddrFilters() {
		ip := "ip4"
		if p.Addr().Is6() {
			ip = "ip6"
		}
		out = append(out, "/"+ip+"/"+p.Addr().String()+"/ipcidr/"+strconv.Itoa(p.Bits()))
	}
	return out
}

// TestDialFilterDaemon: the daemon, with the server preset and its dial
// filter extended to a loopback canary range, learns a canary address of
// an attacker from identify. Once the attacker has left, `mote swarm
// connect /p2p/<id>` (the only way to have the daemon dial a known peer by
// ID from outside; the user gave no address) must be refused by the
// filter with an error saying so, and nothing may reach the canary.
func TestDialFilterDaemon(t *testing.T) {
	filters := append(serverProfileFilters(), canaryRange)
	d := startDaemon(t, daemonConfig{preset: "server", addrFilters: filters})
	canary, err := net.Listen("tcp", canaryIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	var reached atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := canary.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			c.Close()
		}
	}()
	defer func() {
		canary.Close()
		wg.Wait()
	}()
	canaryAddr, err := ma.FromNetAddr(canary.Addr())
	if err != nil {
		t.Fatal(err)
	}

	p := newRawPeer(t)
	p.answer = identifyFrames(t, p.key, [][]byte{canaryAddr.Bytes()}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := p.dial(ctx, d, attackerIP(0))
	if err != nil {
		t.Fatal(err)
	}
	// The daemon stores the agent and then the addresses of a peer's
	// identify under one lock, which its removal of the connection
	// takes too: once swarm peers shows the agent, the canary address
	// is stored by the time the daemon has let the connection go.
	deadline := time.Now().Add(10 * time.Second)
	for !daemonKnowsAgent(t, d, p.id.String(), "abuse/0") {
		if time.Now().After(deadline) {
			t.Fatal("daemon did not take the attacker's identify")
		}
		time.Sleep(10 * time.Millisecond) // polling
	}
	c.close()
	d.waitStats(t, 10*time.Second, "attacker gone", func(st daemonStats) bool { return st.Conns == 0 })

	out, connectErr := runMote("swarm", "connect", "--repo", d.repo, "/p2p/"+p.id.String())
	t.Logf("dial-filter            server | canary %s in identify | swarm connect /p2p/<id>: %q, %v | connections reaching the canary: %d",
		canaryAddr, strings.TrimSpace(string(out)), connectErr, reached.Load())
	if connectErr == nil || !strings.Contains(connectErr.Error(), "AddrFilters") {
		t.Errorf("mote swarm connect /p2p/<id> of a peer known only by filtered addresses: %v; want a refusal naming the dial filter (AddrFilters)", connectErr)
	}
	if n := reached.Load(); n > 0 {
		t.Errorf("the daemon dialed the filtered address %s (%d connections reached it): addresses learned from the network bypass Swarm.AddrFilters under swarm connect", canaryAddr, n)
	}
}

// daemonKnowsAgent reports whether the daemon's swarm/peers (the API's
// JSON, which has the agents `mote swarm peers` does not print) lists id
// with agent.
func daemonKnowsAgent(t *testing.T, d *daemon, id, agent string) bool {
	t.Helper()
	addr, token := d.apiEndpoint(t)
	a := apiCall(t, addr, `{"Cmd":"swarm/peers","Token":"`+token+`"}`)
	if a.Error != "" {
		t.Fatalf("swarm/peers: %s", a.Error)
	}
	var peers []struct{ Peer, Agent string }
	if err := json.Unmarshal(a.Result, &peers); err != nil {
		t.Fatalf("swarm/peers: %v", err)
	}
	for _, p := range peers {
		if p.Peer == id && p.Agent == agent {
			return true
		}
	}
	return false
}
