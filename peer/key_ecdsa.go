package peer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
)

// ECDSAPublicKey is a NIST-curve ECDSA public key. Raw returns its DER PKIX
// SubjectPublicKeyInfo, re-encoded so that equal keys hash to equal IDs.
type ECDSAPublicKey struct {
	key *ecdsa.PublicKey
	der []byte
}

// NewECDSAPublicKey wraps k.
func NewECDSAPublicKey(k *ecdsa.PublicKey) (*ECDSAPublicKey, error) {
	if k == nil || k.Curve == nil {
		return nil, fmt.Errorf("ecdsa public key: nil key")
	}
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("ecdsa public key: marshal PKIX: %w", err)
	}
	return &ECDSAPublicKey{key: k, der: der}, nil
}

// parseECDSAPublicKey decodes a DER PKIX SubjectPublicKeyInfo holding an
// ECDSA key; x509 checks that the point is on its curve.
func parseECDSAPublicKey(der []byte) (*ECDSAPublicKey, error) {
	pk, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("ecdsa public key: parse PKIX: %w", err)
	}
	k, ok := pk.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("ecdsa public key: PKIX holds a %T, not an ECDSA key", pk)
	}
	return NewECDSAPublicKey(k)
}

// Type implements PublicKey.
func (k *ECDSAPublicKey) Type() KeyType { return KeyECDSA }

// Raw implements PublicKey; the result must not be modified.
func (k *ECDSAPublicKey) Raw() []byte { return k.der }

// Verify implements PublicKey (ECDSA over SHA-256, ASN.1 DER signature).
func (k *ECDSAPublicKey) Verify(data, sig []byte) error {
	h := sha256.Sum256(data)
	if !ecdsa.VerifyASN1(k.key, h[:], sig) {
		return fmt.Errorf("ecdsa: %w", ErrBadSignature)
	}
	return nil
}

// ECDSAPrivateKey is a NIST-curve ECDSA private key, stored in SEC1 form
// as go-libp2p does.
type ECDSAPrivateKey struct {
	key *ecdsa.PrivateKey
	pub *ECDSAPublicKey
}

// NewECDSAPrivateKey wraps k.
func NewECDSAPrivateKey(k *ecdsa.PrivateKey) (*ECDSAPrivateKey, error) {
	if k == nil {
		return nil, fmt.Errorf("ecdsa private key: nil key")
	}
	pub, err := NewECDSAPublicKey(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	return &ECDSAPrivateKey{key: k, pub: pub}, nil
}

// GenerateECDSA creates a P-256 key, the curve go-libp2p uses. r is
// crypto/rand.Reader if nil (recent Go releases may ignore r entirely).
func GenerateECDSA(r io.Reader) (*ECDSAPrivateKey, error) {
	if r == nil {
		r = rand.Reader
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), r)
	if err != nil {
		return nil, fmt.Errorf("generate ecdsa key: %w", err)
	}
	return NewECDSAPrivateKey(k)
}

// Type implements PrivateKey.
func (k *ECDSAPrivateKey) Type() KeyType { return KeyECDSA }

// Public implements PrivateKey.
func (k *ECDSAPrivateKey) Public() PublicKey { return k.pub }

// Sign implements PrivateKey (ECDSA over SHA-256, ASN.1 DER signature).
func (k *ECDSAPrivateKey) Sign(data []byte) ([]byte, error) {
	h := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, h[:])
	if err != nil {
		return nil, fmt.Errorf("ecdsa sign: %w", err)
	}
	return sig, nil
}
