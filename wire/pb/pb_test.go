package pb_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/mote-p2p/mote/wire/pb"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll reads every field of b, stopping at the first error.
func readAll(r pb.Reader) ([]pb.Field, error) {
	var fields []pb.Field
	for {
		f, ok, err := r.Next()
		if err != nil || !ok {
			return fields, err
		}
		fields = append(fields, f)
	}
}

func TestReaderFields(t *testing.T) {
	in := unhex(t, "08 96 01"+ // 1: varint 150
		"11 0102030405060708"+ // 2: fixed64
		"1d 01020304"+ // 3: fixed32
		"22 03 616263"+ // 4: "abc"
		"2a 00"+ // 5: empty bytes
		"8a 00 01 78"+ // 1, bytes, in a non-minimal two-byte key
		"f8 ff ff ff 0f 00") // the largest field number, varint 0
	want := []pb.Field{
		{Num: 1, Type: pb.VarintType, Value: 150},
		{Num: 2, Type: pb.Fixed64Type, Value: 0x0807060504030201},
		{Num: 3, Type: pb.Fixed32Type, Value: 0x04030201},
		{Num: 4, Type: pb.BytesType, Bytes: []byte("abc")},
		{Num: 5, Type: pb.BytesType, Bytes: []byte{}},
		{Num: 1, Type: pb.BytesType, Bytes: []byte("x")},
		{Num: pb.MaxNumber, Type: pb.VarintType},
	}
	got, err := readAll(pb.NewReader(in, pb.NoLimit, pb.NoLimit))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d fields, want %d: %+v", len(got), len(want), got)
	}
	for i, f := range got {
		w := want[i]
		if f.Num != w.Num || f.Type != w.Type || f.Value != w.Value || !bytes.Equal(f.Bytes, w.Bytes) {
			t.Errorf("field %d = %+v, want %+v", i, f, w)
		}
		if f.Type == pb.BytesType && (f.Bytes == nil || cap(f.Bytes) != len(f.Bytes)) {
			t.Errorf("field %d: Bytes nil or capacity %d beyond its length %d", i, cap(f.Bytes), len(f.Bytes))
		}
	}
}

func TestReaderBytesCannotGrowIntoNext(t *testing.T) {
	in := unhex(t, "0a 01 61 12 01 62")
	r := pb.NewReader(in, pb.NoLimit, pb.NoLimit)
	f, _, _ := r.Next()
	_ = append(f.Bytes, 'X')
	if g, _, _ := r.Next(); string(g.Bytes) != "b" {
		t.Fatalf("next field = %q after appending to the first", g.Bytes)
	}
}

func TestReaderErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"truncated key", "80", pb.ErrMalformed},
		{"key over 64 bits", "ff ff ff ff ff ff ff ff ff 02", pb.ErrMalformed},
		{"field zero", "02 00", pb.ErrMalformed},
		{"field number too big", "82 80 80 80 10 00", pb.ErrMalformed},
		{"field number beyond int32", "82 80 80 80 80 01 00", pb.ErrMalformed},
		{"truncated varint value", "08 80", pb.ErrMalformed},
		{"varint value over 64 bits", "08 ff ff ff ff ff ff ff ff ff 02", pb.ErrMalformed},
		{"eleven-byte varint", "08 ff ff ff ff ff ff ff ff ff ff 00", pb.ErrMalformed},
		{"truncated fixed64", "09 0102", pb.ErrMalformed},
		{"truncated fixed32", "0d 01", pb.ErrMalformed},
		{"truncated length", "0a", pb.ErrMalformed},
		{"truncated length varint", "0a 80", pb.ErrMalformed},
		{"length beyond end", "0a 05 0102", pb.ErrMalformed},
		{"huge length", "0a ff ff ff ff ff ff ff ff 7f", pb.ErrMalformed},
		{"length over 64 bits", "0a ff ff ff ff ff ff ff ff ff 02", pb.ErrMalformed},
		{"wire type 6", "0e", pb.ErrMalformed},
		{"wire type 7", "0f", pb.ErrMalformed},
		{"end group at top", "0c", pb.ErrMalformed},
		{"group refused", "0b 0c", pb.ErrMalformed},
		{"error after good fields", "08 01 12 00 1a 02 00", pb.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(pb.NewReader(unhex(t, tc.in), pb.NoLimit, pb.NoLimit))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if errors.Is(err, pb.ErrTooLarge) || errors.Is(err, pb.ErrTooMany) {
				t.Fatalf("err = %v also wraps a limit error", err)
			}
			// Callers name the message and say it is malformed; the
			// sentinel's text would repeat that.
			if strings.Contains(err.Error(), pb.ErrMalformed.Error()) {
				t.Fatalf("err = %q repeats the sentinel", err)
			}
		})
	}
}

