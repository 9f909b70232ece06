package peer

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// Secp256k1PublicKey is a secp256k1 public key. Raw returns the 33-byte
// compressed point, the only form libp2p hashes into peer IDs.
type Secp256k1PublicKey struct {
	key *secp256k1.PublicKey
	raw []byte
}

// parseSecp256k1PublicKey accepts the compressed (33-byte) form and, like
// go-libp2p, the uncompressed (65-byte) one; either way the key is
// re-encoded compressed so that its peer ID is the canonical one.
func parseSecp256k1PublicKey(b []byte) (*Secp256k1PublicKey, error) {
	k, err := secp256k1.ParsePubKey(b)
	if err != nil {
		return nil, fmt.Errorf("secp256k1 public key: %w", err)
	}
	return &Secp256k1PublicKey{key: k, raw: k.SerializeCompressed()}, nil
}

// Type implements PublicKey.
func (k *Secp256k1PublicKey) Type() KeyType { return KeySecp256k1 }

// Raw implements PublicKey; the result must not be modified.
func (k *Secp256k1PublicKey) Raw() []byte { return k.raw }

// Verify implements PublicKey (ECDSA over SHA-256, DER signature).
func (k *Secp256k1PublicKey) Verify(data, sig []byte) error {
	s, err := secpecdsa.ParseDERSignature(sig)
	if err != nil {
		return fmt.Errorf("secp256k1: %w (%v)", ErrBadSignature, err)
	}
	h := sha256.Sum256(data)
	if !s.Verify(h[:], k.key) {
		return fmt.Errorf("secp256k1: %w", ErrBadSignature)
	}
	return nil
}

// Secp256k1PrivateKey is a secp256k1 private key (a 32-byte scalar).
type Secp256k1PrivateKey struct {
	key *secp256k1.PrivateKey
	pub *Secp256k1PublicKey
}

// GenerateSecp256k1 creates a secp256k1 key from r (crypto/rand.Reader if nil).
func GenerateSecp256k1(r io.Reader) (*Secp256k1PrivateKey, error) {
	if r == nil {
		r = rand.Reader
	}
	k, err := secp256k1.GeneratePrivateKeyFromRand(r)
	if err != nil {
		return nil, fmt.Errorf("generate secp256k1 key: %w", err)
	}
	return newSecp256k1PrivateKey(k), nil
}

// parseSecp256k1PrivateKey decodes a 32-byte big-endian scalar, rejecting
// zero and values not below the group order instead of reducing them.
func parseSecp256k1PrivateKey(b []byte) (*Secp256k1PrivateKey, error) {
	if len(b) != 32 {
		return nil, fmt.Errorf("secp256k1 private key is %d bytes, want 32", len(b))
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(b); overflow || s.IsZero() {
		return nil, fmt.Errorf("secp256k1 private key: scalar out of range")
	}
	return newSecp256k1PrivateKey(secp256k1.NewPrivateKey(&s)), nil
}

func newSecp256k1PrivateKey(k *secp256k1.PrivateKey) *Secp256k1PrivateKey {
	pk := k.PubKey()
	return &Secp256k1PrivateKey{key: k, pub: &Secp256k1PublicKey{key: pk, raw: pk.SerializeCompressed()}}
}

// Type implements PrivateKey.
func (k *Secp256k1PrivateKey) Type() KeyType { return KeySecp256k1 }

// Public implements PrivateKey.
func (k *Secp256k1PrivateKey) Public() PublicKey { return k.pub }

// Sign implements PrivateKey (deterministic RFC 6979 ECDSA over SHA-256,
// DER signature).
func (k *Secp256k1PrivateKey) Sign(data []byte) ([]byte, error) {
	h := sha256.Sum256(data)
	return secpecdsa.Sign(k.key, h[:]).Serialize(), nil
}
