package peer

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/mote-p2p/mote/wire/multiaddr"
	"github.com/mote-p2p/mote/wire/multibase"
)

func TestIDFromPublicKeyThreshold(t *testing.T) {
	// The protobuf is 4 bytes of framing plus the key bytes (for keys
	// under 128 bytes), so 38 raw bytes make 42, the last inlined size.
	tests := []struct {
		rawLen   int
		identity bool
	}{
		{32, true}, {33, true}, {38, true}, {39, false}, {91, false},
	}
	for _, tt := range tests {
		k := fakePub{KeyEd25519, bytes.Repeat([]byte{0xa5}, tt.rawLen)}
		pb := MarshalPublicKey(k)
		id := IDFromPublicKey(k)
		var want []byte
		if tt.identity {
			want = append([]byte{0x00, byte(len(pb))}, pb...)
		} else {
			sum := sha256.Sum256(pb)
			want = append([]byte{0x12, 0x20}, sum[:]...)
		}
		if string(id) != string(want) {
			t.Errorf("raw %d (pb %d): ID %x, want %x", tt.rawLen, len(pb), []byte(id), want)
		}
		if err := id.Validate(); err != nil {
			t.Errorf("raw %d: Validate: %v", tt.rawLen, err)
		}
	}
	if IDFromPublicKey(nil) != "" {
		t.Error("IDFromPublicKey(nil) is not empty")
	}
}

func TestIDVectors(t *testing.T) {
	tests := []struct {
		name, pub, text, cid string
	}{
		{"ed25519", vecEd25519Pub, vecEd25519ID, vecEd25519CID},
		{"secp256k1", vecSecpPub, vecSecpID, ""},
		{"ecdsa", vecECDSAPub, vecECDSAID, vecECDSACID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := UnmarshalPublicKey(unhex(tt.pub))
			if err != nil {
				t.Fatal(err)
			}
			id := IDFromPublicKey(k)
			if id.String() != tt.text {
				t.Errorf("String = %s, want %s", id, tt.text)
			}
			if tt.cid != "" && id.CID() != tt.cid {
				t.Errorf("CID = %s, want %s", id.CID(), tt.cid)
			}
			for _, s := range []string{tt.text, id.CID()} {
				got, err := Decode(s)
				if err != nil {
					t.Fatalf("Decode(%s): %v", s, err)
				}
				if got != id {
					t.Errorf("Decode(%s) = %s", s, got)
				}
			}
			if !id.MatchesPublicKey(k) {
				t.Error("MatchesPublicKey(own key) = false")
			}
			if id.MatchesPublicKey(testKey(3).Public()) {
				t.Error("MatchesPublicKey(other key) = true")
			}
		})
	}
}

// encodeBase36 is the test's independent base36 encoder (multibase 'k').
func encodeBase36(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	s := new(big.Int).SetBytes(b).Text(36)
	if s == "0" {
		s = ""
	}
	return strings.Repeat("0", zeros) + s
}

