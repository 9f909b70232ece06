package multiaddr

import (
	"bytes"
	"encoding/hex"
	"errors"
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
