package kademlia

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/mote-p2p/mote/peer"
)

// keyWithBit returns the key with only bit i (0 = most significant) set.
func keyWithBit(i int) Key {
	var k Key
	k[i/8] = 0x80 >> (i % 8)
	return k
}

// testIDs returns n distinct peer IDs shaped like sha2-256 multihashes,
// drawn from a fixed seed so that failures reproduce.
func testIDs(seed uint64, n int) []peer.ID {
	r := mrand.New(mrand.NewPCG(seed, 0x6d6f7465))
	ids := make([]peer.ID, n)
	for i := range ids {
		b := make([]byte, 34)
		b[0], b[1] = 0x12, 0x20
		for j := 2; j < len(b); j++ {
			b[j] = byte(r.Uint32())
		}
		ids[i] = peer.ID(b)
	}
	return ids
}

func TestKeyOf(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"peer ID", []byte(testIDs(1, 1)[0])},
		{"record key", []byte("/pk/\x12\x20abc")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := KeyOf(tt.in), Key(sha256.Sum256(tt.in)); got != want {
				t.Fatalf("KeyOf = %x, want %x", got, want)
			}
			if got, want := PeerKey(peer.ID(tt.in)), KeyOf(tt.in); got != want {
				t.Fatalf("PeerKey = %x, want KeyOf = %x", got, want)
			}
		})
	}
}

func TestDistanceAndCommonPrefixLen(t *testing.T) {
	var zero, ones Key
	for i := range ones {
		ones[i] = 0xff
	}
	mixed := Key{0xf0, 0x0f}
	tests := []struct {
		name string
		a, b Key
		dist Key
		cpl  int
	}{
		{"equal zero", zero, zero, zero, 256},
		{"equal ones", ones, ones, zero, 256},
		{"all differ", zero, ones, ones, 0},
		{"first bit", zero, keyWithBit(0), keyWithBit(0), 0},
		{"bit 7", zero, keyWithBit(7), keyWithBit(7), 7},
		{"bit 8", zero, keyWithBit(8), keyWithBit(8), 8},
		{"bit 63", ones, ones.Distance(keyWithBit(63)), keyWithBit(63), 63},
		{"bit 64", zero, keyWithBit(64), keyWithBit(64), 64},
		{"bit 200", zero, keyWithBit(200), keyWithBit(200), 200},
		{"last bit", zero, keyWithBit(255), keyWithBit(255), 255},
		{"mixed", mixed, Key{0xf0, 0x0e}, Key{0x00, 0x01}, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Distance(tt.b); got != tt.dist {
				t.Errorf("Distance = %x, want %x", got, tt.dist)
			}
			if got := tt.b.Distance(tt.a); got != tt.dist {
				t.Errorf("Distance is not symmetric: %x", got)
			}
			if got := CommonPrefixLen(tt.a, tt.b); got != tt.cpl {
				t.Errorf("CommonPrefixLen = %d, want %d", got, tt.cpl)
			}
			if got := CommonPrefixLen(tt.b, tt.a); got != tt.cpl {
				t.Errorf("CommonPrefixLen(b, a) = %d, want %d", got, tt.cpl)
			}
		})
	}
}

