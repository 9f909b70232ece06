package identify

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/mote-p2p/mote/wire"
	"github.com/mote-p2p/mote/wire/pb"
)

// sampleMessage is a message shaped like a Kubo node's.
func sampleMessage() *Message {
	m := &Message{
		PublicKey:        mustHex("080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"),
		ObservedAddr:     mustHex("04c6336401060fa1"),
		ProtocolVersion:  "ipfs/0.1.0",
		AgentVersion:     "kubo/0.43.0/desktop",
		SignedPeerRecord: bytes.Repeat([]byte{0xee}, 300),
	}
	for i := range 8 {
		m.ListenAddrs = append(m.ListenAddrs, []byte{0x04, 192, 0, 2, byte(i), 0x06, 0x0f, 0xa1})
	}
	for _, p := range []string{
		"/ipfs/bitswap", "/ipfs/bitswap/1.0.0", "/ipfs/bitswap/1.1.0", "/ipfs/bitswap/1.2.0",
		"/ipfs/id/1.0.0", "/ipfs/id/push/1.0.0", "/ipfs/kad/1.0.0", "/ipfs/lan/kad/1.0.0",
		"/ipfs/ping/1.0.0", "/libp2p/autonat/1.0.0", "/libp2p/autonat/2/dial-back",
		"/libp2p/autonat/2/dial-request", "/libp2p/circuit/relay/0.2.0/hop",
		"/libp2p/circuit/relay/0.2.0/stop", "/libp2p/dcutr",
	} {
		m.Protocols = append(m.Protocols, p)
	}
	return m
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// equalMessages compares messages treating nil and empty byte slices as
// equal where presence cannot matter (repeated entries).
func equalMessages(a, b *Message) bool {
	if (a.PublicKey == nil) != (b.PublicKey == nil) || !bytes.Equal(a.PublicKey, b.PublicKey) {
		return false
	}
	if (a.ObservedAddr == nil) != (b.ObservedAddr == nil) || !bytes.Equal(a.ObservedAddr, b.ObservedAddr) {
		return false
	}
	if (a.SignedPeerRecord == nil) != (b.SignedPeerRecord == nil) || !bytes.Equal(a.SignedPeerRecord, b.SignedPeerRecord) {
		return false
	}
	if len(a.ListenAddrs) != len(b.ListenAddrs) || len(a.Protocols) != len(b.Protocols) {
		return false
	}
	for i := range a.ListenAddrs {
		if !bytes.Equal(a.ListenAddrs[i], b.ListenAddrs[i]) {
			return false
		}
	}
	return reflect.DeepEqual(append([]string{}, a.Protocols...), append([]string{}, b.Protocols...)) &&
		a.ProtocolVersion == b.ProtocolVersion && a.AgentVersion == b.AgentVersion
}

func TestMessageRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    *Message
	}{
		{"empty", &Message{}},
		{"sample", sampleMessage()},
		{"present but empty bytes", &Message{PublicKey: []byte{}, ObservedAddr: []byte{}, SignedPeerRecord: []byte{}}},
		{"empty repeated entries", &Message{ListenAddrs: [][]byte{{}, {1}}, Protocols: []string{"", "a"}}},
		{"long field", &Message{AgentVersion: strings.Repeat("x", 300)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.m.Append(nil)
			if len(b) != tc.m.size() {
				t.Fatalf("size() = %d, encoded %d bytes", tc.m.size(), len(b))
			}
			got, err := DecodeMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			if !equalMessages(got, tc.m) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tc.m)
			}
			if again := got.Append(nil); !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs:\n%x\n%x", again, b)
			}
		})
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	b := sampleMessage().Append(nil)
	m, err := DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(m.PublicKey)
	for i := range b {
		b[i] = 0
	}
	if !bytes.Equal(m.PublicKey, want) {
		t.Fatal("decoded message changed when the input buffer was overwritten")
	}
}

