package fuzz

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
)

// kadSeeds are the golden vectors of kademlia/message_test.go, plus a few
// edge cases: unknown fields and groups, wrong wire types, merging records.
var kadSeeds = []string{
	"0804 1203616263 5001",
	"0804 4210 0a020102 1208047f0000010601f4 1801",
	"1205 2f706b2f78 1a2b 0a052f706b2f78 12020102 2a1e 323032342d30352d30315431323a33343a35362e3132333435363738395a",
	"0801 1205 2f706b2f78",
	"0801 1205 2f706b2f78 1a00 4204 0a020102",
	"0802 1205 0003616263 4a0f 0a020304 1209040102030491020fa1",
	"0803 1205 0003616263 420a 0a020102 1202aabb 1200 4a06 0a020304 1803",
	"0805",
	"",
	"08ffffffffffffffffff01 4a0b 18feffffffffffffffff01 50ffffffffffffffffff01",
	"0807 42021802",
	"0804 2001 5a03010203 6d01020304 710102030405060708 7b08017c 1203616263",
	"1a0d 0a0161 1a03617574 2203736967",
	"0a0104 1001 1801 4001 4801 4208 0a0101 1a0101 1001 0804",
	"1a03 0a0161 1a03 120162",
	"4a04 5b08015c",
	"0b0b0b0c0c0c",
	"4203 0a05",
}

// kadRef is a reference decoder on protowire, the parser of the protobuf
// runtime go-libp2p-kad-dht uses, with proto3 semantics and no limits.
// depth reports how deep groups nested (mote refuses beyond 32).
func kadRef(b []byte) (m *kademlia.Message, sz kadSizes, depth int, ok bool) {
	m = new(kademlia.Message)
	key := func(s []byte) []byte { sz.key = max(sz.key, len(s)); return s }
	ok = kadRefWalk(b, &depth, func(num protowire.Number, typ protowire.Type, v uint64, s []byte) bool {
		switch {
		case num == 1 && typ == protowire.VarintType:
			m.Type = kademlia.MessageType(int32(v))
		case num == 10 && typ == protowire.VarintType:
			m.ClusterLevelRaw = int32(v)
		case typ != protowire.BytesType:
		case num == 2:
			m.Key = key(s)
		case num == 3:
			if m.Record == nil {
				m.Record = new(kademlia.Record)
			}
			return kadRefWalk(s, &depth, func(num protowire.Number, typ protowire.Type, _ uint64, s []byte) bool {
				if typ == protowire.BytesType {
					switch num {
					case 1:
						m.Record.Key = key(s)
					case 2:
						m.Record.Value = s
						sz.value = max(sz.value, len(s))
					case 5:
						m.Record.TimeReceived = string(key(s))
					}
				}
				return true
			})
		case num == 8 || num == 9:
			var p kademlia.Peer
			if !kadRefWalk(s, &depth, func(num protowire.Number, typ protowire.Type, v uint64, s []byte) bool {
				switch {
				case num == 1 && typ == protowire.BytesType:
					p.ID = key(s)
				case num == 2 && typ == protowire.BytesType:
					p.Addrs = append(p.Addrs, s)
				case num == 3 && typ == protowire.VarintType:
					p.Connection = kademlia.ConnectionType(int32(v))
				}
				return true
			}) {
				return false
			}
			if num == 8 {
				m.CloserPeers = append(m.CloserPeers, p)
			} else {
				m.ProviderPeers = append(m.ProviderPeers, p)
			}
		}
		return true
	})
	return m, sz, depth, ok
}

// kadSizes are the largest occurrences of the fields the key and value
// limits bound: each occurrence counts, not only the last one, which
// protobuf keeps.
type kadSizes struct{ key, value int }

// kadRefWalk calls field for each field of b, skipping groups (and
// recording their depth), and reports whether b parsed.
func kadRefWalk(b []byte, depth *int, field func(protowire.Number, protowire.Type, uint64, []byte) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || !num.IsValid() {
			return false
		}
		b = b[n:]
		var v uint64
		var s []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			_, n = protowire.ConsumeFixed32(b)
		case protowire.Fixed64Type:
			_, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			s, n = protowire.ConsumeBytes(b)
		case protowire.StartGroupType:
			n = kadRefGroup(num, b, 1, depth)
		default:
			return false
		}
		if n < 0 || !field(num, typ, v, s) {
			return false
		}
		b = b[n:]
	}
	return true
}

