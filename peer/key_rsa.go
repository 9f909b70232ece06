package peer

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
)

// RSA modulus bounds, as enforced by go-libp2p. Smaller keys are forgeable
// in practice; larger ones make every verification a CPU-exhaustion lever.
const (
	MinRSABits = 2048
	MaxRSABits = 8192
)

// RSAPublicKey is an RSA public key. Raw returns its DER PKIX
// SubjectPublicKeyInfo, which is what libp2p hashes into a peer ID.
type RSAPublicKey struct {
	key *rsa.PublicKey
	der []byte
}

// NewRSAPublicKey wraps k after checking its size against MinRSABits and
// MaxRSABits.
func NewRSAPublicKey(k *rsa.PublicKey) (*RSAPublicKey, error) {
	if k == nil || k.N == nil {
		return nil, fmt.Errorf("rsa public key: nil key")
	}
	if err := checkRSABits(k.N.BitLen()); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, fmt.Errorf("rsa public key: marshal PKIX: %w", err)
	}
	return &RSAPublicKey{key: k, der: der}, nil
}

// parseRSAPublicKey decodes a DER PKIX SubjectPublicKeyInfo holding an RSA key.
func parseRSAPublicKey(der []byte) (*RSAPublicKey, error) {
	pk, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("rsa public key: parse PKIX: %w", err)
	}
	k, ok := pk.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("rsa public key: PKIX holds a %T, not an RSA key", pk)
	}
	return NewRSAPublicKey(k)
}

// GenerateRSA creates an RSA key of bits bits (MinRSABits to MaxRSABits;
// go-libp2p and Kubo generate 2048) from r (crypto/rand.Reader if nil;
// recent Go releases may ignore r). RSA identities are for talking to
// old peers that have them: Ed25519 keys are smaller and faster.
func GenerateRSA(r io.Reader, bits int) (*RSAPrivateKey, error) {
	if err := checkRSABits(bits); err != nil {
		return nil, fmt.Errorf("generate rsa key: %w", err)
	}
	if r == nil {
		r = rand.Reader
	}
	k, err := rsa.GenerateKey(r, bits)
	if err != nil {
		return nil, fmt.Errorf("generate rsa key: %w", err)
	}
	return NewRSAPrivateKey(k)
}

func checkRSABits(bits int) error {
	if bits < MinRSABits || bits > MaxRSABits {
		return fmt.Errorf("rsa key has %d bits, want %d to %d", bits, MinRSABits, MaxRSABits)
	}
	return nil
}

// Type implements PublicKey.
func (k *RSAPublicKey) Type() KeyType { return KeyRSA }

// Raw implements PublicKey; the result must not be modified.
func (k *RSAPublicKey) Raw() []byte { return k.der }

// Verify implements PublicKey (RSASSA-PKCS1-v1_5 over SHA-256).
func (k *RSAPublicKey) Verify(data, sig []byte) error {
	h := sha256.Sum256(data)
	if err := rsa.VerifyPKCS1v15(k.key, crypto.SHA256, h[:], sig); err != nil {
		return fmt.Errorf("rsa: %w (%v)", ErrBadSignature, err)
	}
	return nil
}

// RSAPrivateKey is an RSA private key. It exists so that old RSA
// identities can be loaded; new identities should be Ed25519.
type RSAPrivateKey struct {
	key *rsa.PrivateKey
	pub *RSAPublicKey
}

// NewRSAPrivateKey wraps k after validating it and checking its size.
func NewRSAPrivateKey(k *rsa.PrivateKey) (*RSAPrivateKey, error) {
	if k == nil || k.N == nil {
		return nil, fmt.Errorf("rsa private key: nil key")
	}
	if err := checkRSABits(k.N.BitLen()); err != nil {
		return nil, err
	}
	if err := k.Validate(); err != nil {
		return nil, fmt.Errorf("rsa private key: %w", err)
	}
	pub, err := NewRSAPublicKey(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	return &RSAPrivateKey{key: k, pub: pub}, nil
}

// Type implements PrivateKey.
func (k *RSAPrivateKey) Type() KeyType { return KeyRSA }

// Public implements PrivateKey.
func (k *RSAPrivateKey) Public() PublicKey { return k.pub }

// Sign implements PrivateKey (RSASSA-PKCS1-v1_5 over SHA-256).
func (k *RSAPrivateKey) Sign(data []byte) ([]byte, error) {
	h := sha256.Sum256(data)
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.key, crypto.SHA256, h[:])
	if err != nil {
		return nil, fmt.Errorf("rsa sign: %w", err)
	}
	return sig, nil
}
