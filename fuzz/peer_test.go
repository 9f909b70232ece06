package fuzz

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/wire/multiaddr"
)

// Spec vectors (libp2p/specs peer-ids.md) used as seeds.
const (
	peerFuzzEd25519Pub = "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
	peerFuzzSecpPub    = "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99"
	peerFuzzECDSAPub   = "0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa36ae0e8f5d530899d83abab44abf3161f162a4bc901d8e6ecda020e8b6d5f8da30525e71d6851510c098e5c47c646a597fb4dcec034e9f77c409e62"
)

func peerFuzzHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// peerFuzzKey is a fixed Ed25519 key, so seeds are reproducible.
func peerFuzzKey() peer.PrivateKey {
	return peer.Ed25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)))
}

// peerFuzzRecord returns a sealed peer record and its payload.
func peerFuzzRecord(f *testing.F) (envelope, payload []byte) {
	k := peerFuzzKey()
	var addrs []multiaddr.Multiaddr
	for _, s := range []string{"/ip4/192.0.2.1/tcp/4001", "/ip6/2001:db8::1/udp/4001/quic-v1", "/dns4/example.com/tcp/443/wss"} {
		a, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			f.Fatal(err)
		}
		addrs = append(addrs, a)
	}
	rec := &peer.PeerRecord{ID: peer.IDFromPublicKey(k.Public()), Seq: 1752000000000000000, Addrs: addrs}
	env, err := peer.SealPeerRecord(k, rec)
	if err != nil {
		f.Fatal(err)
	}
	return env, rec.Marshal()
}

func FuzzUnmarshalPublicKey(f *testing.F) {
	for _, s := range []string{peerFuzzEd25519Pub, peerFuzzSecpPub, peerFuzzECDSAPub} {
		b := peerFuzzHex(s)
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(bytes.Clone(b), b...))
	}
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x00, 0x12, 0x00})
	f.Add([]byte{0x08, 0x04, 0x12, 0x01, 0x00})
	f.Add([]byte{0x12, 0x20, 0x08, 0x01})
	f.Add([]byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := peer.UnmarshalPublicKey(b)
		if err != nil {
			if k != nil {
				t.Fatal("key returned with error")
			}
			return
		}
		pb := peer.MarshalPublicKey(k)
		k2, err := peer.UnmarshalPublicKey(pb)
		if err != nil {
			t.Fatalf("re-encoded key does not decode: %v", err)
		}
		if !peer.KeyEqual(k, k2) || !bytes.Equal(peer.MarshalPublicKey(k2), pb) {
			t.Fatal("canonical encoding is not stable")
		}
		id := peer.IDFromPublicKey(k)
		if err := id.Validate(); err != nil {
			t.Fatalf("derived ID invalid: %v", err)
		}
		if !id.MatchesPublicKey(k2) {
			t.Fatal("ID does not match its own key")
		}
		_ = k.Verify(b, b)
	})
}

func FuzzDecodeID(f *testing.F) {
	for _, s := range []string{
		"12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq",
		"bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6",
		"16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY",
		"QmVMT29id3TUASyfZZ6k9hmNyc2nYabCo4uMSpDw4zrgDk",
		"bafzbeidigywdclqvl5hxfefwp5onbffcfife7pza57mmfb4tiqmtkdjw64",
		"k51qzi5uqu5dh",
		"f01720012",
		"zQ3s",
		"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
		"", "1", "Qm", "b", "QmVMT29id3TUASyfZZ6k9hmNyc2nYabCo4uMSpDw4zrgD0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := peer.Decode(s)
		if err != nil {
			return
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("Decode returned an invalid ID: %v", err)
		}
		for _, text := range []string{id.String(), id.CID()} {
			back, err := peer.Decode(text)
			if err != nil || back != id {
				t.Fatalf("Decode(%q) = %x, %v; want %x", text, []byte(back), err, []byte(id))
			}
		}
		_ = id.ShortString()
	})
}

func FuzzIDFromBytes(f *testing.F) {
	for _, s := range []string{peerFuzzEd25519Pub, peerFuzzSecpPub} {
		pb := peerFuzzHex(s)
		f.Add(append([]byte{0x00, byte(len(pb))}, pb...))
	}
	f.Add(append([]byte{0x12, 0x20}, make([]byte, 32)...))
	f.Add(append([]byte{0x12, 0x20}, make([]byte, 31)...))
	f.Add([]byte{0x00, 0x00})
	f.Add([]byte{0x00, 0x80, 0x01})
	f.Add([]byte{0x92, 0x00, 0x20})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := peer.IDFromBytes(b)
		if err != nil {
			return
		}
		if string(id) != string(b) {
			t.Fatal("ID differs from its bytes")
		}
		back, err := peer.Decode(id.String())
		if err != nil || back != id {
			t.Fatalf("text round trip: %x, %v", []byte(back), err)
		}
		if k, err := id.PublicKey(); err == nil && k == nil {
			t.Fatal("nil key without error")
		}
	})
}

func FuzzOpenEnvelope(f *testing.F) {
	env, payload := peerFuzzRecord(f)
	f.Add(env)
	f.Add(env[:len(env)/2])
	f.Add(payload)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00, 0x12, 0x02, 0x03, 0x01, 0x2a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := peer.OpenEnvelope(b, peer.PeerRecordDomain)
		if err != nil {
			if e != nil {
				t.Fatal("envelope returned with error")
			}
			return
		}
		again, err := peer.OpenEnvelope(e.Marshal(), peer.PeerRecordDomain)
		if err != nil {
			t.Fatalf("re-marshalled envelope does not open: %v", err)
		}
		if !bytes.Equal(again.Payload, e.Payload) || !bytes.Equal(again.PayloadType, e.PayloadType) {
			t.Fatal("envelope round trip changed it")
		}
		_, _, _ = peer.OpenPeerRecord(b)
	})
}

func FuzzUnmarshalPeerRecord(f *testing.F) {
	_, payload := peerFuzzRecord(f)
	f.Add(payload)
	f.Add(payload[:len(payload)-3])
	f.Add(append(bytes.Clone(payload), 0x1a, 0x03, 0x0a, 0x01, 0xff))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	f.Add([]byte{0x10, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := peer.UnmarshalPeerRecord(b)
		if err != nil {
			if r != nil {
				t.Fatal("record returned with error")
			}
			return
		}
		if len(r.Addrs) > peer.MaxRecordAddrs {
			t.Fatalf("%d addresses exceed the bound", len(r.Addrs))
		}
		if err := r.ID.Validate(); err != nil {
			t.Fatalf("invalid ID accepted: %v", err)
		}
		r2, err := peer.UnmarshalPeerRecord(r.Marshal())
		if err != nil {
			t.Fatalf("re-marshalled record does not decode: %v", err)
		}
		if r2.ID != r.ID || r2.Seq != r.Seq || len(r2.Addrs) != len(r.Addrs) {
			t.Fatalf("round trip changed the record: %+v vs %+v", r, r2)
		}
		for i := range r.Addrs {
			if !r.Addrs[i].Equal(r2.Addrs[i]) {
				t.Fatalf("address %d changed", i)
			}
		}
	})
}