// kadRefGroup returns the length of group num's contents and end marker
// at the start of b, or -1.
func kadRefGroup(num protowire.Number, b []byte, level int, depth *int) int {
	*depth = max(*depth, level)
	if level > 1000 {
		return -1
	}
	off := 0
	for {
		inner, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 || !inner.IsValid() {
			return -1
		}
		off += n
		if typ == protowire.EndGroupType {
			if inner != num {
				return -1
			}
			return off
		}
		if typ == protowire.StartGroupType {
			n = kadRefGroup(inner, b[off:], level+1, depth)
		} else {
			n = protowire.ConsumeFieldValue(inner, typ, b[off:])
		}
		if n < 0 {
			return -1
		}
		off += n
	}
}

// kadSame compares messages; empty and nil byte fields are alike, as
// proto3 has no presence for them (Record keeps its presence).
func kadSame(a, b *kademlia.Message) bool {
	if a.Type != b.Type || a.ClusterLevelRaw != b.ClusterLevelRaw || !bytes.Equal(a.Key, b.Key) ||
		(a.Record == nil) != (b.Record == nil) {
		return false
	}
	if a.Record != nil && (!bytes.Equal(a.Record.Key, b.Record.Key) || !bytes.Equal(a.Record.Value, b.Record.Value) ||
		a.Record.TimeReceived != b.Record.TimeReceived) {
		return false
	}
	return kadSamePeers(a.CloserPeers, b.CloserPeers) && kadSamePeers(a.ProviderPeers, b.ProviderPeers)
}

func kadSamePeers(a, b []kademlia.Peer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].ID, b[i].ID) || a[i].Connection != b[i].Connection || len(a[i].Addrs) != len(b[i].Addrs) {
			return false
		}
		for j := range a[i].Addrs {
			if !bytes.Equal(a[i].Addrs[j], b[i].Addrs[j]) {
				return false
			}
		}
	}
	return true
}

// kadWithin reports whether ref, read by kadRef with sizes sz, respects
// lim (all fields set).
func kadWithin(ref *kademlia.Message, sz kadSizes, lim kademlia.Limits) bool {
	if sz.key > lim.MaxKeySize || sz.value > lim.MaxValueSize || len(ref.CloserPeers) > lim.MaxPeers || len(ref.ProviderPeers) > lim.MaxPeers {
		return false
	}
	for _, p := range append(ref.CloserPeers[:len(ref.CloserPeers):len(ref.CloserPeers)], ref.ProviderPeers...) {
		if len(p.Addrs) > lim.MaxAddrs {
			return false
		}
		for _, a := range p.Addrs {
			if len(a) > lim.MaxAddrLen {
				return false
			}
		}
	}
	return true
}

