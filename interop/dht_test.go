package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mote-p2p/mote/ipns"
	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/wire/cid"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// kuboDHT is a private DHT of Kubo servers on 127.0.0.1: Kubo's LAN DHT
// (/ipfs/lan/kad/1.0.0) is the one that takes loopback peers, so that
// is the one every test here speaks.
type kuboDHT struct {
	kubos []*Kubo
}

const kuboDHTSize = 5

func startKuboDHT(t *testing.T, ctx context.Context) *kuboDHT {
	t.Helper()
	kd := &kuboDHT{kubos: make([]*Kubo, kuboDHTSize)}
	var wg sync.WaitGroup
	errs := make([]error, kuboDHTSize)
	for i := range kd.kubos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kd.kubos[i], errs[i] = StartKubo(ctx, t, KuboOptions{Routing: "dhtserver"})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A ring and a hub, so that every table holds every other server.
	for i, k := range kd.kubos {
		for _, j := range []int{0, (i + 1) % kuboDHTSize} {
			if j == i {
				continue
			}
			if err := k.SwarmConnect(ctx, kd.kubos[j].TCPAddr()); err != nil {
				t.Fatalf("kubo %d → %d: %v", i, j, err)
			}
		}
	}
	return kd
}

func (kd *kuboDHT) bootstrap() []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, k := range kd.kubos {
		ai, err := peer.AddrInfoFromP2pAddr(ma.StringCast(k.TCPAddr()))
		if err != nil {
			panic(err) // Kubo printed an address we cannot parse
		}
		out = append(out, ai)
	}
	return out
}