func TestReaderGroups(t *testing.T) {
	const depth = 4
	nest := func(levels int) string {
		return strings.Repeat("0b", levels) + strings.Repeat("0c", levels)
	}
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"empty group", "0b 0c", true},
		{"group with every wire type", "0b 08 01 11 0102030405060708 1d 01020304 22 01 61 2b 2c 0c", true},
		{"nested to the limit", nest(depth), true},
		{"nested beyond the limit", nest(depth + 1), false},
		{"unterminated", "0b 08 01", false},
		{"unterminated nested", "0b 13 0c", false},
		{"closed by another number", "0b 14", false},
		{"bad key inside", "0b 02 00 0c", false},
		{"bad value inside", "0b 0a 05 0c", false},
		{"wire type 6 inside", "0b 0e 0c", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := pb.NewReader(unhex(t, tc.in), pb.NoLimit, pb.NoLimit)
			r.AllowGroups(depth)
			_, err := readAll(r)
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && !errors.Is(err, pb.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}

	// A group is one field whose Bytes are the fields inside it; the
	// fields around it are read as usual.
	r := pb.NewReader(unhex(t, "08 01 1b 22 01 61 1c 10 02"), pb.NoLimit, pb.NoLimit)
	r.AllowGroups(1)
	got, err := readAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].Num != 3 || got[1].Type != pb.StartGroupType ||
		!bytes.Equal(got[1].Bytes, unhex(t, "22 01 61")) || got[2].Num != 2 || got[2].Value != 2 {
		t.Fatalf("got %+v", got)
	}
}

func TestReaderLimits(t *testing.T) {
	three := "08 01 12 02 6162 18 03"
	tests := []struct {
		name      string
		in        string
		maxFields int
		maxLen    int
		groups    int
		want      error // nil: the whole message reads
		read      int   // fields returned before the error
	}{
		{"fields at the limit", three, 3, pb.NoLimit, 0, nil, 3},
		{"one field too many", three, 2, pb.NoLimit, 0, pb.ErrTooMany, 2},
		{"no fields allowed", three, 0, pb.NoLimit, 0, pb.ErrTooMany, 0},
		{"negative field limit", three, -1, pb.NoLimit, 0, pb.ErrTooMany, 0},
		{"empty message, no fields allowed", "", 0, 0, 0, nil, 0},
		{"length at the limit", three, pb.NoLimit, 2, 0, nil, 3},
		{"length over the limit", three, pb.NoLimit, 1, 0, pb.ErrTooLarge, 1},
		{"empty bytes, zero limit", "0a 00", pb.NoLimit, 0, 0, nil, 1},
		{"negative length limit", "0a 01 00", pb.NoLimit, -5, 0, pb.ErrTooLarge, 0},
		{"truncated beats too large", "0a 05 00", pb.NoLimit, 4, 0, pb.ErrMalformed, 0},
		{"length over 2^63 without a limit", "0a ff ff ff ff ff ff ff ff ff 01", pb.NoLimit, pb.NoLimit, 0, pb.ErrMalformed, 0},
		{"varints have no length", "08 ff ff ff ff 0f", pb.NoLimit, 0, 0, nil, 1},
		{"length limit inside groups", "0b 12 02 6162 0c", pb.NoLimit, 1, 1, pb.ErrTooLarge, 0},
		{"a group counts as one field", "0b 08 01 10 02 0c 18 03", 2, pb.NoLimit, 1, nil, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := pb.NewReader(unhex(t, tc.in), tc.maxFields, tc.maxLen)
			r.AllowGroups(tc.groups)
			got, err := readAll(r)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want != pb.ErrMalformed && errors.Is(err, pb.ErrMalformed) {
				t.Fatalf("err = %v is a limit error but wraps ErrMalformed", err)
			}
			if len(got) != tc.read {
				t.Fatalf("read %d fields before the error, want %d", len(got), tc.read)
			}
		})
	}
}

