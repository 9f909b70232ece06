package multiaddr

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// maxVarintLen is the longest varint accepted. Multiformats varints stop at
// 63 bits, and go-multiaddr refuses anything longer, so we agree with it on
// which addresses are valid.
const maxVarintLen = 9

var (
	errVarintTruncated  = errors.New("truncated varint")
	errVarintOverflow   = errors.New("varint longer than 9 bytes")
	errVarintNotMinimal = errors.New("varint not minimally encoded")
)

// uvarint decodes the varint at the start of b, returning its value and
// length.
func uvarint[T string | []byte](b T) (uint64, int, error) {
	var v uint64
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c < 0x80 {
			// A trailing zero group means a shorter encoding exists; two
			// encodings of one address would make Equal unreliable.
			if c == 0 && i > 0 {
				return 0, 0, errVarintNotMinimal
			}
			return v | uint64(c)<<(7*i), i + 1, nil
		}
		if i == maxVarintLen-1 {
			return 0, 0, errVarintOverflow
		}
		v |= uint64(c&0x7f) << (7 * i)
	}
	return 0, 0, errVarintTruncated
}

// appendUvarint appends the minimal varint encoding of v.
func appendUvarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// Multihash codes that may identify a peer.
const (
	mhIdentity = 0x00
	mhSHA256   = 0x12
)

// checkMultihash checks that v is exactly one multihash (varint code,
// varint digest length, digest) and returns its code and digest length.
// Like go-multihash, it accepts any code.
func checkMultihash(v string) (code uint64, digest int, err error) {
	if len(v) < 2 {
		return 0, 0, fmt.Errorf("multihash of %d bytes is too short", len(v))
	}
	code, n, err := uvarint(v)
	if err != nil {
		return 0, 0, fmt.Errorf("multihash code: %w", err)
	}
	size, m, err := uvarint(v[n:])
	if err != nil {
		return 0, 0, fmt.Errorf("multihash length: %w", err)
	}
	if rest := len(v) - n - m; size != uint64(rest) {
		return 0, 0, fmt.Errorf("multihash declares a %d-byte digest but has %d bytes", size, rest)
	}
	return code, int(size), nil
}

// checkPeerID checks that v is a multihash a peer ID may use: the public
// key itself (identity) or its SHA-256, as the peer ID spec requires.
func checkPeerID(v string) error {
	code, digest, err := checkMultihash(v)
	switch {
	case err != nil:
		return err
	case code == mhIdentity:
		return nil
	case code != mhSHA256:
		return fmt.Errorf("multihash code %#x is neither identity nor sha2-256", code)
	case digest != 32:
		return fmt.Errorf("sha2-256 digest of %d bytes, want 32", digest)
	}
	return nil
}

// libp2pKey is the multicodec of a CID that names a peer.
const libp2pKey = 0x72

// decodePeerID decodes the text form of a peer ID into its multihash. Like
// go-multiaddr, text starting with "Qm" or "1" is base58btc, and anything
// else must be a multibase CIDv1 with the libp2p-key codec.
func decodePeerID(s string) ([]byte, error) {
	if strings.HasPrefix(s, "Qm") || strings.HasPrefix(s, "1") {
		return decodeRadix(s, base58BTC)
	}
	cid, err := decodeMultibase(s)
	if err != nil {
		return nil, fmt.Errorf("neither base58 nor a CID: %w", err)
	}
	version, n, err := uvarint(cid)
	if err != nil {
		return nil, fmt.Errorf("CID version: %w", err)
	}
	if version != 1 {
		return nil, fmt.Errorf("CID version %d, want 1", version)
	}
	codec, m, err := uvarint(cid[n:])
	if err != nil {
		return nil, fmt.Errorf("CID codec: %w", err)
	}
	if codec != libp2pKey {
		return nil, fmt.Errorf("CID codec %#x, want libp2p-key (0x72)", codec)
	}
	return cid[n+m:], nil
}

// Radix alphabets; the first character of each stands for a zero byte.
const (
	base58BTC    = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	base58Flickr = "123456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
	base36Lower  = "0123456789abcdefghijklmnopqrstuvwxyz"
)

// appendBase58 appends the base58btc form of src: one '1' per leading zero
// byte, then the rest read as a big-endian number.
func appendBase58(dst []byte, src string) []byte {
	// limb58 is the base of limbs: each limb holds five base-58 digits.
	const limb58 = 58 * 58 * 58 * 58 * 58
	zeros := 0
	for zeros < len(src) && src[zeros] == 0 {
		zeros++
	}
	// limbs holds the number least significant first. Input is folded in
	// four bytes at a time, so a peer ID takes about a hundred divisions
	// rather than a thousand; the stack buffer fits 58-byte inputs.
	var buf [16]uint32
	limbs := buf[:0]
	for rest := src[zeros:]; rest != ""; {
		n := len(rest) % 4
		if n == 0 {
			n = 4
		}
		var carry uint64
		for i := range n {
			carry = carry<<8 | uint64(rest[i])
		}
		rest = rest[n:]
		for j := range limbs {
			carry += uint64(limbs[j]) << (8 * n)
			limbs[j] = uint32(carry % limb58)
			carry /= limb58
		}
		for carry > 0 {
			limbs = append(limbs, uint32(carry%limb58))
			carry /= limb58
		}
	}
	for range zeros {
		dst = append(dst, '1')
	}
	for i := len(limbs) - 1; i >= 0; i-- {
		var d [5]byte
		for k, x := 4, limbs[i]; k >= 0; k, x = k-1, x/58 {
			d[k] = base58BTC[x%58]
		}
		digits := d[:]
		if i == len(limbs)-1 {
			// The top limb's leading zero digits are not part of the number.
			for len(digits) > 1 && digits[0] == base58BTC[0] {
				digits = digits[1:]
			}
		}
		dst = append(dst, digits...)
	}
	return dst
}

