package peer

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
)

// KeyType is the key algorithm as numbered in libp2p's key protobuf.
type KeyType int32

// Key types, numbered as in libp2p's crypto.proto.
const (
	KeyRSA       KeyType = 0
	KeyEd25519   KeyType = 1
	KeySecp256k1 KeyType = 2
	KeyECDSA     KeyType = 3
)

// String returns the algorithm name used in libp2p's documentation.
func (t KeyType) String() string {
	switch t {
	case KeyRSA:
		return "RSA"
	case KeyEd25519:
		return "Ed25519"
	case KeySecp256k1:
		return "Secp256k1"
	case KeyECDSA:
		return "ECDSA"
	}
	return fmt.Sprintf("KeyType(%d)", int32(t))
}

// ErrBadSignature is returned (wrapped) when a signature does not verify.
var ErrBadSignature = errors.New("signature does not verify")

// PublicKey is a peer's public key. It is an interface because four
// algorithms share one wire encoding; each is a small concrete type.
type PublicKey interface {
	// Type reports the algorithm.
	Type() KeyType
	// Raw returns the Data field of the key protobuf (see MarshalPublicKey).
	Raw() []byte
	// Verify returns nil when sig is a valid signature of data, and an
	// error wrapping ErrBadSignature otherwise.
	Verify(data, sig []byte) error
}

// PrivateKey signs on behalf of a peer. Only Ed25519 keys are generated;
// other types can be loaded for compatibility with older identities.
type PrivateKey interface {
	// Type reports the algorithm.
	Type() KeyType
	// Public returns the matching public key.
	Public() PublicKey
	// Sign signs data with the algorithm's libp2p signature scheme.
	Sign(data []byte) ([]byte, error)
}

// GenerateEd25519 creates a new Ed25519 identity key from r (crypto/rand.Reader if nil).
func GenerateEd25519(r io.Reader) (PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(r)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return Ed25519PrivateKey(priv), nil
}

// Ed25519PrivateKey is an Ed25519 private key (seed followed by public key).
type Ed25519PrivateKey ed25519.PrivateKey

// Type implements PrivateKey.
func (k Ed25519PrivateKey) Type() KeyType { return KeyEd25519 }

// Public implements PrivateKey. A malformed key (not 64 bytes) yields an
// empty public key that verifies nothing, rather than a panic.
func (k Ed25519PrivateKey) Public() PublicKey {
	if len(k) != ed25519.PrivateKeySize {
		return Ed25519PublicKey(nil)
	}
	return Ed25519PublicKey(ed25519.PrivateKey(k).Public().(ed25519.PublicKey))
}

// Sign implements PrivateKey.
func (k Ed25519PrivateKey) Sign(data []byte) ([]byte, error) {
	if len(k) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("ed25519 sign: private key is %d bytes, want %d", len(k), ed25519.PrivateKeySize)
	}
	return ed25519.Sign(ed25519.PrivateKey(k), data), nil
}

// Ed25519PublicKey is a 32-byte Ed25519 public key.
type Ed25519PublicKey ed25519.PublicKey

// Type implements PublicKey.
func (k Ed25519PublicKey) Type() KeyType { return KeyEd25519 }

// Raw implements PublicKey.
func (k Ed25519PublicKey) Raw() []byte { return []byte(k) }

// Verify implements PublicKey.
func (k Ed25519PublicKey) Verify(data, sig []byte) error {
	if len(k) != ed25519.PublicKeySize || !ed25519.Verify(ed25519.PublicKey(k), data, sig) {
		return fmt.Errorf("ed25519: %w", ErrBadSignature)
	}
	return nil
}