func TestAppendKeepsPrefix(t *testing.T) {
	m := &Message{AgentVersion: "a"}
	got := m.Append([]byte{0xff})
	if want := []byte{0xff, 0x32, 0x01, 'a'}; !bytes.Equal(got, want) {
		t.Fatalf("Append = %x, want %x", got, want)
	}
	var nilMsg *Message
	if got := nilMsg.Append([]byte{1}); !bytes.Equal(got, []byte{1}) {
		t.Fatalf("nil Append = %x", got)
	}
}

func TestDecodeSkipsUnknownFields(t *testing.T) {
	known := (&Message{AgentVersion: "x", Protocols: []string{"/p"}}).Append(nil)
	tests := []struct {
		name  string
		extra string // hex, appended before the known fields
	}{
		{"field 7 varint", "38 96 01"},
		{"field 7 bytes", "3a 03 616263"},
		{"fixed64", "49 0102030405060708"},
		{"fixed32", "4d 01020304"},
		{"big field number bytes", "a2 06 02 0000"}, // field 100
		{"group with nested fields", "5b 08 01 62 01 00 5c"},
		{"known field as varint", "08 05"},           // publicKey sent with wire type 0
		{"known repeated as fixed32", "15 01020304"}, // listenAddrs with wire type 5
		{"max field number", "fa ff ff ff 0f 00"},
		{"non-minimal varint key", "b8 80 00 01"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := append(mustHex(tc.extra), known...)
			m, err := DecodeMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			want := &Message{AgentVersion: "x", Protocols: []string{"/p"}}
			if !equalMessages(m, want) {
				t.Fatalf("got %+v, want %+v", m, want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	deep := strings.Repeat("0b", maxGroupDepth+1) + strings.Repeat("0c", maxGroupDepth+1)
	tests := []struct {
		name string
		in   string
	}{
		{"truncated key", "80"},
		{"truncated length", "0a"},
		{"length beyond end", "0a 05 0102"},
		{"huge length", "0a ffffffffffffffff7f"},
		{"overlong varint", "08 ffffffffffffffffff02"},
		{"field zero", "02 00"},
		{"field number too big", "82 80 80 80 10 00"},
		{"wire type 6", "0e"},
		{"wire type 7", "0f"},
		{"end group at top", "0c"},
		{"unterminated group", "0b 08 01"},
		{"mismatched group end", "0b 14"},
		{"groups too deep", deep},
		{"truncated fixed64", "09 0102"},
		{"truncated fixed32", "0d 01"},
		{"truncated varint value", "08 80"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeMessage(mustHex(tc.in))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestDecodeCapsRepeatedFields(t *testing.T) {
	var b []byte
	for i := range MaxProtocols + 100 {
		b = pb.AppendString(b, fieldProtocols, fmt.Sprintf("/p/%d", i))
	}
	for range MaxAddrs + 100 {
		b = pb.AppendBytes(b, fieldListenAddrs, mustHex("04c0000201060fa1"))
	}
	b = pb.AppendString(b, fieldAgentVersion, "after the caps")
	m, err := DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Protocols) != MaxProtocols || len(m.ListenAddrs) != MaxAddrs {
		t.Fatalf("kept %d protocols, %d addrs; want %d, %d", len(m.Protocols), len(m.ListenAddrs), MaxProtocols, MaxAddrs)
	}
	if m.Protocols[MaxProtocols-1] != fmt.Sprintf("/p/%d", MaxProtocols-1) {
		t.Fatalf("last kept protocol %q: not the first N", m.Protocols[MaxProtocols-1])
	}
	if m.AgentVersion != "after the caps" {
		t.Fatal("fields after the capped ones were not decoded")
	}
}

func TestMerge(t *testing.T) {
	a := &Message{
		PublicKey: []byte{1}, ListenAddrs: [][]byte{{1}}, Protocols: []string{"/a"},
		ObservedAddr: []byte{1}, ProtocolVersion: "pv1", AgentVersion: "av1", SignedPeerRecord: []byte{1},
	}
	tests := []struct {
		name string
		o    *Message
		want *Message
	}{
		{"nil", nil, a},
		{"empty keeps everything", &Message{}, a},
		{"scalars override, repeated append", &Message{
			PublicKey: []byte{2}, ListenAddrs: [][]byte{{2}}, Protocols: []string{"/b"},
			ObservedAddr: []byte{2}, ProtocolVersion: "pv2", AgentVersion: "av2", SignedPeerRecord: []byte{2},
		}, &Message{
			PublicKey: []byte{2}, ListenAddrs: [][]byte{{1}, {2}}, Protocols: []string{"/a", "/b"},
			ObservedAddr: []byte{2}, ProtocolVersion: "pv2", AgentVersion: "av2", SignedPeerRecord: []byte{2},
		}},
		{"present empty bytes override", &Message{PublicKey: []byte{}}, &Message{
			PublicKey: []byte{}, ListenAddrs: [][]byte{{1}}, Protocols: []string{"/a"},
			ObservedAddr: []byte{1}, ProtocolVersion: "pv1", AgentVersion: "av1", SignedPeerRecord: []byte{1},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := *a
			m.ListenAddrs = append([][]byte(nil), a.ListenAddrs...)
			m.Protocols = append([]string(nil), a.Protocols...)
			m.Merge(tc.o)
			if !equalMessages(&m, tc.want) {
				t.Fatalf("got %+v, want %+v", m, tc.want)
			}
		})
	}
}

func TestMergeCaps(t *testing.T) {
	m := &Message{Protocols: make([]string, MaxProtocols-1), ListenAddrs: make([][]byte, MaxAddrs)}
	m.Merge(&Message{Protocols: []string{"/x", "/y"}, ListenAddrs: [][]byte{{1}}})
	if len(m.Protocols) != MaxProtocols || m.Protocols[MaxProtocols-1] != "/x" || len(m.ListenAddrs) != MaxAddrs {
		t.Fatalf("after merge: %d protocols (last %q), %d addrs", len(m.Protocols), m.Protocols[len(m.Protocols)-1], len(m.ListenAddrs))
	}
	var nilMsg *Message
	nilMsg.Merge(m) // must not panic
}

// frames splits an LP-framed byte stream into message bodies.
func frames(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	r := bytes.NewReader(b)
	for {
		f, err := wire.ReadLP(r, 1<<20)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
}

func TestWriteMessageSplit(t *testing.T) {
	small := sampleMessage()
	big := sampleMessage()
	big.SignedPeerRecord = bytes.Repeat([]byte{0xee}, 2000)
	noRecord := sampleMessage()
	noRecord.SignedPeerRecord = nil
	noRecord.AgentVersion = strings.Repeat("a", 3000)

	tests := []struct {
		name       string
		m          *Message
		wantFrames int
	}{
		{"small with record", small, 1},
		{"big with record", big, 2},
		{"big without record", noRecord, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteMessage(&buf, tc.m); err != nil {
				t.Fatal(err)
			}
			fs := frames(t, buf.Bytes())
			if len(fs) != tc.wantFrames {
				t.Fatalf("%d frames, want %d", len(fs), tc.wantFrames)
			}
			if tc.wantFrames == 2 {
				base := *tc.m
				base.SignedPeerRecord = nil
				if !bytes.Equal(fs[0], base.Append(nil)) {
					t.Error("first frame is not the message without field 8")
				}
				if !bytes.Equal(fs[1], (&Message{SignedPeerRecord: tc.m.SignedPeerRecord}).Append(nil)) {
					t.Error("second frame is not field 8 alone")
				}
			}
			got, err := ReadMessage(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if !equalMessages(got, tc.m) {
				t.Fatal("merged frames differ from the message written")
			}
		})
	}
}

func TestWriteMessageTrimsOwnAddrs(t *testing.T) {
	m := &Message{AgentVersion: "x", SignedPeerRecord: bytes.Repeat([]byte{1}, 3000)}
	for i := range 1200 {
		m.ListenAddrs = append(m.ListenAddrs, []byte{0x04, 10, 0, byte(i >> 8), byte(i), 0x06, 0x0f, 0xa1})
	}
	before := len(m.ListenAddrs)
	var buf bytes.Buffer
	if err := WriteMessage(&buf, m); err != nil {
		t.Fatal(err)
	}
	if len(m.ListenAddrs) != before {
		t.Fatal("WriteMessage modified its argument")
	}
	fs := frames(t, buf.Bytes())
	if len(fs) != 2 {
		t.Fatalf("%d frames, want 2", len(fs))
	}
	for i, f := range fs {
		if len(f) > MaxMessageSize {
			t.Errorf("frame %d is %d bytes, over the limit", i, len(f))
		}
	}
	got, err := ReadMessage(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.ListenAddrs); n == 0 || n >= before || !bytes.Equal(got.ListenAddrs[n-1], m.ListenAddrs[n-1]) {
		t.Fatalf("kept %d addresses; want a non-empty prefix of %d", n, before)
	}
}

func TestWriteMessageTooBig(t *testing.T) {
	tests := []struct {
		name string
		m    *Message
	}{
		{"protocols alone too big", &Message{Protocols: []string{strings.Repeat("p", MaxMessageSize)}}},
		{"record alone too big", &Message{AgentVersion: "x", SignedPeerRecord: make([]byte, MaxMessageSize)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteMessage(&buf, tc.m); err == nil {
				t.Fatal("no error")
			}
			if buf.Len() != 0 {
				t.Fatalf("wrote %d bytes despite the error", buf.Len())
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestWriteMessageWriteError(t *testing.T) {
	if err := WriteMessage(failWriter{}, sampleMessage()); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("err = %v", err)
	}
}

func TestReadMessage(t *testing.T) {
	part := func(m *Message) []byte { return wire.AppendLP(nil, m.Append(nil)) }
	repeat := func(n int) []byte {
		var b []byte
		for i := range n {
			b = append(b, part(&Message{Protocols: []string{fmt.Sprint(i)}})...)
		}
		return b
	}
	tooBig := wire.AppendLP(nil, pb.AppendBytes(nil, 9, make([]byte, MaxMessageSize)))
	tests := []struct {
		name      string
		in        []byte
		wantErr   error // nil: success
		wantProto int
	}{
		{"one", part(&Message{Protocols: []string{"/a"}}), nil, 1},
		{"empty message", []byte{0}, nil, 0},
		{"max messages", repeat(MaxMessages), nil, MaxMessages},
		{"too many messages", repeat(MaxMessages + 1), ErrTooManyMessages, 0},
		{"nothing", nil, io.ErrUnexpectedEOF, 0},
		{"message too large", tooBig, wire.ErrMessageTooLarge, 0},
		{"too large after a good one", append(part(&Message{}), tooBig...), wire.ErrMessageTooLarge, 0},
		{"truncated body", []byte{5, 0x1a, 1}, io.ErrUnexpectedEOF, 0},
		{"truncated prefix", append(part(&Message{}), 0x80), io.ErrUnexpectedEOF, 0},
		{"malformed body", []byte{1, 0x0f}, ErrMalformed, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ReadMessage(bytes.NewReader(tc.in))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Protocols) != tc.wantProto {
				t.Fatalf("%d protocols, want %d", len(m.Protocols), tc.wantProto)
			}
		})
	}
}

func BenchmarkMessageAppend(b *testing.B) {
	m := sampleMessage()
	buf := make([]byte, 0, m.size())
	b.ReportAllocs()
	b.SetBytes(int64(m.size()))
	for b.Loop() {
		buf = m.Append(buf[:0])
	}
}

func BenchmarkMessageDecode(b *testing.B) {
	enc := sampleMessage().Append(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := DecodeMessage(enc); err != nil {
			b.Fatal(err)
		}
	}
}
