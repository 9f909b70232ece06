package cid

import (
	"crypto/sha256"
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	// From Kubo v0.43.0's `ipfs add -n`: "hello world\n" with the
	// defaults (CIDv0) and with --cid-version=1 (raw leaf), "hello world"
	// with --cid-version=1, and 300,000 zero bytes with --cid-version=1
	// (a dag-pb root over two chunks).
	tests := []struct {
		in      string
		version int
		codec   uint64
		wantErr bool
	}{
		{"QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", 0, DagPB, false},
		{"bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4", 1, Raw, false},
		{"bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e", 1, Raw, false},
		{"bafybeieb4dp5tj5rew3jhfqqsoyfx77y3ovw2xcdhelmp5hyot3xi3wjwu", 1, DagPB, false},
		{"QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5", 0, 0, true},
		{"bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5", 0, 0, true},
		{"", 0, 0, true},
		{"b", 0, 0, true},
		{"bafkqaaa", 1, Raw, false}, // the identity multihash of nothing
	}
	for _, tc := range tests {
		c, err := Parse(tc.in)
		if tc.wantErr {
			if err == nil || !errors.Is(err, ErrMalformed) {
				t.Errorf("Parse(%q) = %v, %v; want ErrMalformed", tc.in, c, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if c.Version != tc.version || c.Codec != tc.codec {
			t.Errorf("Parse(%q) = v%d codec %#x, want v%d %#x", tc.in, c.Version, c.Codec, tc.version, tc.codec)
		}
		if got := c.String(); got != tc.in {
			t.Errorf("Parse(%q).String() = %q", tc.in, got)
		}
	}
}

func TestSum256(t *testing.T) {
	c := NewV1(Raw, Sum256(sha256.Sum256([]byte("hello world\n"))))
	if got, want := c.String(), "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"; got != want {
		t.Errorf("raw CID of \"hello world\\n\" = %s, want %s", got, want)
	}
}
