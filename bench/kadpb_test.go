package bench

import (
	"bytes"
	"strings"
	"testing"

	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-msgio"
	"github.com/libp2p/go-msgio/pbio"
	"google.golang.org/protobuf/proto"

	"github.com/mote-p2p/mote/kademlia"
)

// kadCases are messages of every type, in request and response shapes,
// with every field set somewhere, including negative and out-of-enum
// values and an empty record.
func kadCases() []kademlia.Message {
	mh := append([]byte{0x12, 0x20}, bytes.Repeat([]byte{0xab}, 32)...)
	peers := []kademlia.Peer{
		{ID: append([]byte{0, 0x24}, bytes.Repeat([]byte{1}, 36)...), Addrs: [][]byte{
			{0x04, 127, 0, 0, 1, 0x06, 0x0f, 0xa1},
			{0x04, 1, 2, 3, 4, 0x91, 0x02, 0x0f, 0xa1, 0xcc, 0x03},
		}, Connection: kademlia.Connected},
		{ID: []byte("peer-b"), Connection: kademlia.CanConnect},
		{ID: []byte("peer-c"), Addrs: [][]byte{{0x04, 10, 0, 0, 1}}, Connection: kademlia.CannotConnect},
	}
	rec := &kademlia.Record{Key: []byte("/ipns/k"), Value: bytes.Repeat([]byte{7}, 300), TimeReceived: "2024-05-01T12:34:56.123456789Z"}
	return []kademlia.Message{
		{},
		{Type: kademlia.PutValue, Key: rec.Key, Record: rec, ClusterLevelRaw: 1},
		{Type: kademlia.GetValue, Key: rec.Key, ClusterLevelRaw: 1},
		{Type: kademlia.GetValue, Key: rec.Key, Record: rec, CloserPeers: peers},
		{Type: kademlia.GetValue, Key: rec.Key, Record: &kademlia.Record{}},
		{Type: kademlia.AddProvider, Key: mh, ProviderPeers: peers[:1], ClusterLevelRaw: 1},
		{Type: kademlia.GetProviders, Key: mh},
		{Type: kademlia.GetProviders, Key: mh, CloserPeers: peers, ProviderPeers: peers[1:]},
		{Type: kademlia.FindNode, Key: []byte(strings.Repeat("t", 40))},
		{Type: kademlia.FindNode, CloserPeers: peers},
		{Type: kademlia.Ping, ClusterLevelRaw: 1},
		{Type: 9, ClusterLevelRaw: -1, CloserPeers: []kademlia.Peer{{Connection: -3}}},
	}
}

func toGoPeers(ps []kademlia.Peer) []*dhtpb.Message_Peer {
	var out []*dhtpb.Message_Peer
	for _, p := range ps {
		out = append(out, &dhtpb.Message_Peer{Id: p.ID, Addrs: p.Addrs, Connection: dhtpb.Message_ConnectionType(p.Connection)})
	}
	return out
}

func toGo(m *kademlia.Message) *dhtpb.Message {
	g := &dhtpb.Message{
		Type:            dhtpb.Message_MessageType(m.Type),
		ClusterLevelRaw: m.ClusterLevelRaw,
		Key:             m.Key,
		CloserPeers:     toGoPeers(m.CloserPeers),
		ProviderPeers:   toGoPeers(m.ProviderPeers),
	}
	if r := m.Record; r != nil {
		g.Record = &recpb.Record{Key: r.Key, Value: r.Value, TimeReceived: r.TimeReceived}
	}
	return g
}

// sameAsGo compares a mote message with go's field by field.
func sameAsGo(t *testing.T, m *kademlia.Message, g *dhtpb.Message) {
	t.Helper()
	if int32(m.Type) != int32(g.Type) || m.ClusterLevelRaw != g.ClusterLevelRaw || !bytes.Equal(m.Key, g.Key) {
		t.Errorf("type/clusterLevel/key: mote %v/%d/%x, go %v/%d/%x", m.Type, m.ClusterLevelRaw, m.Key, g.Type, g.ClusterLevelRaw, g.Key)
	}
	if (m.Record == nil) != (g.Record == nil) {
		t.Errorf("record presence: mote %v, go %v", m.Record != nil, g.Record != nil)
	} else if m.Record != nil && (!bytes.Equal(m.Record.Key, g.Record.Key) || !bytes.Equal(m.Record.Value, g.Record.Value) ||
		m.Record.TimeReceived != g.Record.TimeReceived) {
		t.Errorf("record: mote %+v, go %v", m.Record, g.Record)
	}
	samePeers(t, "closerPeers", m.CloserPeers, g.CloserPeers)
	samePeers(t, "providerPeers", m.ProviderPeers, g.ProviderPeers)
}