func TestDecodeMultibases(t *testing.T) {
	id, err := Decode(vecEd25519ID)
	if err != nil {
		t.Fatal(err)
	}
	cidBytes := append([]byte{0x01, 0x72}, id...)
	forms := map[string]string{
		"base32 upper": "B" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(cidBytes),
		"base58btc":    "z" + string(multibase.AppendBase58(nil, string(cidBytes))),
		"base36":       "k" + encodeBase36(cidBytes),
		"base36 upper": "K" + strings.ToUpper(encodeBase36(cidBytes)),
		"base16":       "f" + hex.EncodeToString(cidBytes),
		"base16 upper": "F" + strings.ToUpper(hex.EncodeToString(cidBytes)),
	}
	for name, s := range forms {
		got, err := Decode(s)
		if err != nil {
			t.Errorf("%s: Decode(%s): %v", name, s, err)
			continue
		}
		if got != id {
			t.Errorf("%s: Decode(%s) = %s", name, s, got)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	ecdsaID, _ := Decode(vecECDSAID)
	b32 := func(b []byte) string { return "b" + base32Lower.EncodeToString(b) }
	sha1MH := append([]byte{0x11, 0x14}, make([]byte, 20)...)
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"Qm only", "Qm"},
		{"one", "1"},
		{"invalid base58", "QmVMT29id3TUASyfZZ6k9hmNyc2nYabCo4uMSpDw4zrgD0"},
		{"truncated base58", vecEd25519ID[:len(vecEd25519ID)-1]},
		{"extra base58", vecEd25519ID + "1"},
		{"dag-pb cid", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"},
		{"cid v0 in multibase", b32(append([]byte{0x00, 0x72}, ecdsaID...))},
		{"cid v2", b32(append([]byte{0x02, 0x72}, ecdsaID...))},
		{"cid non-minimal version", b32(append([]byte{0x81, 0x00, 0x72}, ecdsaID...))},
		{"cid sha1 multihash", b32(append([]byte{0x01, 0x72}, sha1MH...))},
		{"cid truncated", vecEd25519CID[:30]},
		{"unknown multibase", "xabc"},
		{"single char", "b"},
		{"bad base32", "bafz!!!"},
		{"bad base36", "k51qzi5uqu5d-"},
		{"bad hex", "f0172zz"},
		{"too long", "b" + strings.Repeat("a", MaxIDStringLen)},
		{"garbage", "hello world"},
		{"unicode", "Qm\u00e9\u00e9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if id, err := Decode(tt.in); err == nil {
				t.Fatalf("Decode(%q) = %x, want error", tt.in, []byte(id))
			}
		})
	}
}

func TestIDFromBytes(t *testing.T) {
	edID := []byte(IDFromPublicKey(testKey(1).Public()))
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"ed25519 identity", edID, true},
		{"sha256", append([]byte{0x12, 0x20}, make([]byte, 32)...), true},
		{"identity max", append([]byte{0x00, 0x80, 0x01}, make([]byte, MaxIdentityDigest)...), true},
		{"identity over max", append([]byte{0x00, 0x81, 0x01}, make([]byte, MaxIdentityDigest+1)...), false},
		{"identity empty", []byte{0x00, 0x00}, false},
		{"identity length short", append([]byte{0x00, 0x03}, 1, 2), false},
		{"identity length long", append([]byte{0x00, 0x01}, 1, 2), false},
		{"sha256 short digest", append([]byte{0x12, 0x1f}, make([]byte, 31)...), false},
		{"sha256 trailing", append([]byte{0x12, 0x20}, make([]byte, 33)...), false},
		{"sha1", append([]byte{0x11, 0x14}, make([]byte, 20)...), false},
		{"non-minimal code", append([]byte{0x92, 0x00, 0x20}, make([]byte, 32)...), false},
		{"non-minimal length", append([]byte{0x12, 0xa0, 0x00}, make([]byte, 32)...), false},
		{"unterminated varint", []byte{0x80}, false},
		{"long varint", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := IDFromBytes(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("IDFromBytes(%x) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if tt.ok && string(id) != string(tt.in) {
				t.Errorf("ID %x, want %x", []byte(id), tt.in)
			}
			if tt.ok != (ID(tt.in).Validate() == nil) {
				t.Errorf("Validate disagrees with IDFromBytes")
			}
		})
	}
}

func TestIDPublicKey(t *testing.T) {
	for _, pubHex := range []string{vecEd25519Pub, vecSecpPub} {
		k, _ := UnmarshalPublicKey(unhex(pubHex))
		got, err := IDFromPublicKey(k).PublicKey()
		if err != nil {
			t.Fatalf("PublicKey: %v", err)
		}
		if !KeyEqual(got, k) {
			t.Errorf("extracted key differs")
		}
	}
	ec, _ := UnmarshalPublicKey(unhex(vecECDSAPub))
	if _, err := IDFromPublicKey(ec).PublicKey(); !errors.Is(err, ErrNoPublicKey) {
		t.Errorf("sha256 ID: PublicKey err = %v, want ErrNoPublicKey", err)
	}
	// An identity multihash that does not hold a key.
	bogus := ID([]byte{0x00, 0x03, 0x08, 0x01, 0x12})
	if _, err := bogus.PublicKey(); err == nil {
		t.Error("bogus identity ID yielded a key")
	}
	if _, err := ID("").PublicKey(); err == nil {
		t.Error("empty ID yielded a key")
	}
	if ID("").MatchesPublicKey(nil) {
		t.Error("empty ID matches nil key")
	}
}

