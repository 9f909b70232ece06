package kademlia

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/mote-p2p/mote/wire"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// timeReceived is an RFC 3339 timestamp with nanoseconds, UTC, as go's
// DHT stamps stored records: 30 bytes (0x1e).
const timeReceived = "2024-05-01T12:34:56.123456789Z"

// goldenVectors are encodings written by hand from the field numbers of
// pb/dht.proto and record.proto (key byte = number<<3 | wire type), so a
// wrong number or wire type in the codec fails them. Fields go in number
// order, as go's runtime writes them.
var goldenVectors = []struct {
	name string
	hex  string
	msg  Message
}{
	{
		name: "FIND_NODE request",
		// 08 04: type=4; 12 03 "abc": key; 50 01: clusterLevelRaw=1.
		hex: "0804 1203616263 5001",
		msg: Message{Type: FindNode, Key: []byte("abc"), ClusterLevelRaw: 1},
	},
	{
		name: "FIND_NODE response",
		// 42 10: closerPeers, 16 bytes: 0a 02 id, 12 08 addr
		// /ip4/127.0.0.1/tcp/500, 18 01 connection=CONNECTED.
		hex: "0804 4210 0a020102 1208047f0000010601f4 1801",
		msg: Message{Type: FindNode, CloserPeers: []Peer{{
			ID: []byte{1, 2}, Addrs: [][]byte{unhexMust("047f0000010601f4")}, Connection: Connected,
		}}},
	},
	{
		name: "PUT_VALUE request",
		// No type field (PUT_VALUE is 0). 12 05 "/pk/x": key; 1a 2b:
		// record of 43 bytes: 0a 05 key, 12 02 value, 2a 1e timeReceived.
		hex: "1205 2f706b2f78 1a2b 0a052f706b2f78 12020102 2a1e" + hex.EncodeToString([]byte(timeReceived)),
		msg: Message{Type: PutValue, Key: []byte("/pk/x"), Record: &Record{
			Key: []byte("/pk/x"), Value: []byte{1, 2}, TimeReceived: timeReceived,
		}},
	},
	{
		name: "GET_VALUE request",
		hex:  "0801 1205 2f706b2f78",
		msg:  Message{Type: GetValue, Key: []byte("/pk/x")},
	},
	{
		name: "GET_VALUE response with empty record",
		// 1a 00: a present, empty record survives (message presence).
		hex: "0801 1205 2f706b2f78 1a00 4204 0a020102",
		msg: Message{Type: GetValue, Key: []byte("/pk/x"), Record: &Record{},
			CloserPeers: []Peer{{ID: []byte{1, 2}}}},
	},
	{
		name: "ADD_PROVIDER request",
		// key: identity multihash 00 03 "abc"; 4a 0f: providerPeers, 15
		// bytes: id, addr /ip4/1.2.3.4/udp/4001 (04 01020304 9102 0fa1).
		hex: "0802 1205 0003616263 4a0f 0a020304 1209040102030491020fa1",
		msg: Message{Type: AddProvider, Key: unhexMust("0003616263"), ProviderPeers: []Peer{{
			ID: []byte{3, 4}, Addrs: [][]byte{unhexMust("040102030491020fa1")},
		}}},
	},
	{
		name: "GET_PROVIDERS response",
		// closer peer with two addresses, one empty; provider peer with
		// connection=CANNOT_CONNECT (18 03) and no address.
		hex: "0803 1205 0003616263 420a 0a020102 1202aabb 1200 4a06 0a020304 1803",
		msg: Message{Type: GetProviders, Key: unhexMust("0003616263"),
			CloserPeers:   []Peer{{ID: []byte{1, 2}, Addrs: [][]byte{{0xaa, 0xbb}, {}}}},
			ProviderPeers: []Peer{{ID: []byte{3, 4}, Connection: CannotConnect}},
		},
	},
	{
		name: "PING",
		hex:  "0805",
		msg:  Message{Type: Ping},
	},
	{
		name: "empty message",
		hex:  "",
		msg:  Message{},
	},
	{
		name: "negative enums sign-extend to 10 bytes",
		hex:  "08ffffffffffffffffff01 4a0b 18feffffffffffffffff01 50ffffffffffffffffff01",
		msg:  Message{Type: -1, ClusterLevelRaw: -1, ProviderPeers: []Peer{{Connection: -2}}},
	},
	{
		name: "CAN_CONNECT and unknown enum values kept",
		hex:  "0807 42021802",
		msg:  Message{Type: 7, CloserPeers: []Peer{{Connection: CanConnect}}},
	},
}