func samePeers(t *testing.T, what string, ps []kademlia.Peer, gs []*dhtpb.Message_Peer) {
	t.Helper()
	if len(ps) != len(gs) {
		t.Errorf("%s: mote %d, go %d", what, len(ps), len(gs))
		return
	}
	for i, p := range ps {
		g := gs[i]
		if !bytes.Equal(p.ID, g.Id) || int32(p.Connection) != int32(g.Connection) || len(p.Addrs) != len(g.Addrs) {
			t.Errorf("%s[%d]: mote %+v, go %v", what, i, p, g)
			continue
		}
		for j := range p.Addrs {
			if !bytes.Equal(p.Addrs[j], g.Addrs[j]) {
				t.Errorf("%s[%d].addrs[%d]: mote %x, go %x", what, i, j, p.Addrs[j], g.Addrs[j])
			}
		}
	}
}

// TestKadPBCrossCheck encodes with mote and decodes with go-libp2p-kad-dht's
// pb package, and the reverse, for every message type: fields must agree,
// and for the same content both encoders must produce the same bytes.
func TestKadPBCrossCheck(t *testing.T) {
	for _, m := range kadCases() {
		t.Run(m.Type.String(), func(t *testing.T) {
			ours := m.Append(nil)
			var g dhtpb.Message
			if err := proto.Unmarshal(ours, &g); err != nil {
				t.Fatalf("go cannot decode mote's encoding: %v", err)
			}
			sameAsGo(t, &m, &g)

			theirs, err := proto.MarshalOptions{Deterministic: true}.Marshal(toGo(&m))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ours, theirs) {
				t.Errorf("encodings differ:\nmote %x\ngo   %x", ours, theirs)
			}
			back, err := kademlia.DecodeMessage(theirs, kademlia.Limits{})
			if err != nil {
				t.Fatalf("mote cannot decode go's encoding: %v", err)
			}
			sameAsGo(t, back, toGo(&m))
		})
	}
}

// TestKadFramingCrossCheck runs a stream of messages through mote's
// framing into go-kad-dht's reader (msgio varint reader limited to
// network.MessageSizeMax, then proto.Unmarshal, as dht_net.go), and go's
// writer (pbio delimited writer, as internal/net.WriteMsg) into mote's
// ReadMessage.
func TestKadFramingCrossCheck(t *testing.T) {
	cases := kadCases()
	var stream bytes.Buffer
	for i := range cases {
		if err := kademlia.WriteMessage(&stream, &cases[i]); err != nil {
			t.Fatal(err)
		}
	}
	r := msgio.NewVarintReaderSize(&stream, network.MessageSizeMax)
	for i := range cases {
		b, err := r.ReadMsg()
		if err != nil {
			t.Fatalf("go reads message %d: %v", i, err)
		}
		var g dhtpb.Message
		if err := proto.Unmarshal(b, &g); err != nil {
			t.Fatalf("go decodes message %d: %v", i, err)
		}
		r.ReleaseMsg(b)
		sameAsGo(t, &cases[i], &g)
	}

	stream.Reset()
	w := pbio.NewDelimitedWriter(&stream)
	for i := range cases {
		if err := w.WriteMsg(toGo(&cases[i])); err != nil {
			t.Fatal(err)
		}
	}
	for i := range cases {
		m, err := kademlia.ReadMessage(&stream, kademlia.Limits{})
		if err != nil {
			t.Fatalf("mote reads go's message %d: %v", i, err)
		}
		sameAsGo(t, m, toGo(&cases[i]))
	}

	// Both sides refuse a message over 4 MiB at the same size.
	if kademlia.MaxMessageSize != network.MessageSizeMax {
		t.Errorf("MaxMessageSize %d, go network.MessageSizeMax %d", kademlia.MaxMessageSize, network.MessageSizeMax)
	}
	if kademlia.MaxPeerRecordSize != dhtpb.MaxPeerRecordSize {
		t.Errorf("MaxPeerRecordSize %d, go %d", kademlia.MaxPeerRecordSize, dhtpb.MaxPeerRecordSize)
	}
}

// TestKadPBUnknownFields checks that both decoders skip the same unknown
// fields: the removed record fields author (3) and signature (4), and
// fields the schema does not have.
func TestKadPBUnknownFields(t *testing.T) {
	b := []byte{
		0x08, 0x04, // type FIND_NODE
		0x20, 0x01, // field 4, varint
		0x5a, 0x01, 0xff, // field 11, bytes
		0x1a, 0x0d, 0x0a, 0x01, 'a', 0x1a, 0x03, 'a', 'u', 't', 0x22, 0x03, 's', 'i', 'g', // record with author, signature
		0x42, 0x05, 0x0a, 0x01, 0x01, 0x38, 0x03, // peer with field 7
	}
	var g dhtpb.Message
	if err := proto.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	m, err := kademlia.DecodeMessage(b, kademlia.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	sameAsGo(t, m, &g)
}
