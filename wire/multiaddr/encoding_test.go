package multiaddr

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/mote-p2p/mote/wire"
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
	if _, _, err := checkMultihash("\x80\x00\x00"); !errors.Is(err, wire.ErrVarintNotMinimal) {
		t.Errorf("non-minimal multihash code: %v", err)
	}
}