// decodeRadix decodes s, written in the given alphabet as appendBase58
// writes it. Its cost is quadratic in len(s), so s is bounded: longer text
// could only decode to more than MaxAddrLen bytes.
func decodeRadix(s, alphabet string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty string")
	}
	if len(s) > 2*MaxAddrLen {
		return nil, fmt.Errorf("%d characters is too long", len(s))
	}
	zeros := 0
	for zeros < len(s) && s[zeros] == alphabet[0] {
		zeros++
	}
	// limbs holds the value in base 2^32, least significant first. Five
	// digits are folded in per pass (58^5 < 2^32), which makes long input
	// about twenty times cheaper than a digit and a byte at a time.
	limbs := make([]uint32, 0, len(s)/4+1)
	for i := zeros; i < len(s); {
		mul, add := uint64(1), uint64(0)
		for k := 0; k < 5 && i < len(s); k, i = k+1, i+1 {
			d := strings.IndexByte(alphabet, s[i])
			if d < 0 {
				return nil, fmt.Errorf("invalid character %q at %d", s[i], i)
			}
			mul *= uint64(len(alphabet))
			add = add*uint64(len(alphabet)) + uint64(d)
		}
		carry := add
		for j := range limbs {
			carry += uint64(limbs[j]) * mul
			limbs[j] = uint32(carry)
			carry >>= 32
		}
		for carry > 0 {
			limbs = append(limbs, uint32(carry))
			carry >>= 32
		}
	}
	out := make([]byte, zeros, zeros+4*len(limbs))
	started := false
	for i := len(limbs) - 1; i >= 0; i-- {
		for shift := 24; shift >= 0; shift -= 8 {
			c := byte(limbs[i] >> shift)
			if started = started || c != 0; started {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// decodeMultibase decodes s, whose first character names its base. It
// knows the bases of go-multibase except the rarely used identity, base2,
// base8, base10 and base256emoji. Letter case is ignored where
// go-multibase ignores it (base16, base32, base36).
func decodeMultibase(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty multibase string")
	}
	body := s[1:]
	// Every supported base needs at most two characters per byte.
	if len(body) > 2*MaxAddrLen {
		return nil, fmt.Errorf("multibase string of %d characters is too long", len(s))
	}
	var (
		b   []byte
		err error
	)
	switch s[0] {
	case 'f', 'F':
		b, err = hex.DecodeString(body)
	case 'b', 'B':
		b, err = decodeBase32(base32.StdEncoding.WithPadding(base32.NoPadding), body)
	case 'c', 'C':
		b, err = decodeBase32(base32.StdEncoding, body)
	case 'v', 'V':
		b, err = decodeBase32(base32.HexEncoding.WithPadding(base32.NoPadding), body)
	case 't', 'T':
		b, err = decodeBase32(base32.HexEncoding, body)
	case 'k', 'K':
		b, err = decodeRadix(asciiCase(body, false), base36Lower)
	case 'z':
		b, err = decodeRadix(body, base58BTC)
	case 'Z':
		b, err = decodeRadix(body, base58Flickr)
	case 'm':
		b, err = base64.RawStdEncoding.DecodeString(body)
	case 'M':
		b, err = base64.StdEncoding.DecodeString(body)
	case 'u':
		b, err = base64.RawURLEncoding.DecodeString(body)
	case 'U':
		b, err = base64.URLEncoding.DecodeString(body)
	default:
		return nil, fmt.Errorf("unsupported multibase prefix %q", s[0])
	}
	if err != nil {
		return nil, fmt.Errorf("multibase %q: %w", s[0], err)
	}
	return b, nil
}

// decodeBase32 decodes s with enc, whose alphabet is upper case.
func decodeBase32(enc *base32.Encoding, s string) ([]byte, error) {
	return enc.DecodeString(asciiCase(s, true))
}

// asciiCase returns s with its ASCII letters in upper or lower case. Only
// ASCII: strings.ToUpper would also turn some non-ASCII letters (such as
// 'ı') into alphabet letters and accept text go-multibase refuses.
func asciiCase(s string, upper bool) string {
	lo, hi := byte('a'), byte('z')
	if !upper {
		lo, hi = 'A', 'Z'
	}
	b := []byte(s)
	for i, c := range b {
		if lo <= c && c <= hi {
			b[i] = c ^ 0x20
		}
	}
	return string(b)
}

// appendBase64URL appends src in unpadded base64url, the encoding
// go-multiaddr prints certhashes in. Three bytes encode to four characters
// with no padding, so encoding a piece at a time from a small array gives
// the same text without copying src to the heap.
func appendBase64URL(dst []byte, src string) []byte {
	for len(src) > 0 {
		var in [3]byte
		n := copy(in[:], src)
		src = src[n:]
		dst = base64.RawURLEncoding.AppendEncode(dst, in[:n])
	}
	return dst
}
