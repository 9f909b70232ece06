// The simulations here run thousands of goroutines inside
// testing/synctest bubbles, which crash the race detector itself
// ("ThreadSanitizer: CHECK failed", golang/go#78156, open in Go 1.26):
// they run in the plain test run only. The race run covers the DHT's
// concurrency on real sockets (dual_test.go) and its stores.

//go:build !race

package kademlia

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// simDHT is one node of a simulated network and its DHT.
type simDHT struct {
	n *node.Node
	d *DHT
}

func (s simDHT) info() peer.AddrInfo {
	return peer.AddrInfo{ID: s.n.ID(), Addrs: s.n.ListenAddrs()}
}

// newSim starts count DHT servers on one simulated network with the
// given link, each on a host of its own, and bootstraps each from the
// first (so that the whole network forms from one seed, as it does from
// a bootstrap list). It must run inside a synctest bubble.
func newSim(t *testing.T, count int, link transport.Link, mut func(*Config)) (*transport.MemNetwork, []simDHT) {
	t.Helper()
	mn := transport.NewMemNetworkWith(transport.MemConfig{Link: link})
	nodes := make([]simDHT, count)
	for i := range nodes {
		nodes[i] = addSim(t, mn, ModeServer, mut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for i := 1; i < count; i++ {
		if err := nodes[i].d.Bootstrap(ctx, nodes[0].info()); err != nil {
			t.Fatalf("bootstrap %d: %v", i, err)
		}
	}
	// A second self lookup by each, as the first nodes bootstrapped
	// into a small network: this is what the refresh does in life.
	for i := range nodes {
		nodes[i].d.Refresh(ctx)
	}
	synctest.Wait()
	return mn, nodes
}

func addSim(t *testing.T, mn *transport.MemNetwork, mode Mode, mut func(*Config)) simDHT {
	t.Helper()
	return addSimNode(t, mn, mode, node.Limits{}, mut)
}

// addSimNode is addSim with the node's limits (zero fields: the
// server preset's).
func addSimNode(t *testing.T, mn *transport.MemNetwork, mode Mode, limits node.Limits, mut func(*Config)) simDHT {
	t.Helper()
	h := mn.NewHost()
	n, err := node.New(node.Config{
		Transports:  []node.TransportMaker{node.Memory(h.Network())},
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/memory/0")},
		Limits:      limits,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Mode: mode, RefreshInterval: -1}
	if mut != nil {
		mut(&cfg)
	}
	d, err := New(n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Close()
		n.Close()
	})
	return simDHT{n, d}
}

// settle lets a simulated network's traffic in flight arrive, in fake
// time: the identify push a mode switch sends, the liveness check it
// sets off, the records a provide sends after it returned.
func settle() {
	time.Sleep(time.Second)
	synctest.Wait()
}

func TestSimulatedLookups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := newSim(t, 40, transport.Link{Latency: 20 * time.Millisecond}, nil)
		ctx := context.Background()
		for i, s := range nodes {
			if s.d.RoutingTable().Len() < 5 {
				t.Errorf("node %d has %d peers in its routing table", i, s.d.RoutingTable().Len())
			}
		}

		// GetClosestPeers from a far node returns the true closest.
		key := multihash("closest")
		got, st, err := nodes[7].d.Lookup(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		var all []peer.ID
		for _, s := range nodes {
			if s.n.ID() != nodes[7].n.ID() {
				all = append(all, s.n.ID())
			}
		}
		SortByDistance(KeyOf(key), all)
		if len(got) != K || !slices.Equal(got[:Beta], all[:Beta]) {
			t.Errorf("lookup returned %d peers, the first %s, want the %d closest first %s", len(got), got[:min(len(got), Beta)], K, all[:Beta])
		}
		if st.Rounds < 1 || st.Requests < st.Answers || st.Answers < Beta {
			t.Errorf("lookup stats %+v", st)
		}

		// Provide from one node, find from another, with a deadline
		// that the streaming result meets long before the lookup ends.
		if err := nodes[3].d.Provide(ctx, key); err != nil {
			t.Fatal(err)
		}
		settle()
		ch := nodes[29].d.FindProvidersAsync(ctx, key, 1)
		ai, ok := <-ch
		if !ok || ai.ID != nodes[3].n.ID() || len(ai.Addrs) == 0 {
			t.Fatalf("FindProvidersAsync gave %v (ok %v), want node 3 with addresses", ai, ok)
		}
		if _, ok := <-ch; ok {
			t.Error("FindProvidersAsync with count 1 gave a second provider")
		}
		provs, _, err := nodes[11].d.FindProviders(ctx, key, 0)
		if err != nil || len(provs) != 1 || provs[0].ID != nodes[3].n.ID() {
			t.Errorf("FindProviders = %v, %v", provs, err)
		}
		if _, _, err := nodes[11].d.FindProviders(ctx, multihash("nobody"), 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("FindProviders of an unprovided key: %v, want ErrNotFound", err)
		}

		// FindPeer of a node we are not connected to.
		target := nodes[20]
		for _, c := range nodes[5].n.Conns(target.n.ID()) {
			c.Close()
		}
		synctest.Wait()
		if len(nodes[5].n.Conns(target.n.ID())) != 0 {
			t.Fatal("still connected after closing every connection")
		}
		found, err := nodes[5].d.FindPeer(ctx, target.n.ID())
		if err != nil || found.ID != target.n.ID() || len(found.Addrs) == 0 {
			t.Fatalf("FindPeer = %v, %v", found, err)
		}
		if _, err := nodes[5].n.Connect(ctx, found.ID, found.Addrs...); err != nil {
			t.Errorf("connect to the addresses FindPeer gave: %v", err)
		}

		// A /pk/ record put by one node is got by another.
		pk := "/pk/" + string(nodes[9].n.ID())
		if err := nodes[9].d.PutValue(ctx, pk, peer.MarshalPublicKey(nodes[9].n.Key().Public())); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		v, err := nodes[30].d.GetValue(ctx, pk)
		if err != nil || string(v) != string(peer.MarshalPublicKey(nodes[9].n.Key().Public())) {
			t.Errorf("GetValue(/pk/) = %x, %v", v, err)
		}
		// A record of the wrong key is refused before it leaves.
		if err := nodes[9].d.PutValue(ctx, "/pk/"+string(nodes[8].n.ID()), peer.MarshalPublicKey(nodes[9].n.Key().Public())); err == nil {
			t.Error("PutValue of a public key under another peer's ID succeeded")
		}
		if err := nodes[9].d.PutValue(ctx, "/other/x", []byte("v")); err == nil {
			t.Error("PutValue in an unknown namespace succeeded")
		}
	})
}

