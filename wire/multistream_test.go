package wire_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/mote-p2p/mote/wire"
)

// scripted is a peer whose input is fixed in advance and whose output is
// recorded, for exact transcripts without goroutines.
type scripted struct {
	io.Reader
	io.Writer
}

// recordingConn records each Write made on a connection.
type recordingConn struct {
	net.Conn
	writes chan []byte
}

func (c *recordingConn) Write(b []byte) (int, error) {
	c.writes <- bytes.Clone(b)
	return c.Conn.Write(b)
}

// msgs concatenates multistream messages.
func msgs(lines ...string) []byte {
	var b []byte
	for _, l := range lines {
		b = wire.AppendMessage(b, l)
	}
	return b
}

// result carries a goroutine's outcome back to the test goroutine.
type result struct {
	proto string
	err   error
}

func TestAppendMessageBytes(t *testing.T) {
	tests := []struct {
		line string
		hex  string
	}{
		{"/multistream/1.0.0", "13 2f6d756c746973747265616d2f312e302e30 0a"},
		{"na", "03 6e61 0a"},
		{"ls", "03 6c73 0a"},
		{"/noise", "07 2f6e6f697365 0a"},
		{"/tls/1.0.0", "0b 2f746c732f312e302e30 0a"},
		{"/yamux/1.0.0", "0d 2f79616d75782f312e302e30 0a"},
		{"", "01 0a"},
	}
	for _, tt := range tests {
		if got, want := wire.AppendMessage(nil, tt.line), unhex(t, tt.hex); !bytes.Equal(got, want) {
			t.Errorf("AppendMessage(%q) = %x, want %x", tt.line, got, want)
		}
	}
}

func TestAppendSelectBytes(t *testing.T) {
	// WIRE-FACTS §26: opening an identify stream.
	want := unhex(t, "13 2f6d756c746973747265616d2f312e302e30 0a 0f 2f697066732f69642f312e302e30 0a")
	if got := wire.AppendSelect(nil, "/ipfs/id/1.0.0"); !bytes.Equal(got, want) {
		t.Fatalf("AppendSelect = %x, want %x", got, want)
	}
	if got := wire.AppendSelect(nil, "/tls/1.0.0"); !bytes.HasPrefix(got, []byte("\x13/m")) {
		t.Fatalf("select must start with \\x13/m for Kubo's shared port, got %q", got[:3])
	}
}