func FuzzKadMessage(f *testing.F) {
	for _, s := range kadSeeds {
		b := identifyHex(strings.ReplaceAll(s, " ", ""))
		f.Add(uint8(255), uint8(255), uint8(255), uint8(255), b)
		f.Add(uint8(1), uint8(1), uint8(2), uint8(3), b)
	}
	f.Fuzz(func(t *testing.T, peers, addrs, sizeA, sizeB uint8, data []byte) {
		def := kademlia.DefaultLimits()
		m, err := kademlia.DecodeMessage(data, kademlia.Limits{})
		ref, sz, depth, refOK := kadRef(data)
		switch {
		case err == nil && !refOK:
			t.Fatalf("we decode what protowire refuses: %+v", m)
		case err == nil && !kadSame(m, ref):
			t.Fatalf("decoded differently from protowire:\n%+v\n%+v", m, ref)
		case err != nil && !errors.Is(err, kademlia.ErrMalformed) && !errors.Is(err, kademlia.ErrTooLarge):
			t.Fatalf("error wraps no sentinel: %v", err)
		case errors.Is(err, kademlia.ErrMalformed) && refOK && depth <= 32:
			t.Fatalf("we refuse what protowire reads: %v", err)
		case errors.Is(err, kademlia.ErrTooLarge) && refOK && kadWithin(ref, sz, def):
			t.Fatalf("limit fired on a message within the limits: %v", err)
		}

		// Tight limits: a result respects them, and they fire exactly
		// when the message exceeds them.
		lim := kademlia.Limits{
			MaxPeers: int(peers%8) + 1, MaxAddrs: int(addrs%8) + 1,
			MaxAddrLen: int(sizeA%64) + 1, MaxKeySize: int(sizeB%64) + 1, MaxValueSize: int(sizeA^sizeB) + 1,
		}
		if peers == 255 {
			lim = def
		}
		lim.MaxMessageSize = def.MaxMessageSize
		mt, errT := kademlia.DecodeMessage(data, lim)
		if errT == nil && (err != nil || !kadWithin(ref, sz, lim) || !kadSame(mt, m)) {
			t.Fatalf("tight limits %+v: %+v, default %+v (%v)", lim, mt, m, err)
		}
		if err == nil && kadWithin(ref, sz, lim) && errT != nil {
			t.Fatalf("tight limits %+v refuse a message within them: %v", lim, errT)
		}
		if err == nil && !kadWithin(ref, sz, lim) && !errors.Is(errT, kademlia.ErrTooLarge) {
			t.Fatalf("tight limits %+v: %v, want ErrTooLarge", lim, errT)
		}

		// The stream reader never panics, and reads what DecodeMessage reads.
		if rm, errR := kademlia.ReadMessage(bytes.NewReader(data), kademlia.Limits{}); errR == nil {
			if _, err := kademlia.DecodeMessage(rm.Append(nil), kademlia.Limits{}); err != nil {
				t.Fatalf("re-decoding a read message: %v", err)
			}
		} else if len(data) == 0 && errR != io.EOF {
			t.Fatalf("empty stream: %v", errR)
		}

		if err != nil {
			return
		}
		enc := m.Append(nil)
		// Not necessarily shorter than data: an int32 sent as a 5-byte
		// varint comes back sign-extended to 10 bytes.
		if len(enc) != m.Size() {
			t.Fatalf("re-encoding is %d bytes, Size %d", len(enc), m.Size())
		}
		m2, err := kademlia.DecodeMessage(enc, kademlia.Limits{})
		if err != nil {
			t.Fatalf("re-decoding our own encoding: %v", err)
		}
		if !kadSame(m, m2) {
			t.Fatalf("round trip differs:\n%+v\n%+v", m, m2)
		}
		if enc2 := m2.Append(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%x\n%x", enc, enc2)
		}
		if ref2, _, _, ok := kadRef(enc); !ok || !kadSame(ref2, m) {
			t.Fatalf("protowire reads our encoding differently: %+v", ref2)
		}
	})
}

// FuzzKadProviderRecords feeds the provider entries of a decoded
// ADD_PROVIDER-like message into a small provider store, as the server
// does: whatever the bytes, the store stays within its bounds and gives
// back only what it took, each with at most its address limit.
func FuzzKadProviderRecords(f *testing.F) {
	for _, s := range kadSeeds {
		f.Add(identifyHex(strings.ReplaceAll(s, " ", "")))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := kademlia.DecodeMessage(b, kademlia.Limits{})
		if err != nil {
			return
		}
		cfg := kademlia.ProviderConfig{MaxPerKey: 3, MaxKeys: 2, MaxRecords: 4, MaxAddrs: 2}
		st := kademlia.NewProviderStore(cfg)
		now := time.Unix(1_700_000_000, 0)
		took := map[peer.ID]bool{}
		for _, e := range m.ProviderPeers {
			id, err := peer.IDFromBytes(e.ID)
			if err != nil {
				continue
			}
			var addrs []ma.Multiaddr
			for _, a := range e.Addrs {
				if x, err := ma.NewMultiaddrBytes(a); err == nil {
					addrs = append(addrs, x)
				}
			}
			if st.Add(m.Key, id, addrs, now) == nil {
				took[id] = true
			}
		}
		keys, records := st.Len()
		if keys > cfg.MaxKeys || records > cfg.MaxRecords {
			t.Fatalf("store holds %d keys, %d records: over its bounds", keys, records)
		}
		for _, p := range st.Get(m.Key, now, 0) {
			if !took[p.ID] {
				t.Fatalf("store gave back %s, which it never took", p.ID)
			}
			if len(p.Addrs) > cfg.MaxAddrs {
				t.Fatalf("store kept %d addresses for one provider", len(p.Addrs))
			}
		}
	})
}