// startMoteDHT starts a mote node on loopback TCP with a LAN DHT in the
// given mode and bootstraps it from the first Kubo.
func startMoteDHT(t *testing.T, ctx context.Context, kd *kuboDHT, mode kademlia.Mode) (*node.Node, *kademlia.DHT) {
	t.Helper()
	n, err := node.New(node.Config{
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
		DisableQUIC: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	d, err := kademlia.New(n, kademlia.Config{Protocol: kademlia.LANID, Mode: mode, AddrFilter: kademlia.LANAddrs(n)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Bootstrap(ctx, kd.bootstrap()[:1]...); err != nil {
		t.Fatalf("bootstrap from kubo: %v", err)
	}
	return n, d
}

// retry runs f until it succeeds or ctx ends: Kubo's answers depend on
// background work (its routing-table admission, its provide queue) that
// no command waits for.
func retry(ctx context.Context, every time.Duration, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(every):
		}
	}
}

// within bounds one subtest, so that one that runs out of time leaves
// the others theirs.
func within(t *testing.T, ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestKuboDHT(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	kd := startKuboDHT(t, ctx)
	n, d := startMoteDHT(t, ctx, kd, kademlia.ModeServer)
	if d.RoutingTable().Len() == 0 {
		t.Fatal("mote's table is empty after bootstrapping from Kubo")
	}
	far := kd.kubos[kuboDHTSize-1]
	farID, _ := peer.Decode(far.ID())

	t.Run("KuboKeepsMoteServer", func(t *testing.T) {
		ctx := within(t, ctx)
		err := retry(ctx, 500*time.Millisecond, func() error {
			out, err := kd.kubos[0].Run(ctx, "stats", "dht", "lan")
			if err != nil {
				return err
			}
			if !strings.Contains(string(out), n.ID().String()) {
				return fmt.Errorf("mote %s not in `ipfs stats dht lan`:\n%s", n.ID(), out)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("KuboFindsMoteProvider", func(t *testing.T) {
		ctx := within(t, ctx)
		mh := cid.Sum256([32]byte{1, 2, 3})
		c := cid.NewV1(cid.Raw, mh)
		if err := d.Provide(ctx, mh); err != nil {
			t.Fatal(err)
		}
		// Only the Kubo servers that took our ADD_PROVIDER can answer
		// now: mote stops serving until the end of the subtest.
		d.SetMode(kademlia.ModeClient)
		defer d.SetMode(kademlia.ModeServer)
		err := retry(ctx, 500*time.Millisecond, func() error {
			out, err := far.Run(ctx, "routing", "findprovs", "-n", "1", c.String())
			if err != nil {
				return err
			}
			if !strings.Contains(string(out), n.ID().String()) {
				return fmt.Errorf("`ipfs routing findprovs %s` gave %q, want %s", c, out, n.ID())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("MoteFindsKuboProvider", func(t *testing.T) {
		ctx := within(t, ctx)
		file := filepath.Join(t.TempDir(), "content")
		if err := os.WriteFile(file, []byte("mote finds this\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := far.Run(ctx, "add", "-Q", "--cid-version=1", file)
		if err != nil {
			t.Fatal(err)
		}
		c, err := cid.Parse(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatal(err)
		}
		err = retry(ctx, time.Second, func() error {
			provs, _, err := d.FindProviders(ctx, c.Multihash, 1)
			if err != nil {
				return err
			}
			if provs[0].ID != farID || len(provs[0].Addrs) == 0 {
				return fmt.Errorf("providers %v, want %s with addresses", provs, far.ID())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("MoteFindsKuboPeer", func(t *testing.T) {
		ctx := within(t, ctx)
		// A Kubo mote has no connection to: a second mote, a client,
		// bootstrapped from another Kubo, looks up the far one.
		cn, c := startMoteDHT(t, ctx, &kuboDHT{kubos: kd.kubos[1:2]}, kademlia.ModeClient)
		for _, conn := range cn.Conns(farID) {
			conn.Close()
		}
		ai, err := c.FindPeer(ctx, farID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(ai.Addrs, func(a ma.Multiaddr) bool { return strings.HasPrefix(far.TCPAddr(), a.String()+"/p2p/") }) {
			t.Errorf("FindPeer(%s) = %v, want its TCP address %s", far.ID(), ai.Addrs, far.TCPAddr())
		}
	})

	t.Run("KuboFindsMotePeer", func(t *testing.T) {
		ctx := within(t, ctx)
		// Either side may dial the other again at any time (Kubo's
		// provide sweep and refreshes, ours), so the connection is
		// closed again on every try until Kubo lists none.
		closed, byKubo := 0, 0
		if err := retry(ctx, 200*time.Millisecond, func() error {
			for _, conn := range n.Conns(farID) {
				closed++
				if !conn.State().Outbound {
					byKubo++
				}
				conn.Close()
			}
			peers, err := far.SwarmPeers(ctx)
			if err != nil || hasPeer(peers, n.ID().String()) {
				return fmt.Errorf("kubo still lists mote among its peers after %d closes, %d of connections Kubo dialed (%v)", closed, byKubo, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		out, err := far.Run(ctx, "routing", "findpeer", n.ID().String())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), n.ListenAddrs()[0].String()) {
			t.Errorf("`ipfs routing findpeer %s` = %q, want %s", n.ID(), out, n.ListenAddrs()[0])
		}
	})

	t.Run("MoteResolvesKuboName", func(t *testing.T) {
		ctx := within(t, ctx)
		file := filepath.Join(t.TempDir(), "named")
		if err := os.WriteFile(file, []byte("kubo names this\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := far.Run(ctx, "add", "-Q", "--cid-version=1", file)
		if err != nil {
			t.Fatal(err)
		}
		path := "/ipfs/" + strings.TrimSpace(string(out))
		out, err = far.Run(ctx, "name", "publish", "--allow-offline=false", path)
		if err != nil {
			t.Fatal(err)
		}
		// "Published to k51…: /ipfs/…"
		name, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(string(out)), "Published to "), ":")
		if !ok {
			t.Fatalf("ipfs name publish said %q", out)
		}
		id, err := ipns.ParsePath("/ipns/" + name)
		if err != nil || id != farID {
			t.Fatalf("Kubo's name %s parses to %v (%v), want %s", name, id, err, far.ID())
		}
		if got := ipns.Name(farID); got != name {
			t.Errorf("ipns.Name(%s) = %s, Kubo says %s", far.ID(), got, name)
		}
		v, err := d.GetValue(ctx, string(ipns.Key(farID)))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := ipns.Validate(farID, v, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if string(rec.Value) != path {
			t.Errorf("Kubo's record points at %q, want %q", rec.Value, path)
		}
	})

	t.Run("KuboResolvesMoteName", func(t *testing.T) {
		ctx := within(t, ctx)
		path := "/ipfs/" + cid.NewV1(cid.Raw, cid.Sum256([32]byte{9})).String()
		rec, err := ipns.Create(n.Key(), []byte(path), 1, time.Now().Add(time.Hour), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.PutValue(ctx, string(ipns.Key(n.ID())), rec); err != nil {
			t.Fatal(err)
		}
		// Only the Kubo servers that took our PUT_VALUE can answer.
		d.SetMode(kademlia.ModeClient)
		defer d.SetMode(kademlia.ModeServer)
		out, err := far.Run(ctx, "name", "resolve", "/ipns/"+n.ID().String())
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != path {
			t.Errorf("ipfs name resolve /ipns/%s = %q, want %q", n.ID(), got, path)
		}
	})

	t.Run("KuboNeverKeepsMoteClient", func(t *testing.T) {
		ctx := within(t, ctx)
		cn, _ := startMoteDHT(t, ctx, kd, kademlia.ModeClient)
		for _, k := range kd.kubos {
			out, err := k.Run(ctx, "stats", "dht", "--enc=json")
			if err != nil {
				t.Fatal(err)
			}
			var st json.RawMessage = out
			if strings.Contains(string(st), cn.ID().String()) {
				t.Errorf("kubo %s keeps the mote client %s in a table:\n%s", k.ID(), cn.ID(), out)
			}
		}
	})
}