func TestReaderDoesNotAllocate(t *testing.T) {
	in := unhex(t, "08 96 01 11 0102030405060708 22 03 616263 2b 08 01 2c")
	allocs := testing.AllocsPerRun(100, func() {
		r := pb.NewReader(in, 10, 10)
		r.AllowGroups(2)
		for {
			_, ok, err := r.Next()
			if err != nil {
				panic(err)
			}
			if !ok {
				break
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per message", allocs)
	}
}

func TestAppend(t *testing.T) {
	minusOne := int64(-1)
	tests := []struct {
		name string
		got  []byte
		want string
		size int // what the matching Size function says; -1: none
	}{
		{"varint", pb.AppendVarint(nil, 1, 150), "08 9601", pb.SizeVarint(1, 150)},
		{"varint zero", pb.AppendVarint(nil, 2, 0), "10 00", pb.SizeVarint(2, 0)},
		{"negative enum", pb.AppendVarint(nil, 1, uint64(minusOne)), "08 ffffffffffffffffff01", pb.SizeVarint(1, uint64(minusOne))},
		{"two-byte key", pb.AppendVarint(nil, 16, 1), "80 01 01", pb.SizeVarint(16, 1)},
		{"largest field number", pb.AppendVarint(nil, pb.MaxNumber, 0), "f8 ffffff0f 00", pb.SizeVarint(pb.MaxNumber, 0)},
		{"bool true", pb.AppendBool(nil, 3, true), "18 01", -1},
		{"bool false", pb.AppendBool(nil, 3, false), "18 00", -1},
		{"bytes", pb.AppendBytes(nil, 1, []byte("ab")), "0a 02 6162", pb.SizeBytes(1, 2)},
		{"empty bytes still appended", pb.AppendBytes(nil, 2, nil), "12 00", pb.SizeBytes(2, 0)},
		{"string", pb.AppendString(nil, 6, "x"), "32 01 78", pb.SizeBytes(6, 1)},
		{"long string", pb.AppendString(nil, 1, strings.Repeat("a", 200))[:4], "0a c801 61", -1},
		{"length prefix", pb.AppendLen(nil, 4, 300), "22 ac02", pb.SizeBytes(4, 300) - 300},
		{"appends to b", pb.AppendVarint([]byte{0xee}, 1, 1), "ee 08 01", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if want := unhex(t, tc.want); !bytes.Equal(tc.got, want) {
				t.Fatalf("got % x, want % x", tc.got, want)
			}
			if tc.size >= 0 && tc.size != len(tc.got) {
				t.Fatalf("size %d, encoding is %d bytes", tc.size, len(tc.got))
			}
		})
	}
}

// TestRoundTrip encodes a message with an embedded message written in place
// by AppendLen and reads it back.
func TestRoundTrip(t *testing.T) {
	inner := []string{"/yamux/1.0.0", "", strings.Repeat("m", 130)}
	n := 0
	for _, s := range inner {
		n += pb.SizeBytes(2, len(s))
	}
	b := pb.AppendBytes(nil, 1, []byte{1, 2, 3})
	b = pb.AppendVarint(b, 2, 1<<63)
	b = pb.AppendBool(b, 3, true)
	b = pb.AppendLen(b, 4, n)
	for _, s := range inner {
		b = pb.AppendString(b, 2, s)
	}
	b = pb.AppendString(b, 1000, "far")

	got, err := readAll(pb.NewReader(b, 5, 1<<10))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || !bytes.Equal(got[0].Bytes, []byte{1, 2, 3}) || got[1].Value != 1<<63 ||
		got[2].Value != 1 || len(got[3].Bytes) != n || got[4].Num != 1000 || string(got[4].Bytes) != "far" {
		t.Fatalf("got %+v", got)
	}
	sub, err := readAll(pb.NewReader(got[3].Bytes, len(inner), pb.NoLimit))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range sub {
		if f.Num != 2 || f.Type != pb.BytesType || string(f.Bytes) != inner[i] {
			t.Fatalf("embedded field %d = %+v, want %q", i, f, inner[i])
		}
	}
}

func BenchmarkReader(b *testing.B) {
	var msg []byte
	for range 20 {
		msg = pb.AppendString(msg, 3, "/ipfs/id/1.0.0")
		msg = pb.AppendVarint(msg, 9, 12345)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for range b.N {
		r := pb.NewReader(msg, pb.NoLimit, pb.NoLimit)
		for {
			_, ok, err := r.Next()
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				break
			}
		}
	}
}
