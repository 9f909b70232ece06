package peer

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/mote-p2p/mote/wire/multiaddr"
	"github.com/mote-p2p/mote/wire/pb"
)

func mustAddr(t testing.TB, s string) multiaddr.Multiaddr {
	t.Helper()
	a, err := multiaddr.NewMultiaddr(s)
	if err != nil {
		t.Fatalf("multiaddr %q: %v", s, err)
	}
	return a
}

func TestPeerRecordEncoding(t *testing.T) {
	k, _ := UnmarshalPublicKey(unhex(vecEd25519Pub))
	id := IDFromPublicKey(k)
	rec := &PeerRecord{ID: id, Seq: 300, Addrs: []multiaddr.Multiaddr{mustAddr(t, "/ip4/192.0.2.1/tcp/4001")}}
	want := append([]byte{0x0a, 0x26}, id...)
	want = append(want, 0x10, 0xac, 0x02)
	want = append(want, 0x1a, 0x0a, 0x0a, 0x08, 0x04, 0xc0, 0x00, 0x02, 0x01, 0x06, 0x0f, 0xa1)
	got := rec.Marshal()
	if !bytes.Equal(got, want) {
		t.Fatalf("PeerRecord bytes\n got %x\nwant %x", got, want)
	}
	back, err := UnmarshalPeerRecord(got)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != id || back.Seq != 300 || len(back.Addrs) != 1 || !back.Addrs[0].Equal(rec.Addrs[0]) {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestSealOpenPeerRecord(t *testing.T) {
	for name, k := range allKeyTypes(t) {
		t.Run(name, func(t *testing.T) {
			rec := &PeerRecord{
				ID:  IDFromPublicKey(k.Public()),
				Seq: 1700000000000000000,
				Addrs: []multiaddr.Multiaddr{
					mustAddr(t, "/ip4/192.0.2.1/tcp/4001"),
					mustAddr(t, "/ip6/2001:db8::1/udp/4001/quic-v1"),
				},
			}
			data, err := SealPeerRecord(k, rec)
			if err != nil {
				t.Fatalf("SealPeerRecord: %v", err)
			}
			got, env, err := OpenPeerRecord(data)
			if err != nil {
				t.Fatalf("OpenPeerRecord: %v", err)
			}
			if got.ID != rec.ID || got.Seq != rec.Seq || len(got.Addrs) != 2 {
				t.Fatalf("record %+v", got)
			}
			if !KeyEqual(env.PublicKey, k.Public()) {
				t.Error("envelope key differs")
			}
		})
	}
}

func TestOpenPeerRecordErrors(t *testing.T) {
	k, other := testKey(1), testKey(2)
	id, otherID := IDFromPublicKey(k.Public()), IDFromPublicKey(other.Public())

	// Signed by k but naming other's ID.
	env, err := Seal(k, PeerRecordDomain, PeerRecordPayloadType, (&PeerRecord{ID: otherID, Seq: 1}).Marshal())
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = OpenPeerRecord(env.Marshal())
	if !errors.Is(err, ErrIDMismatch) {
		t.Fatalf("mismatched ID: err = %v, want ErrIDMismatch", err)
	}
	if !strings.Contains(err.Error(), id.String()) || !strings.Contains(err.Error(), otherID.String()) {
		t.Errorf("error does not name both peers: %v", err)
	}

	// Wrong payload type.
	env, _ = Seal(k, PeerRecordDomain, []byte{0x03, 0x02}, (&PeerRecord{ID: id}).Marshal())
	if _, _, err := OpenPeerRecord(env.Marshal()); !errors.Is(err, ErrPayloadType) {
		t.Errorf("wrong payload type: err = %v", err)
	}
	// Wrong domain.
	env, _ = Seal(k, "libp2p-relay-rsvp", PeerRecordPayloadType, (&PeerRecord{ID: id}).Marshal())
	if _, _, err := OpenPeerRecord(env.Marshal()); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong domain: err = %v", err)
	}
	// Signed garbage.
	env, _ = Seal(k, PeerRecordDomain, PeerRecordPayloadType, []byte{0x0a, 0x05})
	if _, _, err := OpenPeerRecord(env.Marshal()); err == nil {
		t.Error("broken payload accepted")
	}
	// Sealing a record for someone else is refused.
	if _, err := SealPeerRecord(k, &PeerRecord{ID: otherID}); !errors.Is(err, ErrIDMismatch) {
		t.Errorf("SealPeerRecord for other ID: %v", err)
	}
	if _, err := SealPeerRecord(k, nil); err == nil {
		t.Error("SealPeerRecord(nil record) succeeded")
	}
}

func TestUnmarshalPeerRecord(t *testing.T) {
	id := IDFromPublicKey(testKey(1).Public())
	good := mustAddr(t, "/ip4/192.0.2.1/tcp/4001").Bytes()
	addrField := func(b []byte) []byte { return pb.AppendBytes(nil, 3, pb.AppendBytes(nil, 1, b)) }
	base := pb.AppendBytes(nil, 1, []byte(id))

	many := bytes.Clone(base)
	for i := 0; i < MaxRecordAddrs+10; i++ {
		many = append(many, addrField(good)...)
	}
	longAddr := mustAddr(t, "/dns4/"+strings.Repeat("a", 200)+"/tcp/1")
	for len(longAddr.Bytes()) <= MaxRecordAddrLen {
		longAddr = longAddr.Encapsulate(mustAddr(t, "/dns4/"+strings.Repeat("a", 200)))
	}

	tests := []struct {
		name      string
		in        []byte
		wantErr   bool
		wantAddrs int
		wantSeq   uint64
	}{
		{"id only", base, false, 0, 0},
		{"unparsable address skipped", cat(base, addrField([]byte{0xff, 0xff, 0x03}), addrField(good)), false, 1, 0},
		{"empty address skipped", cat(base, addrField(nil), pb.AppendBytes(nil, 3, nil)), false, 0, 0},
		{"long address skipped", cat(base, addrField(longAddr.Bytes()), addrField(good)), false, 1, 0},
		{"address count capped", many, false, MaxRecordAddrs, 0},
		{"unknown fields skipped", cat(base, []byte{0x20, 0x01, 0x10, 0x07}, addrField(good)), false, 1, 7},
		{"AddressInfo unknown field", cat(base, pb.AppendBytes(nil, 3, cat([]byte{0x10, 0x01}, pb.AppendBytes(nil, 1, good)))), false, 1, 0},
		{"missing peer id", addrField(good), true, 0, 0},
		{"invalid peer id", pb.AppendBytes(nil, 1, []byte{0x12, 0x01, 0x00}), true, 0, 0},
		{"peer id repeated", cat(base, base), true, 0, 0},
		{"seq repeated", cat(base, []byte{0x10, 0x01, 0x10, 0x02}), true, 0, 0},
		{"seq as bytes", cat(base, pb.AppendBytes(nil, 2, []byte{1})), true, 0, 0},
		{"address as varint", cat(base, []byte{0x18, 0x01}), true, 0, 0},
		{"AddressInfo broken", cat(base, pb.AppendBytes(nil, 3, []byte{0x0a, 0x09})), true, 0, 0},
		{"AddressInfo repeated multiaddr", cat(base, pb.AppendBytes(nil, 3, cat(pb.AppendBytes(nil, 1, good), pb.AppendBytes(nil, 1, good)))), true, 0, 0},
		{"truncated", base[:10], true, 0, 0},
		{"oversize", cat(base, pb.AppendBytes(nil, 9, make([]byte, MaxEnvelopeSize))), true, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := UnmarshalPeerRecord(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if rec.ID != id || len(rec.Addrs) != tt.wantAddrs || rec.Seq != tt.wantSeq {
				t.Errorf("got ID %s, %d addrs, seq %d; want %d addrs, seq %d", rec.ID, len(rec.Addrs), rec.Seq, tt.wantAddrs, tt.wantSeq)
			}
		})
	}
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
