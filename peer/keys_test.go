package peer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/mote-p2p/mote/wire/pb"
)

// rsa2048 is generated once: RSA key generation takes a noticeable
// fraction of a second and several tests need a key.
var rsa2048 = sync.OnceValues(func() (*RSAPrivateKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return NewRSAPrivateKey(k)
})

func testRSAKey(t testing.TB) *RSAPrivateKey {
	t.Helper()
	k, err := rsa2048()
	if err != nil {
		t.Fatalf("generate rsa key: %v", err)
	}
	return k
}

// testKey returns a deterministic Ed25519 key distinct for each n.
func testKey(n byte) Ed25519PrivateKey {
	seed := bytes.Repeat([]byte{n}, ed25519.SeedSize)
	return Ed25519PrivateKey(ed25519.NewKeyFromSeed(seed))
}

// allKeyTypes returns one private key of each supported type.
func allKeyTypes(t testing.TB) map[string]PrivateKey {
	t.Helper()
	secp, err := GenerateSecp256k1(nil)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := GenerateECDSA(nil)
	if err != nil {
		t.Fatal(err)
	}
	ed, err := GenerateEd25519(nil)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]PrivateKey{"ed25519": ed, "secp256k1": secp, "ecdsa": ec, "rsa": testRSAKey(t)}
}