func TestCloser(t *testing.T) {
	var zero Key
	target := Key{0x80}
	tests := []struct {
		name   string
		target Key
		a, b   Key
		want   bool
	}{
		{"equal", zero, keyWithBit(3), keyWithBit(3), false},
		{"a is target", zero, zero, keyWithBit(255), true},
		{"b is target", zero, keyWithBit(255), zero, false},
		{"high bit dominates", zero, keyWithBit(1), keyWithBit(0), true},
		{"high bit dominates reversed", zero, keyWithBit(0), keyWithBit(1), false},
		// Relative to 0x80..., 0x80 01 is at distance 00 01 and 0x00 is at
		// distance 0x80: XOR, not numeric closeness.
		{"xor not subtraction", target, Key{0x80, 0x01}, zero, true},
		{"xor not subtraction reversed", target, zero, Key{0x80, 0x01}, false},
		{"last byte", zero, Key{31: 1}, Key{31: 2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.target.Closer(tt.a, tt.b); got != tt.want {
				t.Fatalf("Closer = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSortByDistance(t *testing.T) {
	ids := testIDs(2, 300)
	target := PeerKey(ids[17])
	tests := []struct {
		name string
		ids  []peer.ID
	}{
		{"empty", nil},
		{"one", ids[:1]},
		{"many", ids},
		{"duplicates", append(append([]peer.ID{}, ids[:50]...), ids[10:40]...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := append([]peer.ID(nil), tt.ids...)
			SortByDistance(target, got)
			if len(got) != len(tt.ids) {
				t.Fatalf("len = %d, want %d", len(got), len(tt.ids))
			}
			counts := map[peer.ID]int{}
			for _, id := range tt.ids {
				counts[id]++
			}
			for _, id := range got {
				counts[id]--
			}
			for id, c := range counts {
				if c != 0 {
					t.Fatalf("peer %x count off by %d after sort", id, c)
				}
			}
			for i := 1; i < len(got); i++ {
				if target.Closer(PeerKey(got[i]), PeerKey(got[i-1])) {
					t.Fatalf("position %d is closer than position %d", i, i-1)
				}
			}
			if len(got) > 0 && len(tt.ids) > 17 && got[0] != ids[17] {
				t.Fatalf("first = %x, want the target's own peer", got[0])
			}
		})
	}
}

// failingReader fails every read.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestRandomKeyBytes(t *testing.T) {
	selves := []Key{PeerKey(testIDs(3, 1)[0]), {}, KeyOf(nil)}
	for cpl := 0; cpl <= MaxRefreshCPL; cpl++ {
		for _, self := range selves {
			seen := map[string]bool{}
			for range 3 {
				b, err := RandomKeyBytes(self, cpl, rand.Reader)
				if err != nil {
					t.Fatalf("cpl %d: %v", cpl, err)
				}
				if len(b) != 32 {
					t.Fatalf("cpl %d: %d bytes, want 32", cpl, len(b))
				}
				if got := CommonPrefixLen(KeyOf(b), self); got != cpl {
					t.Fatalf("cpl %d: key has common-prefix length %d", cpl, got)
				}
				seen[string(b)] = true
			}
			if len(seen) != 3 {
				t.Fatalf("cpl %d: repeated keys from crypto/rand", cpl)
			}
		}
	}
}

func TestRandomKeyBytesErrors(t *testing.T) {
	tests := []struct {
		name    string
		cpl     int
		rnd     io.Reader
		refresh bool // error wraps ErrRefreshCPL
	}{
		{"negative", -1, rand.Reader, true},
		{"too deep", MaxRefreshCPL + 1, rand.Reader, true},
		{"far too deep", 256, rand.Reader, true},
		{"reader fails", 3, failingReader{}, false},
		{"reader short", 3, strings.NewReader("short"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := RandomKeyBytes(Key{}, tt.cpl, tt.rnd)
			if err == nil {
				t.Fatalf("got %x, want an error", b)
			}
			if errors.Is(err, ErrRefreshCPL) != tt.refresh {
				t.Fatalf("err = %v, errors.Is(ErrRefreshCPL) = %v, want %v", err, !tt.refresh, tt.refresh)
			}
		})
	}
}

// TestRandomKeyBytesDeterministicReader checks that a reader without
// entropy still terminates: the counter, not the reader, supplies the
// candidates.
func TestRandomKeyBytesDeterministicReader(t *testing.T) {
	zeros := bytes.NewReader(make([]byte, 32))
	b, err := RandomKeyBytes(Key{}, MaxRefreshCPL, zeros)
	if err != nil {
		t.Fatal(err)
	}
	if got := CommonPrefixLen(KeyOf(b), Key{}); got != MaxRefreshCPL {
		t.Fatalf("common-prefix length %d, want %d", got, MaxRefreshCPL)
	}
}

func BenchmarkRandomKeyBytes(b *testing.B) {
	self := PeerKey(testIDs(4, 1)[0])
	for b.Loop() {
		if _, err := RandomKeyBytes(self, MaxRefreshCPL, rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}