// TestClientMode: a client queries but does not serve, so servers keep
// it out of their tables, and switching it to server at run time puts
// it in.
func TestClientMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn, nodes := newSim(t, 10, transport.Link{Latency: 5 * time.Millisecond}, nil)
		c := addSim(t, mn, ModeClient, nil)
		ctx := context.Background()
		if err := c.d.Bootstrap(ctx, nodes[0].info()); err != nil {
			t.Fatal(err)
		}
		// The admission checks wait their turn on each peer's stream
		// behind the lookup's requests.
		settle()
		if c.d.RoutingTable().Len() < 5 {
			t.Errorf("the client's table holds %d peers", c.d.RoutingTable().Len())
		}
		if slices.Contains(c.n.Protocols(), ID) {
			t.Error("a client advertises the DHT protocol")
		}
		in := func() int {
			k := 0
			for _, s := range nodes {
				if s.d.RoutingTable().Contains(c.n.ID()) {
					k++
				}
			}
			return k
		}
		if k := in(); k != 0 {
			t.Errorf("%d servers hold a client in their table", k)
		}
		if _, err := c.d.GetClosestPeers(ctx, multihash("x")); err != nil {
			t.Errorf("client lookup: %v", err)
		}
		// A server's stream to the client is refused.
		if _, err := nodes[1].d.request(ctx, c.n.ID(), &Message{Type: FindNode, Key: []byte(c.n.ID())}); err == nil {
			t.Error("a client answered a request")
		}

		c.d.SetMode(ModeServer)
		settle()
		if !slices.Contains(c.n.Protocols(), ID) {
			t.Fatal("server mode does not advertise the protocol")
		}
		if k := in(); k == 0 {
			t.Error("no connected server took the new server into its table after the push")
		}
		if c.d.RoutingTable().Len() < 5 {
			t.Error("switching modes dropped the table")
		}
		c.d.SetMode(ModeClient)
		settle()
		if k := in(); k != 0 {
			t.Errorf("%d servers kept a peer that went back to client mode", k)
		}
	})
}