func TestSpecKeyVectors(t *testing.T) {
	tests := []struct {
		name     string
		pub      string
		priv     string
		typ      KeyType
		id       string
		identity bool
	}{
		{"ed25519", vecEd25519Pub, vecEd25519Priv, KeyEd25519, vecEd25519ID, true},
		{"secp256k1", vecSecpPub, vecSecpPriv, KeySecp256k1, vecSecpID, true},
		{"ecdsa", vecECDSAPub, vecECDSAPriv, KeyECDSA, vecECDSAID, false},
		{"rsa4096", vecRSAPub, vecRSAPriv, KeyRSA, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pubBytes := unhex(tt.pub)
			pub, err := UnmarshalPublicKey(pubBytes)
			if err != nil {
				t.Fatalf("UnmarshalPublicKey: %v", err)
			}
			if pub.Type() != tt.typ {
				t.Fatalf("type %v, want %v", pub.Type(), tt.typ)
			}
			if got := MarshalPublicKey(pub); !bytes.Equal(got, pubBytes) {
				t.Fatalf("MarshalPublicKey round trip:\n got %x\nwant %x", got, pubBytes)
			}
			id := IDFromPublicKey(pub)
			if tt.id != "" && id.String() != tt.id {
				t.Errorf("ID %s, want %s", id, tt.id)
			}
			if isIdentity := id[0] == mhIdentity; isIdentity != tt.identity {
				t.Errorf("identity multihash = %v, want %v", isIdentity, tt.identity)
			}

			privBytes := unhex(tt.priv)
			priv, err := UnmarshalPrivateKey(privBytes)
			if err != nil {
				t.Fatalf("UnmarshalPrivateKey: %v", err)
			}
			if !KeyEqual(priv.Public(), pub) {
				t.Fatalf("private key's public half differs from the public vector")
			}
			got, err := MarshalPrivateKey(priv)
			if err != nil {
				t.Fatalf("MarshalPrivateKey: %v", err)
			}
			if !bytes.Equal(got, privBytes) {
				t.Errorf("MarshalPrivateKey round trip:\n got %x\nwant %x", got, privBytes)
			}
			sig, err := priv.Sign([]byte("hello"))
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if err := pub.Verify([]byte("hello"), sig); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestRSATypeAlwaysEmitted(t *testing.T) {
	b := MarshalPublicKey(testRSAKey(t).Public())
	if !bytes.HasPrefix(b, []byte{0x08, 0x00, 0x12}) {
		t.Fatalf("RSA public key protobuf starts %x, want 08 00 12", b[:3])
	}
	if got := IDFromPublicKey(testRSAKey(t).Public()); got[0] != mhSHA256 || !strings.HasPrefix(got.String(), "Qm") {
		t.Errorf("RSA ID %s is not a sha2-256 multihash", got)
	}
}

func TestSignVerifyAllTypes(t *testing.T) {
	msg := []byte("libp2p signed message")
	keys := allKeyTypes(t)
	other := testKey(9).Public()
	for name, k := range keys {
		t.Run(name, func(t *testing.T) {
			sig, err := k.Sign(msg)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			pub := k.Public()
			if err := pub.Verify(msg, sig); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			bad := [][2][]byte{
				{[]byte("libp2p signed messagE"), sig},
				{msg, nil},
				{msg, sig[:len(sig)-1]},
				{msg, append(bytes.Clone(sig), 0)},
				{msg, flipByte(sig, len(sig)/2)},
				{msg, bytes.Repeat([]byte{0xff}, 600)},
			}
			for i, b := range bad {
				if err := pub.Verify(b[0], b[1]); !errors.Is(err, ErrBadSignature) {
					t.Errorf("case %d: Verify = %v, want ErrBadSignature", i, err)
				}
			}
			if err := other.Verify(msg, sig); !errors.Is(err, ErrBadSignature) {
				t.Errorf("other key verified the signature: %v", err)
			}

			// Round trip both encodings.
			pub2, err := UnmarshalPublicKey(MarshalPublicKey(pub))
			if err != nil {
				t.Fatalf("UnmarshalPublicKey: %v", err)
			}
			if !KeyEqual(pub, pub2) || IDFromPublicKey(pub) != IDFromPublicKey(pub2) {
				t.Fatalf("public key round trip changed the key")
			}
			pb, err := MarshalPrivateKey(k)
			if err != nil {
				t.Fatalf("MarshalPrivateKey: %v", err)
			}
			k2, err := UnmarshalPrivateKey(pb)
			if err != nil {
				t.Fatalf("UnmarshalPrivateKey: %v", err)
			}
			if k2.Type() != k.Type() || !KeyEqual(k2.Public(), pub) {
				t.Fatalf("private key round trip changed the key")
			}
			sig2, err := k2.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Verify(msg, sig2); err != nil {
				t.Fatalf("signature by reloaded key: %v", err)
			}
		})
	}
}

func flipByte(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

func TestUnmarshalPublicKeyErrors(t *testing.T) {
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	spki1024, err := x509.MarshalPKIXPublicKey(&rsa1024.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecSPKI, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaSPKI := testRSAKey(t).Public().Raw()
	edRaw := unhex(vecEd25519Pub)[4:]
	secpBad := bytes.Clone(unhex(vecSecpPub)[4:])
	secpBad[32] ^= 0xff // this x has no point on the curve (fixed vector, checked)

	tests := []struct {
		name        string
		in          []byte
		unsupported bool
	}{
		{"empty", nil, false},
		{"type only", []byte{0x08, 0x01}, false},
		{"data only", pb.AppendBytes(nil, 2, edRaw), false},
		{"type repeated", append([]byte{0x08, 0x01}, unhex(vecEd25519Pub)...), false},
		{"data repeated", pb.AppendBytes(unhex(vecEd25519Pub), 2, edRaw), false},
		{"unknown type 4", marshalKey(4, edRaw), true},
		{"negative type", marshalKey(-1, edRaw), true},
		{"huge type", append(pb.AppendVarint(nil, 1, 1<<40), pb.AppendBytes(nil, 2, edRaw)...), true},
		{"type as bytes", append(pb.AppendBytes(nil, 1, []byte{1}), pb.AppendBytes(nil, 2, edRaw)...), false},
		{"data as varint", []byte{0x08, 0x01, 0x10, 0x01}, false},
		{"truncated", unhex(vecEd25519Pub)[:20], false},
		{"length overflow", []byte{0x08, 0x01, 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f}, false},
		{"varint too long", []byte{0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, false},
		{"group wire type", []byte{0x0b, 0x0c}, false},
		{"field zero", []byte{0x00, 0x01}, false},
		{"oversize", marshalKey(KeyRSA, make([]byte, MaxPublicKeySize)), false},
		{"ed25519 short", marshalKey(KeyEd25519, edRaw[:31]), false},
		{"ed25519 long", marshalKey(KeyEd25519, append(bytes.Clone(edRaw), 0)), false},
		{"secp256k1 not on curve", marshalKey(KeySecp256k1, secpBad), false},
		{"secp256k1 bad prefix", marshalKey(KeySecp256k1, append([]byte{0x07}, secpBad[1:]...)), false},
		{"rsa 1024 bits", marshalKey(KeyRSA, spki1024), false},
		{"rsa garbage", marshalKey(KeyRSA, []byte{0x30, 0x03, 0x02, 0x01, 0x01}), false},
		{"rsa tagged, ecdsa inside", marshalKey(KeyRSA, ecSPKI), false},
		{"ecdsa tagged, rsa inside", marshalKey(KeyECDSA, rsaSPKI), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := UnmarshalPublicKey(tt.in)
			if err == nil {
				t.Fatalf("UnmarshalPublicKey(%x) = %v, want error", tt.in, k)
			}
			if k != nil {
				t.Errorf("non-nil key alongside error")
			}
			if got := errors.Is(err, ErrUnsupportedKeyType); got != tt.unsupported {
				t.Errorf("errors.Is(%v, ErrUnsupportedKeyType) = %v, want %v", err, got, tt.unsupported)
			}
		})
	}
}

func TestUnmarshalPublicKeyLenient(t *testing.T) {
	canonical := unhex(vecEd25519Pub)
	edRaw := canonical[4:]
	secpUncompressed := func() []byte {
		k, err := parseSecp256k1PublicKey(unhex(vecSecpPub)[4:])
		if err != nil {
			t.Fatal(err)
		}
		return k.key.SerializeUncompressed()
	}()
	tests := []struct {
		name string
		in   []byte
		want []byte // canonical re-encoding
	}{
		{"reversed field order", append(pb.AppendBytes(nil, 2, edRaw), 0x08, 0x01), canonical},
		{"unknown field skipped", append(bytes.Clone(canonical), 0x18, 0x05, 0x22, 0x01, 0x00), canonical},
		{"non-minimal type varint", append([]byte{0x08, 0x81, 0x00}, canonical[2:]...), canonical},
		{"secp256k1 uncompressed", marshalKey(KeySecp256k1, secpUncompressed), unhex(vecSecpPub)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := UnmarshalPublicKey(tt.in)
			if err != nil {
				t.Fatalf("UnmarshalPublicKey: %v", err)
			}
			if got := MarshalPublicKey(k); !bytes.Equal(got, tt.want) {
				t.Errorf("re-encoded %x, want %x", got, tt.want)
			}
		})
	}
}

func TestUnmarshalPublicKeyDoesNotAlias(t *testing.T) {
	in := unhex(vecEd25519Pub)
	k, err := UnmarshalPublicKey(in)
	if err != nil {
		t.Fatal(err)
	}
	in[10] ^= 0xff
	if !bytes.Equal(MarshalPublicKey(k), unhex(vecEd25519Pub)) {
		t.Fatal("key changed when the input buffer was modified")
	}
}

func TestUnmarshalPrivateKey(t *testing.T) {
	edPriv := unhex(vecEd25519Priv)[4:]
	pub := edPriv[32:]
	legacy := append(bytes.Clone(edPriv), pub...)
	legacyBad := bytes.Clone(legacy)
	legacyBad[95] ^= 1
	mismatched := bytes.Clone(edPriv)
	mismatched[63] ^= 1
	order := unhex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		in      []byte
		wantErr bool
	}{
		{"ed25519 64-byte", marshalKey(KeyEd25519, edPriv), false},
		{"ed25519 legacy 96-byte", marshalKey(KeyEd25519, legacy), false},
		{"ed25519 legacy copies differ", marshalKey(KeyEd25519, legacyBad), true},
		{"ed25519 public half wrong", marshalKey(KeyEd25519, mismatched), true},
		{"ed25519 seed only", marshalKey(KeyEd25519, edPriv[:32]), true},
		{"secp256k1 zero", marshalKey(KeySecp256k1, make([]byte, 32)), true},
		{"secp256k1 group order", marshalKey(KeySecp256k1, order), true},
		{"secp256k1 short", marshalKey(KeySecp256k1, order[:31]), true},
		{"ecdsa garbage", marshalKey(KeyECDSA, []byte{0x30, 0x00}), true},
		{"rsa 1024 bits", marshalKey(KeyRSA, x509.MarshalPKCS1PrivateKey(rsa1024)), true},
		{"unknown type", marshalKey(7, edPriv), true},
		{"oversize", marshalKey(KeyRSA, make([]byte, MaxPrivateKeySize)), true},
		{"empty", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := UnmarshalPrivateKey(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("UnmarshalPrivateKey err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if k != nil {
					t.Errorf("non-nil key alongside error: %#v", k)
				}
				return
			}
			if !bytes.Equal(k.Public().Raw(), pub) {
				t.Errorf("public key %x, want %x", k.Public().Raw(), pub)
			}
			// The legacy form is rewritten in the 64-byte form.
			if out, _ := MarshalPrivateKey(k); !bytes.Equal(out, marshalKey(KeyEd25519, edPriv)) {
				t.Errorf("re-marshalled %x", out)
			}
		})
	}
}

func TestRSASizeLimits(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewRSAPrivateKey(small); err == nil {
		t.Error("NewRSAPrivateKey accepted a 1024-bit key")
	}
	if _, err := NewRSAPublicKey(&small.PublicKey); err == nil {
		t.Error("NewRSAPublicKey accepted a 1024-bit key")
	}
	if _, err := NewRSAPublicKey(nil); err == nil {
		t.Error("NewRSAPublicKey accepted nil")
	}
}

func TestMarshalPrivateKeyErrors(t *testing.T) {
	if _, err := MarshalPrivateKey(nil); err == nil {
		t.Error("nil key marshalled")
	}
	if _, err := MarshalPrivateKey(Ed25519PrivateKey(make([]byte, 10))); err == nil {
		t.Error("short ed25519 key marshalled")
	}
	if _, err := MarshalPrivateKey(fakePriv{}); !errors.Is(err, ErrUnsupportedKeyType) {
		t.Errorf("foreign key type: %v", err)
	}
	if _, err := Ed25519PrivateKey(make([]byte, 10)).Sign(nil); err == nil {
		t.Error("short ed25519 key signed")
	}
	if err := Ed25519PrivateKey(make([]byte, 10)).Public().Verify(nil, make([]byte, 64)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("short ed25519 key's public half verified: %v", err)
	}
}

type fakePriv struct{}

func (fakePriv) Type() KeyType                    { return 9 }
func (fakePriv) Public() PublicKey                { return nil }
func (fakePriv) Sign(data []byte) ([]byte, error) { return nil, nil }

// fakePub is a key of arbitrary type and bytes, for ID derivation tests.
type fakePub struct {
	t   KeyType
	raw []byte
}

func (k fakePub) Type() KeyType                 { return k.t }
func (k fakePub) Raw() []byte                   { return k.raw }
func (k fakePub) Verify(data, sig []byte) error { return ErrBadSignature }

func TestKeyEqual(t *testing.T) {
	a := testKey(1).Public()
	tests := []struct {
		name string
		x, y PublicKey
		want bool
	}{
		{"same", a, testKey(1).Public(), true},
		{"different", a, testKey(2).Public(), false},
		{"same bytes other type", fakePub{KeyEd25519, a.Raw()}, fakePub{KeySecp256k1, a.Raw()}, false},
		{"nil nil", nil, nil, true},
		{"nil key", nil, a, false},
		{"key nil", a, nil, false},
	}
	for _, tt := range tests {
		if got := KeyEqual(tt.x, tt.y); got != tt.want {
			t.Errorf("%s: KeyEqual = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestKeyTypeString(t *testing.T) {
	for typ, want := range map[KeyType]string{KeyRSA: "RSA", KeyEd25519: "Ed25519", KeySecp256k1: "Secp256k1", KeyECDSA: "ECDSA", 7: "KeyType(7)"} {
		if got := typ.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int32(typ), got, want)
		}
	}
}

// TestGenerateEveryType: every key type has a generator whose keys sign,
// verify and survive marshalling, with a peer ID of the right form.
func TestGenerateEveryType(t *testing.T) {
	for _, tc := range []struct {
		name string
		gen  func() (PrivateKey, error)
		typ  KeyType
	}{
		{"ed25519", func() (PrivateKey, error) { return GenerateEd25519(nil) }, KeyEd25519},
		{"secp256k1", func() (PrivateKey, error) { return GenerateSecp256k1(nil) }, KeySecp256k1},
		{"ecdsa", func() (PrivateKey, error) { return GenerateECDSA(nil) }, KeyECDSA},
		{"rsa", func() (PrivateKey, error) { return GenerateRSA(nil, 2048) }, KeyRSA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := tc.gen()
			if err != nil {
				t.Fatal(err)
			}
			if k.Type() != tc.typ {
				t.Fatalf("type %v, want %v", k.Type(), tc.typ)
			}
			sig, err := k.Sign([]byte("msg"))
			if err != nil {
				t.Fatal(err)
			}
			if err := k.Public().Verify([]byte("msg"), sig); err != nil {
				t.Fatalf("verify: %v", err)
			}
			b, err := MarshalPrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			back, err := UnmarshalPrivateKey(b)
			if err != nil {
				t.Fatal(err)
			}
			if IDFromPublicKey(back.Public()) != IDFromPublicKey(k.Public()) {
				t.Error("peer ID changed through marshalling")
			}
		})
	}
	if _, err := GenerateRSA(nil, 1024); err == nil {
		t.Error("GenerateRSA made a 1024-bit key")
	}
}
