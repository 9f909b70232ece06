// Package multibase decodes multibase text (the multiformats convention of
// a first character naming the base) and encodes base58btc, for peer IDs,
// CIDs and multiaddr values. Decoding is bounded: base58 and base36 cost
// time quadratic in the input, so text that could only decode to more than
// MaxLen bytes is refused before any work.
package multibase

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MaxLen is the most bytes a decoded value may have (text of more than
// 2 × MaxLen characters is refused unread). Peer IDs and multiaddr values
// are far smaller.
const MaxLen = 1024

// DecodeBase58 decodes base58btc text (no multibase prefix), as peer IDs
// are written.
func DecodeBase58(s string) ([]byte, error) { return decodeRadix(s, base58BTC) }

// Radix alphabets; the first character of each stands for a zero byte.
const (
	base58BTC    = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	base58Flickr = "123456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
	base36Lower  = "0123456789abcdefghijklmnopqrstuvwxyz"
)

// AppendBase58 appends the base58btc form of src: one '1' per leading zero
// byte, then the rest read as a big-endian number.
func AppendBase58(dst []byte, src string) []byte {
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

// decodeRadix decodes s, written in the given alphabet as AppendBase58
// writes it. Its cost is quadratic in len(s), so s is bounded: longer text
// could only decode to more than MaxLen bytes.
func decodeRadix(s, alphabet string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty string")
	}
	if len(s) > 2*MaxLen {
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

// Decode decodes s, whose first character names its base. It
// knows the bases of go-multibase except the rarely used identity, base2,
// base8, base10 and base256emoji. Letter case is ignored where
// go-multibase ignores it (base16, base32, base36).
func Decode(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty multibase string")
	}
	body := s[1:]
	// Every supported base needs at most two characters per byte.
	if len(body) > 2*MaxLen {
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
		b, err = DecodeBase32(base32.StdEncoding.WithPadding(base32.NoPadding), body)
	case 'c', 'C':
		b, err = DecodeBase32(base32.StdEncoding, body)
	case 'v', 'V':
		b, err = DecodeBase32(base32.HexEncoding.WithPadding(base32.NoPadding), body)
	case 't', 'T':
		b, err = DecodeBase32(base32.HexEncoding, body)
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

// DecodeBase32 decodes s with enc, whose alphabet is upper case, in
// either letter case.
func DecodeBase32(enc *base32.Encoding, s string) ([]byte, error) {
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

// EncodeBase36 returns the multibase base36 form of b, prefix 'k'
// included: how Kubo writes IPNS names, whose 62 characters fit a DNS
// label. Like base58, it is quadratic in len(b): meant for keys, not
// bulk data.
func EncodeBase36(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	num := append([]byte(nil), b[zeros:]...)
	var digits []byte
	for len(num) > 0 {
		// One long division of num by 36, most significant byte first.
		rem, q := 0, num[:0]
		for _, c := range num {
			acc := rem<<8 | int(c)
			if d := acc / 36; d > 0 || len(q) > 0 {
				q = append(q, byte(d))
			}
			rem = acc % 36
		}
		digits = append(digits, base36Lower[rem])
		num = q
	}
	for range zeros {
		digits = append(digits, base36Lower[0])
	}
	slices.Reverse(digits)
	return "k" + string(digits)
}
