package peer

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mote-p2p/mote/wire/pb"
)

func TestSignedDataLayout(t *testing.T) {
	// WIRE-FACTS §26: 12 "libp2p-peer-record" | 02 03 01, then the payload.
	got := signedData(PeerRecordDomain, PeerRecordPayloadType, []byte{0xaa, 0xbb})
	want := append([]byte{0x12}, "libp2p-peer-record"...)
	want = append(want, 0x02, 0x03, 0x01, 0x02, 0xaa, 0xbb)
	if !bytes.Equal(got, want) {
		t.Fatalf("signed data %x, want %x", got, want)
	}
}

func TestEnvelopeSealOpen(t *testing.T) {
	payload := []byte("some payload")
	for name, k := range allKeyTypes(t) {
		t.Run(name, func(t *testing.T) {
			env, err := Seal(k, "test-domain", []byte{0x03, 0x09}, payload)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			data := env.Marshal()
			got, err := OpenEnvelope(data, "test-domain")
			if err != nil {
				t.Fatalf("OpenEnvelope: %v", err)
			}
			if !KeyEqual(got.PublicKey, k.Public()) || !bytes.Equal(got.Payload, payload) ||
				!bytes.Equal(got.PayloadType, []byte{0x03, 0x09}) || !bytes.Equal(got.Signature, env.Signature) {
				t.Fatalf("opened envelope differs: %+v", got)
			}
			if !bytes.Equal(got.Marshal(), data) {
				t.Errorf("re-marshalled envelope differs")
			}
			if _, err := OpenEnvelope(data, "other-domain"); !errors.Is(err, ErrBadSignature) {
				t.Errorf("wrong domain: err = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestEnvelopeEncoding(t *testing.T) {
	k := testKey(1)
	env, err := Seal(k, "d", []byte{0x03, 0x01}, []byte{0x42})
	if err != nil {
		t.Fatal(err)
	}
	data := env.Marshal()
	want := append([]byte{0x0a, 36}, MarshalPublicKey(k.Public())...)
	want = append(want, 0x12, 0x02, 0x03, 0x01, 0x1a, 0x01, 0x42, 0x2a, 0x40)
	want = append(want, env.Signature...)
	if !bytes.Equal(data, want) {
		t.Fatalf("envelope bytes\n got %x\nwant %x", data, want)
	}
	// Ed25519 is deterministic: the signature is fixed for this key and input.
	if err := k.Public().Verify(signedData("d", []byte{0x03, 0x01}, []byte{0x42}), env.Signature); err != nil {
		t.Fatal(err)
	}
}

func TestOpenEnvelopeErrors(t *testing.T) {
	k := testKey(1)
	env, err := Seal(k, "d", []byte{0x03, 0x01}, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	good := env.Marshal()
	keyPB := MarshalPublicKey(k.Public())
	build := func(key, typ, payload, sig []byte) []byte {
		e := Envelope{PayloadType: typ, Payload: payload, Signature: sig}
		b := e.Marshal()
		if key != nil {
			b = append(pb.AppendBytes(nil, 1, key), b...)
		}
		return b
	}
	other := testKey(2)
	tests := []struct {
		name   string
		in     []byte
		badSig bool
	}{
		{"payload flipped", build(keyPB, env.PayloadType, []byte("paylaod"), env.Signature), true},
		{"payload type changed", build(keyPB, []byte{0x03, 0x02}, env.Payload, env.Signature), true},
		{"signature flipped", build(keyPB, env.PayloadType, env.Payload, flipByte(env.Signature, 3)), true},
		{"other signer's key", build(MarshalPublicKey(other.Public()), env.PayloadType, env.Payload, env.Signature), true},
		{"missing signature", build(keyPB, env.PayloadType, env.Payload, nil), true},
		{"missing key", build(nil, env.PayloadType, env.Payload, env.Signature), false},
		{"missing payload type", build(keyPB, nil, env.Payload, env.Signature), false},
		{"bad key", build([]byte{0x08, 0x01}, env.PayloadType, env.Payload, env.Signature), false},
		{"repeated payload", append(bytes.Clone(good), pb.AppendBytes(nil, 3, []byte("x"))...), false},
		{"payload as varint", append(bytes.Clone(good), 0x18, 0x01), false},
		{"truncated", good[:len(good)-1], false},
		{"oversize", append(bytes.Clone(good), pb.AppendBytes(nil, 9, make([]byte, MaxEnvelopeSize))...), false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := OpenEnvelope(tt.in, "d")
			if err == nil {
				t.Fatalf("OpenEnvelope succeeded: %+v", e)
			}
			if got := errors.Is(err, ErrBadSignature); got != tt.badSig {
				t.Errorf("errors.Is(%v, ErrBadSignature) = %v, want %v", err, got, tt.badSig)
			}
		})
	}
	// Unknown fields (field 4 included) are skipped.
	withUnknown := append(bytes.Clone(good), pb.AppendBytes(nil, 4, []byte("x"))...)
	withUnknown = append(withUnknown, 0x30, 0x07)
	if _, err := OpenEnvelope(withUnknown, "d"); err != nil {
		t.Errorf("unknown fields: %v", err)
	}
	if _, err := OpenEnvelope(good, ""); err == nil {
		t.Error("empty domain accepted")
	}
}

func TestSealErrors(t *testing.T) {
	if _, err := Seal(nil, "d", []byte{1}, nil); err == nil {
		t.Error("nil key accepted")
	}
	if _, err := Seal(testKey(1), "", []byte{1}, nil); err == nil {
		t.Error("empty domain accepted")
	}
	if _, err := Seal(testKey(1), "d", nil, nil); err == nil {
		t.Error("empty payload type accepted")
	}
	if _, err := Seal(Ed25519PrivateKey(nil), "d", []byte{1}, nil); err == nil {
		t.Error("broken key accepted")
	}
	// An empty payload is legal and survives the round trip.
	env, err := Seal(testKey(1), "d", []byte{1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenEnvelope(env.Marshal(), "d")
	if err != nil || len(got.Payload) != 0 {
		t.Errorf("empty payload: %v, %x", err, got.Payload)
	}
}
