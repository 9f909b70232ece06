package multibase

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestBase58(t *testing.T) {
	tests := []struct{ hex, b58 string }{
		{"00", "1"},
		{"0000287fb4cd", "11233QC4"},
		{"48656c6c6f20576f726c6421", "2NEpo7TZRRrLZSi2U"},
		{"1220d52ebb89d85b02a284948203a62ff28389c57c9f42beec4ec20db76a68911c0b", "QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC"},
	}
	for _, tt := range tests {
		b, _ := hex.DecodeString(tt.hex)
		if got := string(AppendBase58(nil, string(b))); got != tt.b58 {
			t.Errorf("AppendBase58(%s) = %s, want %s", tt.hex, got, tt.b58)
		}
		if got, err := decodeRadix(tt.b58, base58BTC); err != nil || !bytes.Equal(got, b) {
			t.Errorf("decodeRadix(%s) = %x, %v", tt.b58, got, err)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		b := make([]byte, rng.IntN(60))
		for i := range b {
			if rng.IntN(4) > 0 {
				b[i] = byte(rng.Uint32())
			}
		}
		enc := AppendBase58(nil, string(b))
		got, err := decodeRadix(string(enc), base58BTC)
		if len(b) == 0 {
			if err == nil {
				t.Errorf("decoded empty text")
			}
			continue
		}
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("base58 round trip of %x via %s gave %x, %v", b, enc, got, err)
		}
	}
}

// TestDecodeRadix compares decodeRadix with math/big on random digits.
func TestDecodeRadix(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, alphabet := range []string{base58BTC, base58Flickr, base36Lower} {
		for range 1000 {
			s := make([]byte, 1+rng.IntN(100))
			for i := range s {
				s[i] = alphabet[rng.IntN(len(alphabet))]
			}
			n := new(big.Int)
			zeros, leading := 0, true
			for _, c := range s {
				if leading && c == alphabet[0] {
					zeros++
					continue
				}
				leading = false
				n.Mul(n, big.NewInt(int64(len(alphabet))))
				n.Add(n, big.NewInt(int64(strings.IndexByte(alphabet, c))))
			}
			want := append(make([]byte, zeros), n.Bytes()...)
			if got, err := decodeRadix(string(s), alphabet); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("decodeRadix(%s) = %x, %v; want %x", s, got, err, want)
			}
		}
	}
	for _, bad := range []string{"", "0", "Il", "1 ", strings.Repeat("2", 2*MaxLen+1)} {
		if got, err := decodeRadix(bad, base58BTC); err == nil {
			t.Errorf("decodeRadix(%.20q) = %x", bad, got)
		}
	}
}

func TestDecodeMultibase(t *testing.T) {
	want := []byte("\x12\x20 any bytes \x00\xff")
	b32 := base32.StdEncoding.EncodeToString(want)
	b32hex := base32.HexEncoding.EncodeToString(want)
	for _, s := range []string{
		"f" + hex.EncodeToString(want),
		"F" + strings.ToUpper(hex.EncodeToString(want)),
		"b" + strings.ToLower(strings.TrimRight(b32, "=")),
		"B" + strings.TrimRight(b32, "="),
		"c" + strings.ToLower(b32),
		"C" + b32,
		"v" + strings.ToLower(strings.TrimRight(b32hex, "=")),
		"V" + strings.TrimRight(b32hex, "="),
		"t" + strings.ToLower(b32hex),
		"T" + b32hex,
		"z" + string(AppendBase58(nil, string(want))),
		"m" + base64.RawStdEncoding.EncodeToString(want),
		"M" + base64.StdEncoding.EncodeToString(want),
		"u" + base64.RawURLEncoding.EncodeToString(want),
		"U" + base64.URLEncoding.EncodeToString(want),
	} {
		if got, err := Decode(s); err != nil || !bytes.Equal(got, want) {
			t.Errorf("Decode(%s) = %q, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "x00", "0101", "\x00ab", "🚀", "bı", "f0", "m" + strings.Repeat("A", 3*MaxLen)} {
		if got, err := Decode(bad); err == nil {
			t.Errorf("Decode(%.20q) = %x", bad, got)
		}
	}
}

func TestEncodeBase36(t *testing.T) {
	for _, b := range [][]byte{{0}, {0, 0, 1}, {1, 0x72, 0, 0x24, 8, 1, 0x12, 0x20, 0xff, 0xee}, []byte("any bytes at all")} {
		s := EncodeBase36(b)
		got, err := Decode(s)
		if err != nil || string(got) != string(b) {
			t.Errorf("Decode(EncodeBase36(%x)) = %x, %v (text %q)", b, got, err, s)
		}
	}
}
