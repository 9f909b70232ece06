package fuzz

import (
	"bytes"
	"encoding/hex"
	"io"
	"testing"
	"testing/iotest"

	"github.com/mote-p2p/mote/identify"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/wire"
)

// identifyVectorKey is the Ed25519 public-key test vector of the peer-ID spec.
const identifyVectorKey = "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"

// identifyExample is WIRE-FACTS §26 "Identify response" without its length prefix.
const identifyExample = "0a24080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e" +
	"120804c0000201060fa1" +
	"1a0e2f697066732f69642f312e302e30" +
	"1a102f697066732f70696e672f312e302e30" +
	"220804c6336401060fa1" +
	"320c6d792d6167656e742f302e31"

func identifyHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// identifyRemote is the peer the fuzzed messages are verified against.
func identifyRemote(t testing.TB) peer.ID {
	pub, err := peer.UnmarshalPublicKey(identifyHex(identifyVectorKey))
	if err != nil {
		t.Fatal(err)
	}
	return peer.IDFromPublicKey(pub)
}

// identifySame compares two messages including proto2 presence of the
// singular byte fields.
func identifySame(a, b *identify.Message) bool {
	same := func(x, y []byte) bool { return (x == nil) == (y == nil) && bytes.Equal(x, y) }
	if !same(a.PublicKey, b.PublicKey) || !same(a.ObservedAddr, b.ObservedAddr) || !same(a.SignedPeerRecord, b.SignedPeerRecord) ||
		a.ProtocolVersion != b.ProtocolVersion || a.AgentVersion != b.AgentVersion ||
		len(a.ListenAddrs) != len(b.ListenAddrs) || len(a.Protocols) != len(b.Protocols) {
		return false
	}
	for i := range a.ListenAddrs {
		if !bytes.Equal(a.ListenAddrs[i], b.ListenAddrs[i]) {
			return false
		}
	}
	for i := range a.Protocols {
		if a.Protocols[i] != b.Protocols[i] {
			return false
		}
	}
	return true
}

func FuzzIdentifyDecode(f *testing.F) {
	f.Add(identifyHex(identifyExample))
	f.Add([]byte{})
	f.Add(identifyHex("0a00" + "2200" + "4200"))                           // present but empty byte fields
	f.Add(identifyHex("389601" + "490102030405060708" + "5b08016201005c")) // unknown fields and a group
	f.Add(identifyHex("0b0b0b0c0c0c"))
	f.Add(identifyHex("0affffffffffffffff7f"))
	remote := identifyRemote(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := identify.DecodeMessage(data)
		if err != nil {
			return
		}
		if len(m.Protocols) > identify.MaxProtocols || len(m.ListenAddrs) > identify.MaxAddrs {
			t.Fatalf("caps exceeded: %d protocols, %d addrs", len(m.Protocols), len(m.ListenAddrs))
		}
		enc := m.Append(nil)
		m2, err := identify.DecodeMessage(enc)
		if err != nil {
			t.Fatalf("re-decoding our own encoding: %v", err)
		}
		if !identifySame(m, m2) {
			t.Fatalf("round trip differs:\n%+v\n%+v", m, m2)
		}
		if enc2 := m2.Append(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%x\n%x", enc, enc2)
		}
		_, _ = identify.Verify(m, remote) // must not panic
	})
}

func FuzzIdentifyRead(f *testing.F) {
	example := identifyHex(identifyExample)
	f.Add(wire.AppendLP(nil, example))
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add(wire.AppendLP(wire.AppendLP(nil, example), identifyHex("4203010203")))
	var many []byte
	for range identify.MaxMessages + 1 {
		many = append(many, 0)
	}
	f.Add(many)
	f.Add([]byte{0x80, 0x40}) // declares 8192 bytes, sends none
	f.Add([]byte{0x81, 0x40}) // declares 8193 bytes
	remote := identifyRemote(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var r io.Reader = bytes.NewReader(data)
		if len(data) > 0 && data[len(data)-1]&1 == 1 {
			r = iotest.OneByteReader(r) // no io.ByteReader: the unbuffered path
		}
		m, err := identify.ReadMessage(r)
		if err != nil {
			return
		}
		if len(m.Protocols) > identify.MaxProtocols || len(m.ListenAddrs) > identify.MaxAddrs {
			t.Fatalf("caps exceeded: %d protocols, %d addrs", len(m.Protocols), len(m.ListenAddrs))
		}
		if res, err := identify.Verify(m, remote); err == nil {
			if len(res.Protocols) > identify.MaxProtocols || len(res.ListenAddrs) > identify.MaxAddrs ||
				len(res.AgentVersion) > identify.MaxVersionLen || len(res.ProtocolVersion) > identify.MaxVersionLen {
				t.Fatal("verified result exceeds its bounds")
			}
		}
	})
}
