package multiaddr

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestProtocolTable(t *testing.T) {
	names := map[string]bool{}
	for i, p := range protocols {
		if i > 0 && protocols[i-1].Code >= p.Code {
			t.Errorf("%s (%#x) is out of code order", p.Name, p.Code)
		}
		if names[p.Name] {
			t.Errorf("%s appears twice", p.Name)
		}
		names[p.Name] = true
		if (p.Size == 0) != (p.kind == kindNone) || p.Path != (p.kind == kindUnix) || p.Size%8 != 0 && p.Size != LengthPrefixedVarSize {
			t.Errorf("%s: Size %d, Path %v and kind %d disagree", p.Name, p.Size, p.Path, p.kind)
		}
		if got := protocolByCode(uint64(p.Code)); got != &protocols[i] {
			t.Errorf("protocolByCode(%#x) = %v", p.Code, got)
		}
		if got := protocolByName(p.Name); got != &protocols[i] {
			t.Errorf("protocolByName(%q) = %v", p.Name, got)
		}
	}
}

func TestUvarint(t *testing.T) {
	tests := []struct {
		hex string
		v   uint64
		n   int
		err error
	}{
		{"00", 0, 1, nil},
		{"7f ff", 127, 1, nil},
		{"8001", 128, 2, nil},
		{"a503", 421, 2, nil},
		{"ffffffffffffffff7f", 1<<63 - 1, 9, nil},
		{"", 0, 0, errVarintTruncated},
		{"80", 0, 0, errVarintTruncated},
		{"8000", 0, 0, errVarintNotMinimal},
		{"ff00", 0, 0, errVarintNotMinimal},
		{"ffffffffffffffff80", 0, 0, errVarintOverflow},
		{"ffffffffffffffffff01", 0, 0, errVarintOverflow},
	}
	for _, tt := range tests {
		b, _ := hex.DecodeString(strings.ReplaceAll(tt.hex, " ", ""))
		v, n, err := uvarint(b)
		if v != tt.v || n != tt.n || err != tt.err {
			t.Errorf("uvarint(%s) = %d, %d, %v; want %d, %d, %v", tt.hex, v, n, err, tt.v, tt.n, tt.err)
		}
		if v2, n2, err2 := uvarint(string(b)); v2 != v || n2 != n || err2 != err {
			t.Errorf("uvarint(string %s) disagrees with []byte", tt.hex)
		}
		if err == nil {
			if enc := appendUvarint(nil, v); !bytes.Equal(enc, b[:n]) {
				t.Errorf("appendUvarint(%d) = %x", v, enc)
			}
		}
	}
}

func TestBase58(t *testing.T) {
	tests := []struct{ hex, b58 string }{
		{"00", "1"},
		{"0000287fb4cd", "11233QC4"},
		{"48656c6c6f20576f726c6421", "2NEpo7TZRRrLZSi2U"},
		{"1220d52ebb89d85b02a284948203a62ff28389c57c9f42beec4ec20db76a68911c0b", "QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC"},
	}
	for _, tt := range tests {
		b, _ := hex.DecodeString(tt.hex)
		if got := string(appendBase58(nil, string(b))); got != tt.b58 {
			t.Errorf("appendBase58(%s) = %s, want %s", tt.hex, got, tt.b58)
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
		enc := appendBase58(nil, string(b))
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
	for _, bad := range []string{"", "0", "Il", "1 ", strings.Repeat("2", 2*MaxAddrLen+1)} {
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
		"z" + string(appendBase58(nil, string(want))),
		"m" + base64.RawStdEncoding.EncodeToString(want),
		"M" + base64.StdEncoding.EncodeToString(want),
		"u" + base64.RawURLEncoding.EncodeToString(want),
		"U" + base64.URLEncoding.EncodeToString(want),
	} {
		if got, err := decodeMultibase(s); err != nil || !bytes.Equal(got, want) {
			t.Errorf("decodeMultibase(%s) = %q, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "x00", "0101", "\x00ab", "🚀", "bı", "f0", "m" + strings.Repeat("A", 3*MaxAddrLen)} {
		if got, err := decodeMultibase(bad); err == nil {
			t.Errorf("decodeMultibase(%.20q) = %x", bad, got)
		}
	}
}

func TestCheckPeerID(t *testing.T) {
	tests := []struct {
		hex string
		ok  bool
	}{
		{"0000", true},
		{"0024080112202ffa35a99d3a3cfbb17bb7c1dc5561b18a8dcca4df38dc613ea859c37eb1336b", true},
		{"1220" + strings.Repeat("00", 32), true},
		{"1220" + strings.Repeat("00", 31), false},
		{"1221" + strings.Repeat("00", 33), false},
		{"1201" + "00", false},
		{"1114" + strings.Repeat("00", 20), false},
		{"00", false},
		{"0001", false},
		{"000100ff", false},
		{"8000" + "00", false},
	}
	for _, tt := range tests {
		b, _ := hex.DecodeString(tt.hex)
		if err := checkPeerID(string(b)); (err == nil) != tt.ok {
			t.Errorf("checkPeerID(%s) = %v", tt.hex, err)
		}
	}
	if _, _, err := checkMultihash("\x80\x00\x00"); !errors.Is(err, errVarintNotMinimal) {
		t.Errorf("non-minimal multihash code: %v", err)
	}
}