func unhexMust(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// equalMessage compares decoded messages; empty and nil address entries
// are alike (proto3 has no presence for them either).
func equalMessage(a, b *Message) bool {
	if a.Type != b.Type || a.ClusterLevelRaw != b.ClusterLevelRaw || !bytes.Equal(a.Key, b.Key) ||
		(a.Record == nil) != (b.Record == nil) {
		return false
	}
	if a.Record != nil && (!bytes.Equal(a.Record.Key, b.Record.Key) || !bytes.Equal(a.Record.Value, b.Record.Value) ||
		a.Record.TimeReceived != b.Record.TimeReceived) {
		return false
	}
	return equalPeers(a.CloserPeers, b.CloserPeers) && equalPeers(a.ProviderPeers, b.ProviderPeers)
}

func equalPeers(a, b []Peer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].ID, b[i].ID) || a[i].Connection != b[i].Connection || len(a[i].Addrs) != len(b[i].Addrs) {
			return false
		}
		for j := range a[i].Addrs {
			if !bytes.Equal(a[i].Addrs[j], b[i].Addrs[j]) {
				return false
			}
		}
	}
	return true
}

func TestGoldenVectors(t *testing.T) {
	for _, tc := range goldenVectors {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.hex)
			if got := tc.msg.Append(nil); !bytes.Equal(got, want) {
				t.Errorf("Append:\n got %x\nwant %x", got, want)
			}
			if n := tc.msg.Size(); n != len(want) {
				t.Errorf("Size = %d, want %d", n, len(want))
			}
			m, err := DecodeMessage(want, Limits{})
			if err != nil {
				t.Fatalf("DecodeMessage: %v", err)
			}
			if !equalMessage(m, &tc.msg) {
				t.Errorf("DecodeMessage:\n got %+v\nwant %+v", m, tc.msg)
			}
		})
	}
}