func TestReadMessage(t *testing.T) {
	atLimit := strings.Repeat("a", wire.MaxProtocolLen-1)
	tests := []struct {
		name string
		in   []byte
		want string
		err  error
	}{
		{"simple", msgs("/noise"), "/noise", nil},
		{"empty line", []byte{0x01, '\n'}, "", nil},
		{"at limit", msgs(atLimit), atLimit, nil},
		{"over limit", msgs(atLimit + "a"), "", wire.ErrMessageTooLarge},
		{"over limit is a violation", msgs(atLimit + "a"), "", wire.ErrProtocolViolation},
		{"empty message", []byte{0x00}, "", wire.ErrProtocolViolation},
		{"missing newline", []byte("\x03naX"), "", wire.ErrProtocolViolation},
		{"non-minimal length", []byte("\x83\x00na\n"), "", wire.ErrProtocolViolation},
		{"clean EOF", nil, "", io.EOF},
		{"truncated", []byte("\x07/noi"), "", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.ReadMessage(bytes.NewReader(tt.in))
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadMessageStopsAtBoundary(t *testing.T) {
	in := append(msgs("/a", "/b"), "app"...)
	r := plainReader{bytes.NewReader(in)}
	for _, want := range []string{"/a", "/b"} {
		if got, err := wire.ReadMessage(r); err != nil || got != want {
			t.Fatalf("got (%q, %v), want %q", got, err, want)
		}
	}
	if rest, _ := io.ReadAll(r); string(rest) != "app" {
		t.Fatalf("left %q, want %q", rest, "app")
	}
}

func TestReadSelectResponse(t *testing.T) {
	const proto = "/noise"
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"accepted", msgs(wire.ProtocolID, proto), nil},
		{"na", msgs(wire.ProtocolID, "na"), wire.ErrNotSupported},
		{"other answer", msgs(wire.ProtocolID, "/tls/1.0.0"), wire.ErrProtocolViolation},
		{"missing header", msgs(proto), wire.ErrProtocolViolation},
		{"wrong header version", msgs("/multistream/2.0.0", proto), wire.ErrProtocolViolation},
		{"garbage header", []byte("\x0fGET / HTTP/1.1\n"), wire.ErrProtocolViolation},
		{"no answer", msgs(wire.ProtocolID), io.EOF},
		{"truncated answer", append(msgs(wire.ProtocolID), 0x07, '/'), io.ErrUnexpectedEOF},
		{"nothing", nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wire.ReadSelectResponse(plainReader{bytes.NewReader(tt.in)}, proto)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestReadSelectResponseNotSupportedError(t *testing.T) {
	err := wire.ReadSelectResponse(bytes.NewReader(msgs(wire.ProtocolID, "na")), "/tls/1.0.0")
	var nse *wire.NotSupportedError
	if !errors.As(err, &nse) || !slices.Equal(nse.Protocols, []string{"/tls/1.0.0"}) {
		t.Fatalf("err = %#v, want NotSupportedError for /tls/1.0.0", err)
	}
	if !strings.Contains(err.Error(), "does not support /tls/1.0.0") {
		t.Fatalf("unclear message %q", err)
	}
}

func TestInvalidProposals(t *testing.T) {
	for _, p := range []string{"", "na", "ls", "/a\nb", strings.Repeat("x", wire.MaxProtocolLen)} {
		var w writeRecorder
		rw := scripted{bytes.NewReader(msgs(wire.ProtocolID, p)), &w}
		if err := wire.SelectOne(rw, p); err == nil {
			t.Errorf("SelectOne(%q) succeeded", p)
		}
		if _, err := wire.SelectOneOf(rw, []string{"/ok", p}); err == nil {
			t.Errorf("SelectOneOf with %q succeeded", p)
		}
		if len(w.writes) != 0 {
			t.Errorf("proposal %q: wrote %q before validating", p, w.writes)
		}
	}
	if _, err := wire.SelectOneOf(scripted{bytes.NewReader(nil), io.Discard}, nil); err == nil {
		t.Error("SelectOneOf(nil) succeeded")
	}
}

func TestNegotiateTranscripts(t *testing.T) {
	header := msgs(wire.ProtocolID)
	protocols := []string{"/a", "/b"}
	var many []string
	for range wire.MaxProposals {
		many = append(many, "/x")
	}
	tests := []struct {
		name      string
		in        []byte
		protocols []string
		match     func(string) bool
		want      string
		err       error
		out       []byte
	}{
		{
			name: "first accepted", in: msgs(wire.ProtocolID, "/a"), protocols: protocols,
			want: "/a", out: msgs(wire.ProtocolID, "/a"),
		},
		{
			name: "na then accepted", in: msgs(wire.ProtocolID, "/tls/1.0.0", "/b"), protocols: protocols,
			want: "/b", out: msgs(wire.ProtocolID, "na", "/b"),
		},
		{
			name: "ls lists protocols", in: msgs(wire.ProtocolID, "ls", "/a"), protocols: protocols,
			want: "/a", out: append(append(bytes.Clone(header), "\x09\x03/a\n\x03/b\n\n"...), msgs("/a")...),
		},
		{
			name: "ls without list is na", in: msgs(wire.ProtocolID, "ls", "/a"),
			match: func(p string) bool { return p == "/a" },
			want:  "/a", out: msgs(wire.ProtocolID, "na", "/a"),
		},
		{
			name: "match overrides list", in: msgs(wire.ProtocolID, "/a", "/ipfs/ping/1.0.0"), protocols: protocols,
			match: func(p string) bool { return strings.HasPrefix(p, "/ipfs/") },
			want:  "/ipfs/ping/1.0.0", out: msgs(wire.ProtocolID, "na", "/ipfs/ping/1.0.0"),
		},
		{
			name: "reserved and empty never echoed", in: msgs(wire.ProtocolID, "na", "", "/a"),
			match: func(string) bool { return true },
			want:  "/a", out: msgs(wire.ProtocolID, "na", "na", "/a"),
		},
		{
			name: "last allowed proposal", in: msgs(append(append([]string{wire.ProtocolID}, many[1:]...), "/a")...),
			protocols: protocols, want: "/a",
			out: append(msgs(append([]string{wire.ProtocolID}, slices.Repeat([]string{"na"}, wire.MaxProposals-1)...)...), msgs("/a")...),
		},
		{
			name: "too many proposals", in: msgs(append(append([]string{wire.ProtocolID}, many...), "/a")...),
			protocols: protocols, err: wire.ErrProtocolViolation,
			out: msgs(append([]string{wire.ProtocolID}, slices.Repeat([]string{"na"}, wire.MaxProposals)...)...),
		},
		{
			name: "proposal before header", in: msgs("/a"), protocols: protocols,
			err: wire.ErrProtocolViolation, out: header,
		},
		{
			name: "garbage instead of header", in: append([]byte{0x16}, bytes.Repeat([]byte{0x03}, 0x16)...), protocols: protocols,
			err: wire.ErrProtocolViolation, out: header,
		},
		{
			name: "over-long proposal", in: append(bytes.Clone(header), 0x81, 0x08), protocols: protocols,
			err: wire.ErrMessageTooLarge, out: header,
		},
		{
			name: "missing newline", in: append(bytes.Clone(header), "\x02/a"...), protocols: protocols,
			err: wire.ErrProtocolViolation, out: header,
		},
		{
			name: "EOF before header", protocols: protocols, err: io.EOF, out: header,
		},
		{
			name: "EOF after na", in: msgs(wire.ProtocolID, "/z"), protocols: protocols,
			err: io.EOF, out: msgs(wire.ProtocolID, "na"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			got, err := wire.Negotiate(scripted{plainReader{bytes.NewReader(tt.in)}, &out}, tt.protocols, tt.match)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("protocol = %q, want %q", got, tt.want)
			}
			if !bytes.Equal(out.Bytes(), tt.out) {
				t.Fatalf("wrote %q, want %q", out.Bytes(), tt.out)
			}
		})
	}
}

func TestNegotiateLeavesApplicationBytes(t *testing.T) {
	in := append(msgs(wire.ProtocolID, "/a"), "hello"...)
	for _, r := range []io.Reader{bytes.NewReader(in), plainReader{bytes.NewReader(in)}} {
		got, err := wire.Negotiate(scripted{r, io.Discard}, []string{"/a"}, nil)
		if err != nil || got != "/a" {
			t.Fatalf("%T: got (%q, %v)", r, got, err)
		}
		if rest, _ := io.ReadAll(r); string(rest) != "hello" {
			t.Fatalf("%T: application got %q, want %q", r, rest, "hello")
		}
	}
}

// negotiateAsync runs Negotiate on conn in a goroutine; the caller must
// receive from the returned channel to join it.
func negotiateAsync(conn net.Conn, protocols []string) <-chan result {
	done := make(chan result, 1)
	go func() {
		p, err := wire.Negotiate(conn, protocols, nil)
		done <- result{p, err}
	}()
	return done
}

func TestSelectOneOverSocket(t *testing.T) {
	dialer, listener := socketPair(t)
	defer dialer.Close()
	defer listener.Close()
	done := negotiateAsync(listener, []string{"/yamux/1.0.0"})
	if err := wire.SelectOne(dialer, "/yamux/1.0.0"); err != nil {
		t.Fatalf("SelectOne: %v", err)
	}
	if r := <-done; r.err != nil || r.proto != "/yamux/1.0.0" {
		t.Fatalf("Negotiate = (%q, %v)", r.proto, r.err)
	}
}

func TestSelectOneNotSupportedOverSocket(t *testing.T) {
	dialer, listener := socketPair(t)
	defer listener.Close()
	done := negotiateAsync(listener, []string{"/noise"})
	err := wire.SelectOne(dialer, "/tls/1.0.0")
	if !errors.Is(err, wire.ErrNotSupported) {
		t.Fatalf("SelectOne err = %v, want ErrNotSupported", err)
	}
	dialer.Close() // The listener is waiting for another proposal.
	if r := <-done; !errors.Is(r.err, io.EOF) {
		t.Fatalf("Negotiate err = %v, want EOF", r.err)
	}
}

func TestSelectOneOfFallbackOverSocket(t *testing.T) {
	dialerConn, listener := socketPair(t)
	defer listener.Close()
	dialer := &recordingConn{Conn: dialerConn, writes: make(chan []byte, 8)}
	done := negotiateAsync(listener, []string{"/noise"})
	got, err := wire.SelectOneOf(dialer, []string{"/tls/1.0.0", "/noise"})
	if err != nil || got != "/noise" {
		t.Fatalf("SelectOneOf = (%q, %v), want /noise", got, err)
	}
	if r := <-done; r.err != nil || r.proto != "/noise" {
		t.Fatalf("Negotiate = (%q, %v)", r.proto, r.err)
	}
	dialer.Close()
	close(dialer.writes)
	var writes [][]byte
	for w := range dialer.writes {
		writes = append(writes, w)
	}
	want := [][]byte{msgs(wire.ProtocolID, "/tls/1.0.0"), msgs("/noise")}
	if !slices.EqualFunc(writes, want, bytes.Equal) {
		t.Fatalf("dialer writes = %q, want %q (one proposal per write)", writes, want)
	}
}

func TestSelectOneOfNoneSupported(t *testing.T) {
	dialer, listener := socketPair(t)
	done := negotiateAsync(listener, []string{"/yamux/1.0.0"})
	protos := []string{"/tls/1.0.0", "/noise"}
	_, err := wire.SelectOneOf(dialer, protos)
	var nse *wire.NotSupportedError
	if !errors.As(err, &nse) || !slices.Equal(nse.Protocols, protos) || !errors.Is(err, wire.ErrNotSupported) {
		t.Fatalf("err = %v, want NotSupportedError listing %v", err, protos)
	}
	if want := "peer does not support /tls/1.0.0, /noise"; !strings.Contains(err.Error(), want) {
		t.Fatalf("message %q lacks %q", err, want)
	}
	dialer.Close()
	<-done
	listener.Close()
}

func TestSelectOneGarbageHeaderOverSocket(t *testing.T) {
	dialer, listener := socketPair(t)
	defer dialer.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer listener.Close()
		// A non-multistream peer: reads what the dialer sent, answers junk.
		buf := make([]byte, 64)
		_, _ = listener.Read(buf)
		_, _ = listener.Write([]byte("\x05junk\n"))
	}()
	err := wire.SelectOne(dialer, "/noise")
	<-done
	if !errors.Is(err, wire.ErrProtocolViolation) {
		t.Fatalf("err = %v, want ErrProtocolViolation", err)
	}
}

// TestOptimisticSelectOverSocket is the lazy-dialer flow of WIRE-FACTS §6.3:
// header, proposal and first application bytes in one write. The listener's
// handler must find "hello" on the stream after Negotiate returns.
func TestOptimisticSelectOverSocket(t *testing.T) {
	dialer, listener := socketPair(t)
	defer dialer.Close()
	defer listener.Close()
	const proto = "/ipfs/ping/1.0.0"

	wrote := make(chan error, 1)
	go func() {
		_, err := dialer.Write(append(wire.AppendSelect(nil, proto), "hello"...))
		wrote <- err
	}()
	reply := make(chan result, 1)
	go func() {
		if err := wire.ReadSelectResponse(dialer, proto); err != nil {
			reply <- result{err: err}
			return
		}
		buf := make([]byte, 5)
		_, err := io.ReadFull(dialer, buf)
		reply <- result{proto: string(buf), err: err}
	}()

	got, err := wire.Negotiate(listener, []string{proto}, nil)
	if err != nil || got != proto {
		t.Fatalf("Negotiate = (%q, %v)", got, err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(listener, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("handler read (%q, %v), want hello", buf, err)
	}
	if _, err := listener.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("dialer write: %v", err)
	}
	if r := <-reply; r.err != nil || r.proto != "world" {
		t.Fatalf("dialer read (%q, %v), want world", r.proto, r.err)
	}
}

// memConn answers a dialer from a canned response and discards its writes,
// isolating the cost of SelectOne itself.
type memConn struct {
	*bytes.Reader
	io.Writer
}

func BenchmarkSelectOne(b *testing.B) {
	b.ReportAllocs()
	const proto = "/ipfs/id/1.0.0"
	resp := msgs(wire.ProtocolID, proto)
	conn := memConn{bytes.NewReader(resp), io.Discard}
	for range b.N {
		conn.Reset(resp)
		if err := wire.SelectOne(conn, proto); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNegotiate(b *testing.B) {
	b.ReportAllocs()
	protocols := []string{"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"}
	in := msgs(wire.ProtocolID, "/ipfs/ping/1.0.0")
	conn := memConn{bytes.NewReader(in), io.Discard}
	for range b.N {
		conn.Reset(in)
		if _, err := wire.Negotiate(conn, protocols, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// failingWriter fails every write with err.
type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteErrorsAreWrapped(t *testing.T) {
	boom := errors.New("boom")
	fw := failingWriter{boom}
	if err := wire.WriteLP(fw, []byte("x")); !errors.Is(err, boom) {
		t.Errorf("WriteLP err = %v", err)
	}
	_, err := wire.Negotiate(scripted{bytes.NewReader(msgs(wire.ProtocolID, "/a")), fw}, []string{"/a"}, nil)
	if !errors.Is(err, boom) {
		t.Errorf("Negotiate err = %v", err)
	}
	err = wire.SelectOne(scripted{bytes.NewReader(msgs(wire.ProtocolID, "/a")), fw}, "/a")
	if !errors.Is(err, boom) {
		t.Errorf("SelectOne: err = %v", err)
	}
	_, err = wire.SelectOneOf(scripted{bytes.NewReader(msgs(wire.ProtocolID, "na")), fw}, []string{"/a", "/b"})
	if !errors.Is(err, boom) {
		t.Errorf("SelectOneOf err = %v", err)
	}
}

func TestLsResponseFitsLimit(t *testing.T) {
	big := "/" + strings.Repeat("b", 900)
	protocols := []string{"/a", big, big, "/c"}
	var out bytes.Buffer
	in := msgs(wire.ProtocolID, "ls", "/a")
	if _, err := wire.Negotiate(scripted{bytes.NewReader(in), &out}, protocols, nil); err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(out.Bytes())
	if _, err := wire.ReadMessage(r); err != nil {
		t.Fatal(err)
	}
	list, err := wire.ReadMessage(r)
	if err != nil {
		t.Fatalf("ls response unreadable by a conforming peer: %v", err)
	}
	var got []string
	lr := strings.NewReader(list)
	for {
		p, err := wire.ReadMessage(lr)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	if want := []string{"/a", big, "/c"}; !slices.Equal(got, want) {
		t.Fatalf("ls listed %d protocols, want %d", len(got), len(want))
	}
}

// socketPair returns the two ends of a loopback TCP connection: unlike
// net.Pipe it buffers writes, as every transport the dialer runs on does.
func socketPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	l := <-accepted
	if l == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { d.Close(); l.Close() })
	return d, l
}
