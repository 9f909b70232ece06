package peer

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/mote-p2p/mote/wire/pb"
)

// Size limits for key protobufs. An 8192-bit RSA SubjectPublicKeyInfo is
// about 1.1 KiB and its PKCS#1 private key about 4.7 KiB, so these leave
// room without letting a peer make us parse megabytes of ASN.1.
const (
	MaxPublicKeySize  = 4 << 10
	MaxPrivateKeySize = 16 << 10
)

// ErrUnsupportedKeyType is returned (wrapped) for a key type this package
// does not implement, so callers can tell "unknown algorithm" from "corrupt".
var ErrUnsupportedKeyType = errors.New("unsupported key type")

// MarshalPublicKey encodes k as libp2p's PublicKey protobuf (keys.proto).
// The encoding is the deterministic one peer IDs are hashed from: Type
// then Data, each once, with minimal varints, and Type emitted even for
// RSA (0). A nil key yields nil.
func MarshalPublicKey(k PublicKey) []byte {
	if k == nil {
		return nil
	}
	return marshalKey(k.Type(), k.Raw())
}

func marshalKey(t KeyType, data []byte) []byte {
	return appendKey(make([]byte, 0, keyLen(t, data)), t, data)
}

// keyLen is the size of the key protobuf for t and data.
func keyLen(t KeyType, data []byte) int {
	return pb.SizeVarint(1, uint64(int64(t))) + pb.SizeBytes(2, len(data))
}

// appendKey appends the key protobuf for t and data to b.
func appendKey(b []byte, t KeyType, data []byte) []byte {
	// An enum is an int32 on the wire; negative values sign-extend to 64
	// bits, which uint64(int64(t)) reproduces.
	b = pb.AppendVarint(b, 1, uint64(int64(t)))
	return pb.AppendBytes(b, 2, data)
}

// unmarshalKey decodes the shared shape of the PublicKey and PrivateKey
// protobufs. Both fields are proto2 "required"; a repeated field is
// rejected rather than resolved last-wins, because two implementations
// disagreeing on which copy counts would disagree on the peer ID. Unknown
// fields are skipped as proto2 requires.
func unmarshalKey(b []byte, limit int) (KeyType, []byte, error) {
	if len(b) > limit {
		return 0, nil, fmt.Errorf("key protobuf is %d bytes, limit %d", len(b), limit)
	}
	var (
		t              KeyType
		data           []byte
		haveT, haveDat bool
	)
	// b is bounded by limit already, so the reader needs no bounds of its
	// own; groups are refused.
	r := pb.NewReader(b, pb.NoLimit, pb.NoLimit)
	for {
		f, ok, err := r.Next()
		if err != nil {
			return 0, nil, fmt.Errorf("key protobuf: %w", err)
		}
		if !ok {
			break
		}
		switch f.Num {
		case 1:
			if f.Type != pb.VarintType {
				return 0, nil, fmt.Errorf("key protobuf: Type has wire type %d, want varint", f.Type)
			}
			if haveT {
				return 0, nil, errors.New("key protobuf: Type field repeated")
			}
			// Valid key types are tiny; anything not fitting an int32
			// (including sign-extended negatives) is not one of them.
			if f.Value > 1<<31-1 {
				return 0, nil, fmt.Errorf("key protobuf: key type %d: %w", f.Value, ErrUnsupportedKeyType)
			}
			t, haveT = KeyType(f.Value), true
		case 2:
			if f.Type != pb.BytesType {
				return 0, nil, fmt.Errorf("key protobuf: Data has wire type %d, want bytes", f.Type)
			}
			if haveDat {
				return 0, nil, errors.New("key protobuf: Data field repeated")
			}
			data, haveDat = f.Bytes, true
		}
	}
	if !haveT {
		return 0, nil, errors.New("key protobuf: missing Type")
	}
	if !haveDat {
		return 0, nil, errors.New("key protobuf: missing Data")
	}
	return t, data, nil
}

// UnmarshalPublicKey decodes a PublicKey protobuf. The key material is
// validated (curve points, RSA size) and re-encoded canonically, so
// IDFromPublicKey of the result is the ID a go-libp2p peer would compute.
// The result does not alias b.
func UnmarshalPublicKey(b []byte) (PublicKey, error) {
	t, data, err := unmarshalKey(b, MaxPublicKeySize)
	if err != nil {
		return nil, fmt.Errorf("unmarshal public key: %w", err)
	}
	k, err := publicKeyFromRaw(t, data)
	if err != nil {
		return nil, fmt.Errorf("unmarshal public key: %w", err)
	}
	return k, nil
}

// publicKeyFromRaw builds a key of type t from its Data bytes.
func publicKeyFromRaw(t KeyType, data []byte) (PublicKey, error) {
	switch t {
	case KeyEd25519:
		if len(data) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("ed25519 public key is %d bytes, want %d", len(data), ed25519.PublicKeySize)
		}
		return Ed25519PublicKey(bytes.Clone(data)), nil
	case KeySecp256k1:
		return parseSecp256k1PublicKey(data)
	case KeyECDSA:
		return parseECDSAPublicKey(data)
	case KeyRSA:
		return parseRSAPublicKey(data)
	}
	return nil, fmt.Errorf("key type %v: %w", t, ErrUnsupportedKeyType)
}