// TestRoundTrip covers every message type in its request and response
// shapes, through the stream framing.
func TestRoundTrip(t *testing.T) {
	peers := []Peer{
		{ID: []byte("peer-a"), Addrs: [][]byte{unhexMust("047f0000010601f4"), unhexMust("29000000000000000000000000000000010601f4")}, Connection: Connected},
		{ID: []byte("peer-b")},
	}
	msgs := []Message{
		{Type: PutValue, Key: []byte("/ipns/k"), Record: &Record{Key: []byte("/ipns/k"), Value: bytes.Repeat([]byte{7}, 300), TimeReceived: timeReceived}, ClusterLevelRaw: 1},
		{Type: GetValue, Key: []byte("/ipns/k"), ClusterLevelRaw: 1},
		{Type: GetValue, Key: []byte("/ipns/k"), Record: &Record{Key: []byte("/ipns/k"), Value: []byte{1}}, CloserPeers: peers},
		{Type: AddProvider, Key: unhexMust("1220" + strings.Repeat("ab", 32)), ProviderPeers: peers[:1]},
		{Type: GetProviders, Key: unhexMust("1220" + strings.Repeat("ab", 32))},
		{Type: GetProviders, Key: unhexMust("1220" + strings.Repeat("ab", 32)), CloserPeers: peers, ProviderPeers: peers},
		{Type: FindNode, Key: []byte("target")},
		{Type: FindNode, CloserPeers: peers},
		{Type: Ping, ClusterLevelRaw: 1},
	}
	var stream bytes.Buffer
	for _, m := range msgs {
		m2, err := DecodeMessage(m.Append(nil), Limits{})
		if err != nil {
			t.Fatalf("%v: %v", m.Type, err)
		}
		if !equalMessage(m2, &m) {
			t.Errorf("%v: decoded\n%+v\nwant\n%+v", m.Type, m2, m)
		}
		if err := WriteMessage(&stream, &m); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []io.Reader{bytes.NewReader(stream.Bytes()), iotest.OneByteReader(bytes.NewReader(stream.Bytes()))} {
		for i := range msgs {
			m, err := ReadMessage(r, Limits{})
			if err != nil {
				t.Fatalf("ReadMessage %d: %v", i, err)
			}
			if !equalMessage(m, &msgs[i]) {
				t.Errorf("ReadMessage %d:\n got %+v\nwant %+v", i, m, msgs[i])
			}
		}
		if _, err := ReadMessage(r, Limits{}); err != io.EOF {
			t.Errorf("at the end of the stream: %v, want io.EOF", err)
		}
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	b := unhex(t, goldenVectors[2].hex)
	m, err := DecodeMessage(b, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if string(m.Key) != "/pk/x" || string(m.Record.Value) != "\x01\x02" {
		t.Errorf("result changed with its input: %+v", m)
	}
}

func TestUnknownFields(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want Message
	}{
		{"top-level varint, bytes, fixed32, fixed64, group",
			"0804 2001 5a03010203 6d01020304 710102030405060708 7b08017c 1203616263",
			Message{Type: FindNode, Key: []byte("abc")}},
		{"field above 15 (two-byte key)", "a01f05 0801", Message{Type: GetValue}},
		{"record author and signature (removed fields 3, 4)",
			"1a0d 0a0161 1a03617574 2203736967",
			Message{Record: &Record{Key: []byte("a")}}},
		{"unknown peer field", "4208 0a0101 3803 3a0178", Message{CloserPeers: []Peer{{ID: []byte{1}}}}},
		{"known fields with the wrong wire type are skipped",
			// type as bytes, key as varint, record as varint, peers as
			// varint, connection as bytes, addrs as varint.
			"0a0104 1001 1801 4001 4801 4208 0a0101 1a0101 1001 0804",
			Message{Type: FindNode, CloserPeers: []Peer{{ID: []byte{1}}}}},
		{"last value wins", "0801 0804 120161 120162", Message{Type: FindNode, Key: []byte("b")}},
		{"records merge", "1a03 0a0161 1a03 120162", Message{Record: &Record{Key: []byte("a"), Value: []byte("b")}}},
		{"empty key is absent", "1200 4202 0a00", Message{CloserPeers: []Peer{{}}}},
		{"enum truncated to 32 bits", "088480808010", Message{Type: FindNode}},
		{"non-minimal varints accepted, as protobuf does", "088400 128300616263", Message{Type: FindNode, Key: []byte("abc")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := unhex(t, tc.hex)
			m, err := DecodeMessage(b, Limits{})
			if err != nil {
				t.Fatalf("DecodeMessage: %v", err)
			}
			if !equalMessage(m, &tc.want) {
				t.Errorf("got %+v, want %+v", m, tc.want)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	for _, h := range []string{
		"08",                     // varint missing
		"0880",                   // truncated varint
		"08ffffffffffffffffff7f", // varint overflows 64 bits
		"1205616263",             // key longer than the input
		"00",                     // field number 0
		"0c",                     // unexpected end group
		"0b",                     // unterminated group
		"0e01",                   // wire type 6
		"4203 0a05",              // peer cut inside its id
		"4a02 1280",              // peer's addr length truncated
		"1a02 2a05",              // record's timeReceived longer than the record
		"1a01 0f",                // wire type 7 inside a record
	} {
		_, err := DecodeMessage(unhex(t, h), Limits{})
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", h, err)
		}
	}
}

// TestTruncated cuts every golden vector at every length: decoding must
// not panic, and cutting the last byte always breaks the last field.
func TestTruncated(t *testing.T) {
	for _, tc := range goldenVectors {
		b := unhex(t, tc.hex)
		for n := range len(b) {
			_, err := DecodeMessage(b[:n], Limits{})
			if n == len(b)-1 && !errors.Is(err, ErrMalformed) {
				t.Errorf("%s cut at %d: %v, want ErrMalformed", tc.name, n, err)
			}
		}
	}
}

func TestLimits(t *testing.T) {
	peer := func(addrs ...[]byte) Peer { return Peer{ID: []byte{1}, Addrs: addrs} }
	repeat := func(n int, p Peer) []Peer {
		ps := make([]Peer, n)
		for i := range ps {
			ps[i] = p
		}
		return ps
	}
	addrs := func(n int) [][]byte {
		as := make([][]byte, n)
		for i := range as {
			as[i] = []byte{4, 1, 2, 3, 4}
		}
		return as
	}
	big := func(n int) []byte { return bytes.Repeat([]byte{'x'}, n) }
	d := DefaultLimits()
	tests := []struct {
		name  string
		lim   Limits
		msg   Message
		fails bool
	}{
		{"message at the limit", Limits{MaxMessageSize: 12}, Message{Key: big(10)}, false},
		{"message over the limit", Limits{MaxMessageSize: 11}, Message{Key: big(10)}, true},
		{"closer peers at the limit", Limits{MaxPeers: 3}, Message{CloserPeers: repeat(3, peer())}, false},
		{"closer peers over the limit", Limits{MaxPeers: 3}, Message{CloserPeers: repeat(4, peer())}, true},
		{"provider peers over the limit", Limits{MaxPeers: 3}, Message{ProviderPeers: repeat(4, peer())}, true},
		{"lists counted apart", Limits{MaxPeers: 3}, Message{CloserPeers: repeat(3, peer()), ProviderPeers: repeat(3, peer())}, false},
		{"default peer limit", Limits{}, Message{CloserPeers: repeat(DefaultMaxPeers+1, Peer{})}, true},
		{"addrs at the limit", Limits{MaxAddrs: 2}, Message{CloserPeers: []Peer{peer(addrs(2)...)}}, false},
		{"addrs over the limit", Limits{MaxAddrs: 2}, Message{ProviderPeers: []Peer{peer(addrs(3)...)}}, true},
		{"default addr limit", Limits{}, Message{CloserPeers: []Peer{peer(addrs(d.MaxAddrs + 1)...)}}, true},
		{"addr at its length limit", Limits{MaxAddrLen: 5}, Message{CloserPeers: []Peer{peer(big(5))}}, false},
		{"addr over its length limit", Limits{MaxAddrLen: 5}, Message{CloserPeers: []Peer{peer(big(6))}}, true},
		{"default addr length", Limits{}, Message{CloserPeers: []Peer{peer(big(DefaultMaxAddrLen + 1))}}, true},
		{"key at the limit", Limits{MaxKeySize: 4}, Message{Key: big(4)}, false},
		{"key over the limit", Limits{MaxKeySize: 4}, Message{Key: big(5)}, true},
		{"default key limit", Limits{}, Message{Key: big(DefaultMaxKeySize + 1)}, true},
		{"record key over the limit", Limits{MaxKeySize: 4}, Message{Record: &Record{Key: big(5)}}, true},
		{"timeReceived over the key limit", Limits{MaxKeySize: 4}, Message{Record: &Record{TimeReceived: "12345"}}, true},
		{"peer id over the key limit", Limits{MaxKeySize: 4}, Message{ProviderPeers: []Peer{{ID: big(5)}}}, true},
		{"value at the limit", Limits{MaxValueSize: 8}, Message{Record: &Record{Value: big(8)}}, false},
		{"value over the limit", Limits{MaxValueSize: 8}, Message{Record: &Record{Value: big(9)}}, true},
		{"default value limit", Limits{}, Message{Record: &Record{Value: big(DefaultMaxValueSize + 1)}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.msg.Append(nil)
			_, err := DecodeMessage(b, tc.lim)
			if tc.fails != (err != nil) {
				t.Fatalf("DecodeMessage: %v, want failure %v", err, tc.fails)
			}
			if err != nil && !errors.Is(err, ErrTooLarge) {
				t.Errorf("%v does not wrap ErrTooLarge", err)
			}
			_, err = ReadMessage(bytes.NewReader(wire.AppendLP(nil, b)), tc.lim)
			if tc.fails != (err != nil) || (err != nil && !errors.Is(err, ErrTooLarge)) {
				t.Errorf("ReadMessage: %v, want failure %v wrapping ErrTooLarge", err, tc.fails)
			}
		})
	}
}

func TestDefaultLimits(t *testing.T) {
	want := Limits{MaxMessageSize: 4 << 20, MaxPeers: 4096, MaxAddrs: 256, MaxAddrLen: 1024, MaxKeySize: 1024, MaxValueSize: 64 << 10}
	if d := DefaultLimits(); d != want {
		t.Errorf("DefaultLimits() = %+v", d)
	}
	if d := (Limits{MaxPeers: 7, MaxAddrs: -1}).withDefaults(); d.MaxPeers != 7 || d.MaxAddrs != DefaultMaxAddrs || d.MaxMessageSize != MaxMessageSize {
		t.Errorf("withDefaults = %+v", d)
	}
}

// TestDecodeAllocs checks that a message of many empty peers over the
// limit fails without allocating the list.
func TestDecodeAllocs(t *testing.T) {
	b := bytes.Repeat([]byte{0x42, 0x00}, 1<<16) // 65536 empty closer peers
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := decodeMessage(b, Limits{MaxPeers: 10}.withDefaults()); !errors.Is(err, ErrTooLarge) {
			t.Fatal(err)
		}
	})
	if allocs > 10 {
		t.Errorf("%v allocations for a refused message", allocs)
	}
}

func TestFraming(t *testing.T) {
	t.Run("wire bytes", func(t *testing.T) {
		var buf bytes.Buffer
		if err := WriteMessage(&buf, &Message{Type: FindNode, Key: []byte("abc")}); err != nil {
			t.Fatal(err)
		}
		if want := unhex(t, "07 0804 1203616263"); !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("got %x, want %x", buf.Bytes(), want)
		}
		buf.Reset()
		if err := WriteMessage(&buf, nil); err != nil || !bytes.Equal(buf.Bytes(), []byte{0}) {
			t.Errorf("nil message: %x, %v; want 00", buf.Bytes(), err)
		}
	})
	t.Run("zero-length message", func(t *testing.T) {
		m, err := ReadMessage(bytes.NewReader([]byte{0}), Limits{})
		if err != nil || !reflect.DeepEqual(m, &Message{}) {
			t.Errorf("got %+v, %v", m, err)
		}
	})
	t.Run("prefix over the limit refused before the body", func(t *testing.T) {
		// 4 MiB + 1 declared, no body sent: refused without reading on.
		r := bytes.NewReader(wire.AppendUvarint(nil, MaxMessageSize+1))
		_, err := ReadMessage(r, Limits{})
		if !errors.Is(err, ErrTooLarge) || !errors.Is(err, wire.ErrMessageTooLarge) {
			t.Errorf("got %v", err)
		}
		_, err = ReadMessage(bytes.NewReader([]byte{0x05, 1, 2, 3, 4, 5}), Limits{MaxMessageSize: 4})
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("custom limit: %v", err)
		}
	})
	t.Run("at the default limit", func(t *testing.T) {
		m := &Message{Record: &Record{Value: make([]byte, MaxMessageSize-10)}}
		if m.Size() != MaxMessageSize {
			t.Fatalf("Size = %d", m.Size())
		}
		var buf bytes.Buffer
		if err := WriteMessage(&buf, m); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadMessage(&buf, Limits{MaxValueSize: MaxMessageSize}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("truncated body", func(t *testing.T) {
		_, err := ReadMessage(bytes.NewReader(unhex(t, "07 0804 12036162")), Limits{})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("truncated prefix", func(t *testing.T) {
		_, err := ReadMessage(bytes.NewReader([]byte{0x80}), Limits{})
		if err == nil || err == io.EOF {
			t.Errorf("got %v", err)
		}
	})
	t.Run("non-minimal prefix", func(t *testing.T) {
		_, err := ReadMessage(bytes.NewReader([]byte{0x82, 0x00, 0x08, 0x04}), Limits{})
		if !errors.Is(err, wire.ErrVarintNotMinimal) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("malformed body", func(t *testing.T) {
		_, err := ReadMessage(bytes.NewReader([]byte{0x01, 0x08}), Limits{})
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("write refuses an oversized message", func(t *testing.T) {
		var buf bytes.Buffer
		err := WriteMessage(&buf, &Message{Record: &Record{Value: make([]byte, MaxMessageSize)}})
		if !errors.Is(err, ErrTooLarge) || buf.Len() != 0 {
			t.Errorf("got %v, %d bytes written", err, buf.Len())
		}
	})
}

func TestStrings(t *testing.T) {
	for v, want := range map[MessageType]string{PutValue: "PUT_VALUE", GetValue: "GET_VALUE", AddProvider: "ADD_PROVIDER",
		GetProviders: "GET_PROVIDERS", FindNode: "FIND_NODE", Ping: "PING", 9: "MessageType(9)"} {
		if v.String() != want {
			t.Errorf("%d: %q", v, v.String())
		}
	}
	for v, want := range map[ConnectionType]string{NotConnected: "NOT_CONNECTED", Connected: "CONNECTED",
		CanConnect: "CAN_CONNECT", CannotConnect: "CANNOT_CONNECT", -1: "ConnectionType(-1)"} {
		if v.String() != want {
			t.Errorf("%d: %q", v, v.String())
		}
	}
}
