package wire_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/mote-p2p/mote/wire"
)

// unhex decodes a hex string with optional spaces, failing the test on typos.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(string(bytes.ReplaceAll([]byte(s), []byte(" "), nil)))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestAppendUvarint(t *testing.T) {
	tests := []struct {
		v   uint64
		hex string
	}{
		{0, "00"},
		{1, "01"},
		{127, "7f"},
		{128, "80 01"},
		{255, "ff 01"},
		{300, "ac 02"},
		{16383, "ff 7f"},
		{16384, "80 80 01"},
		{1 << 56, "80 80 80 80 80 80 80 80 01"},
		{math.MaxInt64, "ff ff ff ff ff ff ff ff 7f"},
	}
	for _, tt := range tests {
		want := unhex(t, tt.hex)
		got := wire.AppendUvarint([]byte{0xee}, tt.v)
		if !bytes.Equal(got[1:], want) || got[0] != 0xee {
			t.Errorf("AppendUvarint(%d) = %x, want ee%x", tt.v, got, want)
		}
		if n := wire.UvarintLen(tt.v); n != len(want) {
			t.Errorf("UvarintLen(%d) = %d, want %d", tt.v, n, len(want))
		}
	}
}

// varintCases are shared by the slice and stream decoder tests so both are
// held to exactly the same rules.
var varintCases = []struct {
	name string
	hex  string
	v    uint64
	n    int
	err  error
}{
	{"zero", "00", 0, 1, nil},
	{"one", "01", 1, 1, nil},
	{"127", "7f", 127, 1, nil},
	{"128", "80 01", 128, 2, nil},
	{"255", "ff 01", 255, 2, nil},
	{"300", "ac 02", 300, 2, nil},
	{"16384", "80 80 01", 16384, 3, nil},
	{"trailing bytes ignored", "ac 02 ff", 300, 2, nil},
	{"nine bytes max", "ff ff ff ff ff ff ff ff 7f", math.MaxInt64, 9, nil},
	{"2^56", "80 80 80 80 80 80 80 80 01", 1 << 56, 9, nil},
	{"non-minimal one", "81 00", 0, 0, wire.ErrVarintNotMinimal},
	{"non-minimal zero", "80 00", 0, 0, wire.ErrVarintNotMinimal},
	{"non-minimal three bytes", "ac 82 00", 0, 0, wire.ErrVarintNotMinimal},
	{"ten bytes (2^63)", "80 80 80 80 80 80 80 80 80 01", 0, 0, wire.ErrVarintOverflow},
	{"nine continuation bytes", "ff ff ff ff ff ff ff ff ff", 0, 0, wire.ErrVarintOverflow},
	{"ten bytes max uint64", "ff ff ff ff ff ff ff ff ff 01", 0, 0, wire.ErrVarintOverflow},
	{"truncated", "80", 0, 0, io.ErrUnexpectedEOF},
	{"truncated eight", "ff ff ff ff ff ff ff ff", 0, 0, io.ErrUnexpectedEOF},
}

func TestUvarint(t *testing.T) {
	for _, tt := range varintCases {
		t.Run(tt.name, func(t *testing.T) {
			in := unhex(t, tt.hex)
			v, n, err := wire.Uvarint(in)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if v != tt.v || n != tt.n {
				t.Fatalf("got (%d, %d), want (%d, %d)", v, n, tt.v, tt.n)
			}
			if sv, sn, serr := wire.Uvarint(string(in)); sv != v || sn != n || serr != err {
				t.Fatalf("string form: got (%d, %d, %v), want (%d, %d, %v)", sv, sn, serr, v, n, err)
			}
		})
	}
	if _, _, err := wire.Uvarint([]byte(nil)); err != io.ErrUnexpectedEOF {
		t.Fatalf("Uvarint(nil) err = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestReadUvarint(t *testing.T) {
	for _, tt := range varintCases {
		t.Run(tt.name, func(t *testing.T) {
			in := unhex(t, tt.hex)
			r := bytes.NewReader(in)
			v, err := wire.ReadUvarint(r)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if v != tt.v {
				t.Fatalf("v = %d, want %d", v, tt.v)
			}
			if consumed := len(in) - r.Len(); err == nil && consumed != tt.n {
				t.Fatalf("consumed %d bytes, want %d", consumed, tt.n)
			}
		})
	}
}

func TestReadUvarintEOF(t *testing.T) {
	if _, err := wire.ReadUvarint(bytes.NewReader(nil)); err != io.EOF {
		t.Fatalf("empty input: err = %v, want io.EOF", err)
	}
	if _, err := wire.ReadUvarint(bytes.NewReader([]byte{0x80, 0x80})); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated input: err = %v, want io.ErrUnexpectedEOF", err)
	}
}

// failingByteReader yields its bytes, then a fixed error.
type failingByteReader struct {
	data []byte
	err  error
}

func (r *failingByteReader) ReadByte() (byte, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	c := r.data[0]
	r.data = r.data[1:]
	return c, nil
}

func TestReadUvarintWrapsReaderError(t *testing.T) {
	boom := errors.New("boom")
	for _, prefix := range [][]byte{nil, {0x80}} {
		_, err := wire.ReadUvarint(&failingByteReader{data: prefix, err: boom})
		if !errors.Is(err, boom) {
			t.Errorf("prefix %x: err = %v, want it to wrap %v", prefix, err, boom)
		}
	}
}

func TestUvarintRoundTrip(t *testing.T) {
	values := []uint64{0, math.MaxInt64}
	for s := 0; s < 63; s++ {
		values = append(values, 1<<s, 1<<s-1, 1<<s+1)
	}
	for _, v := range values {
		b := wire.AppendUvarint(nil, v)
		got, n, err := wire.Uvarint(b)
		if err != nil || got != v || n != len(b) || n != wire.UvarintLen(v) {
			t.Errorf("round trip %d: got (%d, %d, %v) from %x", v, got, n, err, b)
		}
		got, err = wire.ReadUvarint(bytes.NewReader(b))
		if err != nil || got != v {
			t.Errorf("stream round trip %d: got (%d, %v)", v, got, err)
		}
	}
}

func TestUvarintRejectsUnrepresentable(t *testing.T) {
	for _, v := range []uint64{1 << 63, math.MaxUint64} {
		b := wire.AppendUvarint(nil, v)
		if len(b) != 10 || wire.UvarintLen(v) != 10 {
			t.Errorf("AppendUvarint(%d) = %x, want 10 bytes", v, b)
		}
		if _, _, err := wire.Uvarint(b); !errors.Is(err, wire.ErrVarintOverflow) {
			t.Errorf("Uvarint(%x) err = %v, want ErrVarintOverflow", b, err)
		}
	}
}

func BenchmarkAppendUvarint(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, wire.MaxUvarintLen)
	for i := range b.N {
		buf = wire.AppendUvarint(buf[:0], uint64(i)*0x9e3779b97f4a7c15>>1)
	}
	_ = buf
}

func BenchmarkUvarint(b *testing.B) {
	b.ReportAllocs()
	in := wire.AppendUvarint(nil, 1<<40)
	for range b.N {
		if _, _, err := wire.Uvarint(in); err != nil {
			b.Fatal(err)
		}
	}
}
