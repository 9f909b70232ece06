package noise

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestPayloadRoundTrip(t *testing.T) {
	for _, p := range []Payload{
		{IdentityKey: []byte{1, 2}, IdentitySig: []byte{3}},
		{IdentityKey: bytes.Repeat([]byte{7}, 300), IdentitySig: bytes.Repeat([]byte{9}, 200), Muxers: []string{"/yamux/1.0.0", "/mplex/6.7.0"}},
	} {
		b := p.Append(nil)
		got, err := DecodePayload(b)
		if err != nil || !reflect.DeepEqual(got, p) {
			t.Fatalf("got %+v %v", got, err)
		}
	}
}

func TestPayloadKnownEncoding(t *testing.T) {
	b := Payload{IdentityKey: []byte{0xaa}, IdentitySig: []byte{0xbb}, Muxers: []string{"/y"}}.Append(nil)
	want := []byte{0x0a, 1, 0xaa, 0x12, 1, 0xbb, 0x22, 4, 0x12, 2, '/', 'y'}
	if !bytes.Equal(b, want) {
		t.Fatalf("got % x", b)
	}
}

func TestPayloadDecode(t *testing.T) {
	ext := func(fields ...[]byte) []byte {
		inner := bytes.Join(fields, nil)
		return append([]byte{0x22, byte(len(inner))}, inner...)
	}
	mux := func(s string) []byte { return append([]byte{0x12, byte(len(s))}, s...) }
	for _, tc := range []struct {
		name string
		in   []byte
		want Payload
		err  bool
	}{
		{name: "empty", in: nil},
		{name: "unknown varint/i64/i32/len fields skipped",
			in:   []byte{0x18, 0x96, 0x01, 0x29, 1, 2, 3, 4, 5, 6, 7, 8, 0x3d, 1, 2, 3, 4, 0x42, 2, 0, 0, 0x0a, 1, 5},
			want: Payload{IdentityKey: []byte{5}}},
		{name: "cert hashes skipped", in: ext([]byte{0x0a, 2, 1, 2}, mux("/a")), want: Payload{Muxers: []string{"/a"}}},
		{name: "extensions merged", in: append(ext(mux("/a")), ext(mux("/b"))...), want: Payload{Muxers: []string{"/a", "/b"}}},
		{name: "last key wins", in: []byte{0x0a, 1, 1, 0x0a, 1, 2}, want: Payload{IdentityKey: []byte{2}}},
		{name: "large field number", in: []byte{0xf8, 0xff, 0xff, 0xff, 0x0f, 0}, want: Payload{}},
		{name: "truncated len", in: []byte{0x0a, 5, 1}, err: true},
		{name: "truncated key", in: []byte{0x8a}, err: true},
		{name: "field zero", in: []byte{0x02, 0}, err: true},
		{name: "group", in: []byte{0x0b}, err: true},
		{name: "wire type 6", in: []byte{0x0e}, err: true},
		{name: "wrong wire type for key", in: []byte{0x08, 1}, err: true},
		{name: "wrong wire type for muxer", in: []byte{0x22, 2, 0x10, 1}, err: true},
		{name: "overlong varint", in: []byte{0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, err: true},
		{name: "huge length", in: []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, err: true},
		{name: "truncated i64", in: []byte{0x29, 1, 2}, err: true},
		{name: "too big", in: make([]byte, MaxPayloadSize+1), err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodePayload(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			if !tc.err && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

func TestPayloadMuxerLimits(t *testing.T) {
	var muxers []string
	for i := range 101 {
		muxers = append(muxers, fmt.Sprintf("/m/%d", i))
	}
	p, err := DecodePayload(Payload{Muxers: muxers}.Append(nil))
	if err != nil || p.Muxers != nil {
		t.Fatalf("101 muxers: %v %v", len(p.Muxers), err)
	}
	p, err = DecodePayload(Payload{Muxers: muxers[:100]}.Append(nil))
	if err != nil || len(p.Muxers) != 100 {
		t.Fatalf("100 muxers: %v %v", len(p.Muxers), err)
	}
	long := strings.Repeat("x", 1025)
	p, err = DecodePayload(Payload{Muxers: []string{long, "/yamux/1.0.0"}}.Append(nil))
	if err != nil || !reflect.DeepEqual(p.Muxers, []string{"/yamux/1.0.0"}) {
		t.Fatalf("long muxer: %v %v", p.Muxers, err)
	}
}
