package noise

import (
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"math"

	"golang.org/x/crypto/chacha20poly1305"
)

// protocolName is exactly HASHLEN (32) bytes, so it is used as the initial
// handshake hash without hashing (Noise spec §5.2 InitializeSymmetric).
const protocolName = "Noise_XX_25519_ChaChaPoly_SHA256"

const (
	hashLen = sha256.Size
	tagLen  = chacha20poly1305.Overhead
	dhLen   = 32
)

var (
	errNonceExhausted = errors.New("noise: nonce exhausted")
	errDecrypt        = errors.New("noise: message authentication failed")
)

// cipherState is the Noise CipherState: a key and a 64-bit nonce counter.
type cipherState struct {
	aead  cipher.AEAD // nil until a key is set
	n     uint64
	nonce [chacha20poly1305.NonceSize]byte
}

func (cs *cipherState) init(key []byte) {
	a, err := chacha20poly1305.New(key)
	if err != nil {
		panic("noise: " + err.Error()) // key is always 32 bytes
	}
	cs.aead, cs.n = a, 0
}

// next returns the nonce for the next message and advances the counter.
// 2^64−1 is reserved by the Noise spec, so the counter stops before it.
func (cs *cipherState) next() ([]byte, error) {
	if cs.n == math.MaxUint64 {
		return nil, errNonceExhausted
	}
	binary.LittleEndian.PutUint64(cs.nonce[4:], cs.n)
	cs.n++
	return cs.nonce[:], nil
}

// seal appends the encryption of pt to dst. dst may alias pt exactly.
func (cs *cipherState) seal(dst, pt, ad []byte) ([]byte, error) {
	nonce, err := cs.next()
	if err != nil {
		return nil, err
	}
	return cs.aead.Seal(dst, nonce, pt, ad), nil
}

// open appends the decryption of ct to dst. dst may alias ct exactly.
func (cs *cipherState) open(dst, ct, ad []byte) ([]byte, error) {
	nonce, err := cs.next()
	if err != nil {
		return nil, err
	}
	pt, err := cs.aead.Open(dst, nonce, ct, ad)
	if err != nil {
		return nil, errDecrypt
	}
	return pt, nil
}

// symmetricState is the Noise SymmetricState (chaining key, handshake hash
// and the current handshake CipherState) plus scratch space for HMAC so
// that the key schedule does not allocate.
type symmetricState struct {
	ck, h [hashLen]byte
	cs    cipherState
	sha   hash.Hash
	pad   [sha256.BlockSize]byte
	inner [hashLen]byte
	okm   [2][hashLen]byte
	ad    [hashLen]byte
}

var (
	hkdfOne = []byte{1}
	hkdfTwo = []byte{2}
)

func (s *symmetricState) init() {
	s.sha = sha256.New()
	copy(s.h[:], protocolName)
	s.ck = s.h
	s.mixHash(nil) // empty prologue
}

func (s *symmetricState) mixHash(data []byte) {
	s.sha.Reset()
	s.sha.Write(s.h[:])
	s.sha.Write(data)
	s.sha.Sum(s.h[:0])
}

// hmac computes HMAC-SHA256(key, a ‖ b) into out (RFC 2104; key ≤ block size).
func (s *symmetricState) hmac(out *[hashLen]byte, key *[hashLen]byte, a, b []byte) {
	clear(s.pad[:])
	copy(s.pad[:], key[:])
	for i := range s.pad {
		s.pad[i] ^= 0x36
	}
	s.sha.Reset()
	s.sha.Write(s.pad[:])
	s.sha.Write(a)
	s.sha.Write(b)
	s.sha.Sum(s.inner[:0])
	for i := range s.pad {
		s.pad[i] ^= 0x36 ^ 0x5c
	}
	s.sha.Reset()
	s.sha.Write(s.pad[:])
	s.sha.Write(s.inner[:])
	s.sha.Sum(out[:0])
}

// hkdf derives two outputs from the chaining key and ikm (Noise spec §4.3)
// into s.okm[0] and s.okm[1].
func (s *symmetricState) hkdf(ikm []byte) {
	var temp [hashLen]byte
	s.hmac(&temp, &s.ck, ikm, nil)
	s.hmac(&s.okm[0], &temp, hkdfOne, nil)
	s.hmac(&s.okm[1], &temp, s.okm[0][:], hkdfTwo)
	clear(temp[:])
}

// mixKey is MixKey(ikm): new chaining key and handshake cipher key.
func (s *symmetricState) mixKey(ikm []byte) {
	s.hkdf(ikm)
	s.ck = s.okm[0]
	s.cs.init(s.okm[1][:])
	clear(s.okm[1][:])
}

// encryptAndHash appends the (possibly encrypted) pt to dst and mixes the
// ciphertext into h.
func (s *symmetricState) encryptAndHash(dst, pt []byte) ([]byte, error) {
	if s.cs.aead == nil {
		out := append(dst, pt...)
		s.mixHash(out[len(dst):])
		return out, nil
	}
	out, err := s.cs.seal(dst, pt, s.h[:])
	if err != nil {
		return nil, err
	}
	s.mixHash(out[len(dst):])
	return out, nil
}

// decryptAndHash decrypts ct in place and returns the plaintext, mixing the
// ciphertext into h.
func (s *symmetricState) decryptAndHash(ct []byte) ([]byte, error) {
	if s.cs.aead == nil {
		s.mixHash(ct)
		return ct, nil
	}
	s.ad = s.h // the AD is h before the ciphertext is mixed in
	s.mixHash(ct)
	return s.cs.open(ct[:0], ct, s.ad[:])
}

// split returns the two transport CipherStates (initiator→responder first).
func (s *symmetricState) split() (c1, c2 cipherState) {
	s.hkdf(nil)
	c1.init(s.okm[0][:])
	c2.init(s.okm[1][:])
	clear(s.okm[0][:])
	clear(s.okm[1][:])
	clear(s.ck[:])
	return c1, c2
}
