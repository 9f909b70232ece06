package mux

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// TestHeaderBytes checks the encoding against the worked examples of the
// yamux spec notes (WIRE-FACTS §26).
func TestHeaderBytes(t *testing.T) {
	for _, tc := range []struct {
		h   Header
		hex string
	}{
		{Header{Type: TypeWindowUpdate, Flags: FlagSYN, StreamID: 1}, "00 01 0001 00000001 00000000"},
		{Header{Type: TypeWindowUpdate, Flags: FlagACK, StreamID: 1}, "00 01 0002 00000001 00000000"},
		{Header{Type: TypeData, StreamID: 1, Length: 19}, "00 00 0000 00000001 00000013"},
		{Header{Type: TypeWindowUpdate, StreamID: 1, Length: 262144}, "00 01 0000 00000001 00040000"},
		{Header{Type: TypeWindowUpdate, Flags: FlagFIN, StreamID: 1}, "00 01 0004 00000001 00000000"},
		{Header{Type: TypeWindowUpdate, Flags: FlagRST, StreamID: 3, Length: 0x1001}, "00 01 0008 00000003 00001001"},
		{Header{Type: TypePing, Flags: FlagSYN, Length: 7}, "00 02 0001 00000000 00000007"},
		{Header{Type: TypePing, Flags: FlagACK, Length: 7}, "00 02 0002 00000000 00000007"},
		{Header{Type: TypeGoAway}, "00 03 0000 00000000 00000000"},
	} {
		want, _ := hex.DecodeString(strings.ReplaceAll(tc.hex, " ", ""))
		if got := tc.h.Append(nil); string(got) != string(want) {
			t.Errorf("%v encodes to %x, want %x", tc.h, got, want)
		}
		if h, err := ParseHeader(want); err != nil || h != tc.h {
			t.Errorf("%x decodes to %v, %v", want, h, err)
		}
	}
	for _, bad := range []string{"", "000100010000000100", "010000000000000100000000", "000400000000000100000000"} {
		b, _ := hex.DecodeString(bad)
		if _, err := ParseHeader(b); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseHeader(%s): %v, want a protocol error", bad, err)
		}
	}
}

// TestFrameAllocations: steady-state frame writes and reads allocate
// nothing.
func TestFrameAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	client, server := sessions(t, Config{KeepAlive: -1})
	s, _ := client.OpenStream(t.Context())
	s.Write([]byte{0})
	r, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	out, in := make([]byte, 16<<10), make([]byte, 16<<10)
	r.Read(in[:1])
	allocs := testing.AllocsPerRun(200, func() {
		s.Write(out)
		for n := 0; n < len(out); {
			k, err := r.Read(in)
			if err != nil {
				t.Fatal(err)
			}
			n += k
		}
	})
	// Window updates go out through a short-lived goroutine every 128 KiB,
	// i.e. every 8 runs; nothing else may allocate.
	if allocs > 1 {
		t.Errorf("%.1f allocations per 16 KiB frame", allocs)
	}
}
