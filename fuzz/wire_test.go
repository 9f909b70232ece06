package fuzz

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/mote-p2p/mote/wire"
)

// plainReader hides io.ByteReader so the unbuffered byte-at-a-time path of
// the wire readers is fuzzed too.
type plainReader struct{ r io.Reader }

func (p plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

// fuzzConn feeds a negotiation from fuzz input and discards what it writes.
type fuzzConn struct {
	io.Reader
	io.Writer
}

// input wraps data in a reader, optionally hiding io.ByteReader.
func input(data []byte, plain bool) (io.Reader, *bytes.Reader) {
	br := bytes.NewReader(data)
	if plain {
		return plainReader{br}, br
	}
	return br, br
}

// msgs concatenates multistream messages for seeds.
func msgs(lines ...string) []byte {
	var b []byte
	for _, l := range lines {
		b = wire.AppendMessage(b, l)
	}
	return b
}

func FuzzUvarint(f *testing.F) {
	for _, s := range [][]byte{
		{0x00}, {0x01}, {0x7f}, {0x80, 0x01}, {0xff, 0x01}, {0xac, 0x02}, {0x80, 0x80, 0x01},
		{0x81, 0x00}, {0x80}, {},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		f.Add(s, uint64(len(s))*0x0123456789abcdef)
	}
	f.Fuzz(func(t *testing.T, data []byte, v uint64) {
		// Any value below 2^63 must round-trip exactly.
		v &= 1<<63 - 1
		enc := wire.AppendUvarint(nil, v)
		got, n, err := wire.Uvarint(enc)
		if err != nil || got != v || n != len(enc) || n != wire.UvarintLen(v) {
			t.Fatalf("round trip of %d via %x: (%d, %d, %v)", v, enc, got, n, err)
		}

		// Decoding arbitrary bytes: success means the canonical encoding.
		dv, dn, derr := wire.Uvarint(data)
		if derr == nil {
			if dn < 1 || dn > wire.MaxUvarintLen || !bytes.Equal(wire.AppendUvarint(nil, dv), data[:dn]) {
				t.Fatalf("Uvarint(%x) = (%d, %d): not the minimal encoding", data, dv, dn)
			}
		}

		// The stream decoder must agree with the slice decoder.
		r := bytes.NewReader(data)
		sv, serr := wire.ReadUvarint(r)
		switch {
		case derr == nil:
			if serr != nil || sv != dv || len(data)-r.Len() != dn {
				t.Fatalf("ReadUvarint(%x) = (%d, %v), Uvarint gave (%d, %d)", data, sv, serr, dv, dn)
			}
		case len(data) == 0:
			if serr != io.EOF {
				t.Fatalf("ReadUvarint(empty) err = %v, want io.EOF", serr)
			}
		case !errors.Is(serr, derr):
			t.Fatalf("ReadUvarint(%x) err = %v, Uvarint err = %v", data, serr, derr)
		}
	})
}

func FuzzReadLP(f *testing.F) {
	f.Add([]byte{0x00}, 16, false)
	f.Add([]byte("\x05hello"), 16, true)
	f.Add([]byte("\x05hel"), 16, false)
	f.Add([]byte("\x05hello"), 4, false)
	f.Add([]byte{0x81, 0x00, 'x'}, 16, true)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 1<<20, false)
	f.Add(append(wire.AppendLP(nil, []byte("a")), "tail"...), 16, true)
	f.Fuzz(func(t *testing.T, data []byte, limit int, plain bool) {
		r, br := input(data, plain)
		msg, err := wire.ReadLP(r, limit)
		if err != nil {
			if len(data) == 0 && err != io.EOF {
				t.Fatalf("empty input: err = %v, want io.EOF", err)
			}
			return
		}
		if len(msg) > max(limit, 0) {
			t.Fatalf("returned %d bytes over the %d-byte limit", len(msg), limit)
		}
		// Exactly the frame was consumed: nothing more, nothing less.
		frame := wire.AppendLP(nil, msg)
		if consumed := len(data) - br.Len(); consumed != len(frame) || !bytes.Equal(data[:consumed], frame) {
			t.Fatalf("consumed %d bytes for a %d-byte frame", consumed, len(frame))
		}
	})
}

func FuzzMultistreamNegotiate(f *testing.F) {
	f.Add(msgs(wire.ProtocolID, "/a"), false)
	f.Add(append(msgs(wire.ProtocolID, "/a"), "hello"...), true)
	f.Add(msgs(wire.ProtocolID, "/x", "ls", "na", "/b"), false)
	f.Add(msgs(wire.ProtocolID, "/x", "/y", "/z"), true)
	f.Add(msgs("/a"), false)
	f.Add([]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc"), false)
	f.Add(append(msgs(wire.ProtocolID), 0x81, 0x08), true)
	f.Add(append(msgs(wire.ProtocolID), 0x00), false)
	f.Add(append(msgs(wire.ProtocolID), "\x03/a/"...), true)
	f.Add([]byte{}, false)
	protocols := []string{"/a", "/b", "/ipfs/id/1.0.0"}
	f.Fuzz(func(t *testing.T, data []byte, plain bool) {
		r, br := input(data, plain)
		proto, err := wire.Negotiate(fuzzConn{r, io.Discard}, protocols, nil)
		if err != nil {
			if proto != "" {
				t.Fatalf("returned protocol %q with error %v", proto, err)
			}
			return
		}
		if !slices.Contains(protocols, proto) {
			t.Fatalf("accepted unsupported protocol %q", proto)
		}
		// The accepted proposal must be the last thing read.
		consumed := data[:len(data)-br.Len()]
		if !bytes.HasSuffix(consumed, wire.AppendMessage(nil, proto)) {
			t.Fatalf("read past the accepted proposal %q", proto)
		}
	})
}

func FuzzReadSelectResponse(f *testing.F) {
	f.Add(msgs(wire.ProtocolID, "/noise"), "/noise", false)
	f.Add(msgs(wire.ProtocolID, "na"), "/noise", true)
	f.Add(msgs(wire.ProtocolID, "/tls/1.0.0"), "/noise", false)
	f.Add(msgs(wire.ProtocolID), "/noise", false)
	f.Add(msgs("/noise"), "/noise", true)
	f.Add(append(msgs(wire.ProtocolID, "/yamux/1.0.0"), "app"...), "/yamux/1.0.0", true)
	f.Add([]byte("\x13/multistream/1.0.0"), "/noise", false)
	f.Add(msgs(wire.ProtocolID, "na"), "na", false)
	f.Fuzz(func(t *testing.T, data []byte, proto string, plain bool) {
		r, br := input(data, plain)
		err := wire.ReadSelectResponse(r, proto)
		if err != nil {
			return
		}
		want := wire.AppendSelect(nil, proto)
		if consumed := data[:len(data)-br.Len()]; !bytes.Equal(consumed, want) {
			t.Fatalf("accepted %q after reading %q", proto, consumed)
		}
	})
}