func TestIDText(t *testing.T) {
	id, _ := Decode(vecEd25519ID)
	if got, want := id.ShortString(), "12D3KooW…o7R3pq"; got != want {
		t.Errorf("ShortString = %q, want %q", got, want)
	}
	if got := ID("").String(); got != "" {
		t.Errorf("empty String = %q", got)
	}
	if got := ID("").CID(); got != "" {
		t.Errorf("empty CID = %q", got)
	}
	if got := ID("").ShortString(); got != "" {
		t.Errorf("empty ShortString = %q", got)
	}
	if err := ID("").Validate(); err == nil {
		t.Error("empty ID validates")
	}

	j, err := json.Marshal(map[string]ID{"peer": id})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"peer":"` + vecEd25519ID + `"}`; string(j) != want {
		t.Errorf("JSON %s, want %s", j, want)
	}
	var back map[string]ID
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	if back["peer"] != id {
		t.Errorf("JSON round trip gave %s", back["peer"])
	}
	var bad ID
	if err := bad.UnmarshalText([]byte("nope")); err == nil {
		t.Error("UnmarshalText accepted garbage")
	}
}

// TestAddrInfo: /p2p addresses split into peers and addresses, grouped by
// peer, and written back.
func TestAddrInfo(t *testing.T) {
	k, _ := GenerateEd25519(nil)
	id := IDFromPublicKey(k.Public())
	k2, _ := GenerateEd25519(nil)
	id2 := IDFromPublicKey(k2.Public())
	m := func(s string) multiaddr.Multiaddr { return multiaddr.StringCast(s) }
	tcp := m("/ip4/127.0.0.1/tcp/4001")
	quic := m("/ip4/127.0.0.1/udp/4001/quic-v1")
	relayed := m("/ip4/127.0.0.1/tcp/4002/p2p/" + id2.String() + "/p2p-circuit")

	ai, err := AddrInfoFromP2pAddr(m(tcp.String() + "/p2p/" + id.String()))
	if err != nil || ai.ID != id || len(ai.Addrs) != 1 || !ai.Addrs[0].Equal(tcp) {
		t.Fatalf("AddrInfoFromP2pAddr: %v, %v", ai, err)
	}
	if ai, err := AddrInfoFromP2pAddr(m("/p2p/" + id.String())); err != nil || ai.ID != id || len(ai.Addrs) != 0 {
		t.Errorf("a bare /p2p address: %v, %v", ai, err)
	}
	if _, err := AddrInfoFromP2pAddr(tcp); err == nil {
		t.Error("an address without /p2p was accepted")
	}
	if ai, err := AddrInfoFromP2pAddr(m(relayed.String() + "/p2p/" + id.String())); err != nil || ai.ID != id || !ai.Addrs[0].Equal(relayed) {
		t.Errorf("a relayed address names the relay, not the peer: %v, %v", ai, err)
	}

	all, err := AddrInfosFromP2pAddrs(
		m(tcp.String()+"/p2p/"+id.String()), m(tcp.String()+"/p2p/"+id2.String()), m(quic.String()+"/p2p/"+id.String()))
	if err != nil || len(all) != 2 || all[0].ID != id || len(all[0].Addrs) != 2 || all[1].ID != id2 {
		t.Fatalf("AddrInfosFromP2pAddrs: %v, %v", all, err)
	}
	back, err := all[0].P2pAddrs()
	if err != nil || len(back) != 2 || back[1].String() != quic.String()+"/p2p/"+id.String() {
		t.Errorf("P2pAddrs: %v, %v", back, err)
	}
	if len(all[0].Addrs[0]) != 2 {
		t.Error("P2pAddrs changed the addresses it was given")
	}
	if bare, _ := (AddrInfo{ID: id}).P2pAddrs(); len(bare) != 1 || bare[0].String() != "/p2p/"+id.String() {
		t.Errorf("P2pAddrs of a peer without addresses: %v", bare)
	}
}
