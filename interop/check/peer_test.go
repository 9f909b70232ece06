package check

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/wire/cid"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// motePeer drives a mote node as a Peer, and its DHT as a DHTPeer, for
// the columns in which the peer dials mote and the checks that need its
// side.
type motePeer struct {
	n      *node.Node
	d      *kademlia.DHT
	addrs  []string
	silent bool   // TriggerPush changes nothing
	unsure string // and says this as Push.Unsure
}

var _ DHTPeer = (*motePeer)(nil)

const motePushProto = "/mote-interop/driven-push/1.0.0"

func (p *motePeer) Info(context.Context) PeerInfo {
	return PeerInfo{Name: "mote", Version: node.Version}
}

func (p *motePeer) Addrs() []string { return p.addrs }

func (p *motePeer) SwarmConnect(ctx context.Context, addr string) error {
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		return err
	}
	a, id, err := peer.SplitP2P(a)
	if err != nil {
		return err
	}
	_, err = p.n.Connect(ctx, id, a)
	return err
}

func (p *motePeer) IDOf(_ context.Context, s string) (IDInfo, error) {
	id, err := peer.Decode(s)
	if err != nil {
		return IDInfo{}, err
	}
	ps := p.n.Peerstore()
	info := IDInfo{ID: s, AgentVersion: ps.Agent(id), Protocols: ps.Protocols(id)}
	if k := ps.PublicKey(id); k != nil {
		info.PublicKey = base64.StdEncoding.EncodeToString(peer.MarshalPublicKey(k))
	}
	for _, a := range ps.Addrs(id) {
		info.Addresses = append(info.Addresses, a.String())
	}
	return info, nil
}

func (p *motePeer) Ping(ctx context.Context, s string, n int) ([]time.Duration, error) {
	id, err := peer.Decode(s)
	if err != nil {
		return nil, err
	}
	var rtts []time.Duration
	for range max(n, 1) {
		rtt, err := p.n.Ping(ctx, id)
		if err != nil {
			return rtts, err
		}
		rtts = append(rtts, rtt)
	}
	return rtts, nil
}

func (p *motePeer) TriggerPush(context.Context) (Push, error) {
	how := "SetHandler " + motePushProto
	if p.silent {
		return Push{Proto: motePushProto, How: how, Unsure: p.unsure}, nil
	}
	p.n.SetHandler(motePushProto, func(s *node.Stream) { s.Reset() })
	return Push{Proto: motePushProto, How: how, Undo: func(context.Context) error {
		p.n.RemoveHandler(motePushProto)
		return nil
	}}, nil
}

func (p *motePeer) RoutingTable(context.Context) ([]string, error) {
	var ids []string
	for _, id := range p.d.RoutingTable().Peers() {
		ids = append(ids, id.String())
	}
	return ids, nil
}

func (p *motePeer) FindPeer(ctx context.Context, s string) ([]string, error) {
	id, err := peer.Decode(s)
	if err != nil {
		return nil, err
	}
	ai, err := p.d.FindPeer(ctx, id)
	var addrs []string
	for _, a := range ai.Addrs {
		addrs = append(addrs, a.String())
	}
	return addrs, err
}

func (p *motePeer) FindProviders(ctx context.Context, s string) ([]string, error) {
	c, err := cid.Parse(s)
	if err != nil {
		return nil, err
	}
	provs, _, err := p.d.FindProviders(ctx, c.Multihash, 0)
	var ids []string
	for _, ai := range provs {
		ids = append(ids, ai.ID.String())
	}
	return ids, err
}

func (p *motePeer) Provide(ctx context.Context, block []byte) (string, error) {
	mh := cid.Sum256(sha256.Sum256(block))
	return cid.NewV1(cid.Raw, mh).String(), p.d.Provide(ctx, mh)
}

func (p *motePeer) GetValue(ctx context.Context, key string) ([]byte, error) {
	k, err := binaryKey(key)
	if err != nil {
		return nil, err
	}
	return p.d.GetValue(ctx, k)
}

func (p *motePeer) PutValue(ctx context.Context, key string, value []byte) error {
	k, err := binaryKey(key)
	if err != nil {
		return err
	}
	return p.d.PutValue(ctx, k, value)
}

// binaryKey turns "/pk/<peer ID>" or "/ipns/<peer ID>" into the record
// key on the wire, the peer ID in binary.
func binaryKey(key string) (string, error) {
	ns, s, ok := strings.Cut(strings.TrimPrefix(key, "/"), "/")
	if !ok || (ns != "pk" && ns != "ipns") {
		return "", fmt.Errorf("key %q: want /pk/<id> or /ipns/<id>", key)
	}
	id, err := peer.Decode(s)
	if err != nil {
		return "", err
	}
	return "/" + ns + "/" + string(id), nil
}

// drivenPeer is what Run finds on a good peer it drives: every cell
// passes in both directions, but the DHT rows in which the peer asks
// mote, which the out columns leave to the in ones.
func drivenPeer() map[string]map[string]want {
	w := map[string]map[string]want{}
	for _, row := range rows {
		w[row.ID] = map[string]want{}
		for _, col := range []string{"tcp+noise", "tcp+tls", "quic-v1"} {
			w[row.ID][col+" out"] = want{Pass, ""}
			w[row.ID][col+" in"] = want{Pass, ""}
		}
	}
	for _, col := range []string{"quic-v1 out", "quic-v1 in"} {
		w["muxer"][col] = want{NA, "QUIC carries the streams itself"}
		w["early-muxer"][col] = want{NA, "QUIC carries the streams itself"}
	}
	for _, row := range kadServed {
		for _, col := range outCols {
			w[row][col] = want{NA, "checked in the in columns"}
		}
	}
	return w
}

func runDriven(t *testing.T, p Peer, wait time.Duration) *Matrix {
	t.Helper()
	return runDrivenWithin(t, p, wait, 5*time.Second)
}

func runDrivenWithin(t *testing.T, p Peer, wait, timeout time.Duration) *Matrix {
	t.Helper()
	m, err := Run(t.Context(), Target{Peer: p}, Options{Timeout: timeout, PerfBytes: 64 << 10, PeerWait: wait})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	m.WriteText(&out)
	t.Logf("\n%s", out.String())
	if m.Driven == nil || m.Driven.Name != "mote" || len(m.Columns) != 6 {
		t.Fatalf("driven %+v, %d columns", m.Driven, len(m.Columns))
	}
	return m
}

// A peer the runner drives is checked in both directions, and its push
// is waited for.
func TestDrivenPeer(t *testing.T) {
	n, d, addrs := startPeer(t, nil)
	checkMatrix(t, runDriven(t, &motePeer{n: n, d: d, addrs: addrs}, 2*time.Second), drivenPeer())
}

// A driven peer's push that does not come fails, unless the peer said
// why it might not (as Kubo does): then it is not checked.
func TestDrivenPeerNoPush(t *testing.T) {
	n, d, addrs := startPeer(t, nil)
	const none = "mote sent no push within 0.2 s of `SetHandler " + motePushProto + "`"
	for _, tc := range []struct {
		unsure string
		want   want
	}{
		{"", want{Fail, none}},
		{"it cannot", want{NotChecked, none + ": it cannot"}},
	} {
		m := runDriven(t, &motePeer{n: n, d: d, addrs: addrs, silent: true, unsure: tc.unsure}, 200*time.Millisecond)
		w := drivenPeer()
		for col := range w["push-received"] {
			w["push-received"][col] = tc.want
		}
		checkMatrix(t, m, w)
	}
}