// TestStreamReuse: requests to one peer go one after another on one
// stream, and the server answers each on it.
func TestStreamReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := newSim(t, 3, transport.Link{}, nil)
		a, b := nodes[1], nodes[2]
		ctx := context.Background()
		for i := range 5 {
			if _, err := a.d.request(ctx, b.n.ID(), &Message{Type: FindNode, Key: []byte(fmt.Sprint(i))}); err != nil {
				t.Fatal(err)
			}
		}
		a.d.mu.Lock()
		s := a.d.senders[b.n.ID()]
		a.d.mu.Unlock()
		if s == nil || s.s == nil {
			t.Fatal("no cached stream after five requests")
		}
		st := a.d.Stats()
		bs := b.d.Stats()
		if bs.Counters["kad.in.FIND_NODE"] < 5 {
			t.Errorf("server counted %d FIND_NODE, want at least 5 (stats %+v)", bs.Counters["kad.in.FIND_NODE"], st)
		}
		// The server's idle timeout ends the stream; the next request
		// retries on a new one.
		time.Sleep(2 * DefaultStreamIdleTimeout)
		if _, err := a.d.request(ctx, b.n.ID(), &Message{Type: FindNode, Key: []byte("after idle")}); err != nil {
			t.Errorf("request after the server closed the idle stream: %v", err)
		}
	})
}

// TestProtectedWhileUseful: a routing-table peer is protected in the
// connection manager while it answers usefully, and no longer once it
// has not for UsefulWindow; one that leaves the table is unprotected.
func TestProtectedWhileUseful(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := newSim(t, 4, transport.Link{Latency: time.Millisecond}, nil)
		a := nodes[1]
		peers := a.d.RoutingTable().Peers()
		if len(peers) == 0 {
			t.Fatal("empty table")
		}
		for _, id := range peers {
			if !a.n.IsProtected(id) {
				t.Errorf("table peer %s not protected", id.ShortString())
			}
		}
		useful := peers[0]
		time.Sleep(UsefulWindow + time.Minute)
		a.d.RoutingTable().MarkUseful(useful, time.Now())
		a.d.reviewProtection(time.Now())
		for _, id := range peers {
			if got, want := a.n.IsProtected(id), id == useful; got != want {
				t.Errorf("peer %s protected %v after an hour, want %v (useful %v)", id.ShortString(), got, want, id == useful)
			}
		}
		a.d.requestFailed(useful)
		if a.n.IsProtected(useful) {
			t.Error("a peer dropped from the table stays protected")
		}
	})
}

// TestFindProvidersBounded: a search without a count stops at
// MaxProvidersFound, however many providers a peer lists.
func TestFindProvidersBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn, nodes := newSim(t, 2, transport.Link{}, nil)
		liar := addSim(t, mn, ModeServer, nil)
		// The liar answers every GET_PROVIDERS with 2,000 made-up
		// providers, each with an address.
		var fake []Peer
		for i := range 2000 {
			id := peer.IDFromPublicKey(mustKey(t).Public())
			fake = append(fake, Peer{ID: []byte(id), Addrs: [][]byte{ma.StringCast(fmt.Sprintf("/memory/%d", 100000+i)).Bytes()}})
		}
		liar.n.SetHandler(ID, func(s *node.Stream) {
			defer s.Close()
			for {
				m, err := ReadMessage(s, Limits{})
				if err != nil {
					return
				}
				resp := &Message{Type: m.Type, Key: m.Key}
				if m.Type == GetProviders {
					resp.ProviderPeers = fake
				}
				if WriteMessage(s, resp) != nil {
					return
				}
			}
		})
		ctx := context.Background()
		if err := nodes[1].d.Bootstrap(ctx, liar.info()); err != nil {
			t.Fatal(err)
		}
		provs, _, err := nodes[1].d.FindProviders(ctx, multihash("popular"), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(provs) != MaxProvidersFound {
			t.Errorf("FindProviders without a count gathered %d providers, want MaxProvidersFound (%d)", len(provs), MaxProvidersFound)
		}
	})
}

func mustKey(t *testing.T) peer.PrivateKey {
	k, err := peer.GenerateEd25519(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