// MarshalPrivateKey encodes k as libp2p's PrivateKey protobuf, the form
// Kubo keeps (base64) in its config and LoadOrCreateKey keeps in its file.
// Ed25519 keys use the 64-byte seed‖public form.
func MarshalPrivateKey(k PrivateKey) ([]byte, error) {
	var data []byte
	switch k := k.(type) {
	case Ed25519PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("marshal private key: ed25519 key is %d bytes, want %d", len(k), ed25519.PrivateKeySize)
		}
		data = []byte(k)
	case *RSAPrivateKey:
		data = x509.MarshalPKCS1PrivateKey(k.key)
	case *Secp256k1PrivateKey:
		data = k.key.Serialize()
	case *ECDSAPrivateKey:
		der, err := x509.MarshalECPrivateKey(k.key)
		if err != nil {
			return nil, fmt.Errorf("marshal private key: ecdsa: %w", err)
		}
		data = der
	case nil:
		return nil, errors.New("marshal private key: nil key")
	default:
		return nil, fmt.Errorf("marshal private key: %T: %w", k, ErrUnsupportedKeyType)
	}
	return marshalKey(k.Type(), data), nil
}

// UnmarshalPrivateKey decodes a PrivateKey protobuf. Ed25519 accepts the
// 64-byte seed‖public form and the legacy 96-byte seed‖public‖public form;
// in both, the stored public half must match the seed, so a corrupted key
// file is reported instead of producing signatures nobody can verify.
func UnmarshalPrivateKey(b []byte) (PrivateKey, error) {
	t, data, err := unmarshalKey(b, MaxPrivateKeySize)
	if err != nil {
		return nil, fmt.Errorf("unmarshal private key: %w", err)
	}
	// Each case assigns to k only on success so that k never holds a
	// typed nil pointer.
	var k PrivateKey
	switch t {
	case KeyEd25519:
		var ek Ed25519PrivateKey
		if ek, err = parseEd25519PrivateKey(data); err == nil {
			k = ek
		}
	case KeyRSA:
		var rk *RSAPrivateKey
		if rk, err = parseRSAPrivateKey(data); err == nil {
			k = rk
		}
	case KeySecp256k1:
		var sk *Secp256k1PrivateKey
		if sk, err = parseSecp256k1PrivateKey(data); err == nil {
			k = sk
		}
	case KeyECDSA:
		var ek *ECDSAPrivateKey
		if ek, err = parseECDSAPrivateKey(data); err == nil {
			k = ek
		}
	default:
		err = fmt.Errorf("key type %v: %w", t, ErrUnsupportedKeyType)
	}
	if err != nil {
		return nil, fmt.Errorf("unmarshal private key: %w", err)
	}
	return k, nil
}

// parseEd25519PrivateKey decodes the 64- or legacy 96-byte Ed25519 forms.
func parseEd25519PrivateKey(data []byte) (Ed25519PrivateKey, error) {
	switch len(data) {
	case ed25519.PrivateKeySize:
	case ed25519.PrivateKeySize + ed25519.PublicKeySize:
		if !bytes.Equal(data[32:64], data[64:]) {
			return nil, errors.New("ed25519 legacy 96-byte private key: the two public key copies differ")
		}
		data = data[:ed25519.PrivateKeySize]
	default:
		return nil, fmt.Errorf("ed25519 private key is %d bytes, want 64 or 96", len(data))
	}
	k := ed25519.NewKeyFromSeed(data[:ed25519.SeedSize])
	if !bytes.Equal(k[ed25519.SeedSize:], data[ed25519.SeedSize:]) {
		return nil, errors.New("ed25519 private key: public half does not match the seed")
	}
	return Ed25519PrivateKey(k), nil
}

// parseRSAPrivateKey decodes a DER PKCS#1 RSA private key.
func parseRSAPrivateKey(data []byte) (*RSAPrivateKey, error) {
	k, err := x509.ParsePKCS1PrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("rsa private key: parse PKCS#1: %w", err)
	}
	return NewRSAPrivateKey(k)
}

// parseECDSAPrivateKey decodes a DER SEC1 EC private key (what go-libp2p
// writes, despite the spec text saying PKIX).
func parseECDSAPrivateKey(data []byte) (*ECDSAPrivateKey, error) {
	k, err := x509.ParseECPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("ecdsa private key: parse SEC1: %w", err)
	}
	return NewECDSAPrivateKey(k)
}

// KeyEqual reports whether a and b are the same key: same type and same
// canonical Data bytes. Two nil keys are equal.
func KeyEqual(a, b PublicKey) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Type() == b.Type() && bytes.Equal(a.Raw(), b.Raw())
}
