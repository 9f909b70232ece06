package mux

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// These tests drive one Session from a hand-written peer that reads and
// writes raw frames, to pin down the wire behaviour go-yamux relies on.

type rawPeer struct {
	t *testing.T
	c net.Conn
}

// newRaw starts a session (a server unless client is set) whose peer is
// the returned rawPeer.
func newRaw(t *testing.T, client bool, cfg Config) (*Session, *rawPeer) {
	t.Helper()
	a, b := newPipe()
	var s *Session
	if client {
		s, _ = Client(a, cfg)
	} else {
		s, _ = Server(a, cfg)
	}
	t.Cleanup(func() { s.Close(); b.Close(); <-s.Done() })
	return s, &rawPeer{t: t, c: b}
}

func (p *rawPeer) send(h Header, payload []byte) {
	p.t.Helper()
	if _, err := p.c.Write(append(h.Append(nil), payload...)); err != nil {
		p.t.Fatalf("raw peer write %v: %v", h, err)
	}
}

// next reads one frame; ok is false at the end of the connection.
func (p *rawPeer) next() (h Header, payload []byte, ok bool) {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [HeaderSize]byte
	if _, err := io.ReadFull(p.c, b[:]); err != nil {
		if err == io.EOF || errors.Is(err, net.ErrClosed) {
			return h, nil, false
		}
		p.t.Fatalf("raw peer read: %v", err)
	}
	h, err := ParseHeader(b[:])
	if err != nil {
		p.t.Fatalf("session sent a bad header: %v", err)
	}
	if h.Type == TypeData {
		payload = make([]byte, h.Length)
		if _, err := io.ReadFull(p.c, payload); err != nil {
			p.t.Fatalf("raw peer read payload: %v", err)
		}
	}
	return h, payload, true
}

// expect reads frames until one satisfies match, answering pings.
func (p *rawPeer) expect(what string, match func(Header) bool) (Header, []byte) {
	p.t.Helper()
	for {
		h, payload, ok := p.next()
		if !ok {
			p.t.Fatalf("connection ended while waiting for %s", what)
		}
		if match(h) {
			return h, payload
		}
		if h.Type == TypePing && h.Flags&FlagSYN != 0 {
			p.send(Header{Type: TypePing, Flags: FlagACK, Length: h.Length}, nil)
		}
	}
}

// expectGoAway reads until a GoAway with code arrives, then the end.
func (p *rawPeer) expectGoAway(code uint32) {
	p.t.Helper()
	h, _ := p.expect("GoAway", func(h Header) bool { return h.Type == TypeGoAway })
	if h.Length != code {
		p.t.Fatalf("GoAway code %d, want %d", h.Length, code)
	}
	if h, _, ok := p.next(); ok {
		p.t.Fatalf("frame after GoAway: %v", h)
	}
}

func TestProtocolErrors(t *testing.T) {
	big := make([]byte, 64<<10)
	for _, tc := range []struct {
		name  string
		frame func(p *rawPeer)
	}{
		{"wrong parity SYN", func(p *rawPeer) {
			p.send(Header{Type: TypeWindowUpdate, Flags: FlagSYN, StreamID: 2}, nil)
		}},
		{"stream 0 SYN", func(p *rawPeer) {
			p.send(Header{Type: TypeData, Flags: FlagSYN}, nil)
		}},
		{"duplicate SYN", func(p *rawPeer) {
			p.send(Header{Type: TypeWindowUpdate, Flags: FlagSYN, StreamID: 1}, nil)
			p.send(Header{Type: TypeWindowUpdate, Flags: FlagSYN, StreamID: 1}, nil)
		}},
		{"unknown frame type", func(p *rawPeer) {
			p.c.Write([]byte{0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0})
		}},
		{"unknown version", func(p *rawPeer) {
			p.c.Write([]byte{1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0})
		}},
		{"data beyond window", func(p *rawPeer) {
			p.send(Header{Type: TypeWindowUpdate, Flags: FlagSYN, StreamID: 1}, nil)
			for range InitialWindow / len(big) {
				p.send(Header{Type: TypeData, StreamID: 1, Length: uint32(len(big))}, big)
			}
			p.send(Header{Type: TypeData, StreamID: 1, Length: 1}, []byte{1})
		}},
		{"data beyond window in the SYN frame", func(p *rawPeer) {
			p.c.Write(Header{Type: TypeData, Flags: FlagSYN, StreamID: 1, Length: InitialWindow + 1}.Append(nil))
		}},
		{"huge data frame on an unknown stream", func(p *rawPeer) {
			p.c.Write(Header{Type: TypeData, StreamID: 9, Length: 1 << 31}.Append(nil))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, p := newRaw(t, false, Config{KeepAlive: -1})
			go tc.frame(p)
			p.expectGoAway(GoAwayProtocolError)
			waitDone(t, s)
			if err := s.Err(); !errors.Is(err, ErrProtocol) || !errors.Is(err, ErrSessionClosed) {
				t.Fatalf("session error %v", err)
			}
		})
	}
}

func TestRemoteGoAwayCode(t *testing.T) {
	s, p := newRaw(t, true, Config{KeepAlive: -1})
	p.send(Header{Type: TypeGoAway, Length: 0x1003}, nil)
	waitDone(t, s)
	var ge *GoAwayError
	if err := s.Err(); !errors.As(err, &ge) || ge.Code != 0x1003 {
		t.Fatalf("session error %v", err)
	}
	// No GoAway is sent back.
	if h, _, ok := p.next(); ok {
		t.Fatalf("frame after the peer's GoAway: %v", h)
	}
}

// TestInboundStreamWire: go opens with WindowUpdate+SYN and expects an
// immediate ACK; data, FIN and RST arrive on either frame type.
func TestInboundStreamWire(t *testing.T) {
	s, p := newRaw(t, false, Config{KeepAlive: -1})
	p.send(Header{Type: TypeWindowUpdate, Flags: FlagSYN, StreamID: 1}, nil)
	// ACKed though nobody accepted it yet.
	h, _ := p.expect("ACK", func(h Header) bool { return h.StreamID == 1 })
	if h != (Header{Type: TypeWindowUpdate, Flags: FlagACK, StreamID: 1}) {
		t.Fatalf("answer to SYN: %v", h)
	}
	// A stream opened by a Data frame, with its payload and FIN.
	p.send(Header{Type: TypeData, Flags: FlagSYN | FlagFIN, StreamID: 3, Length: 5}, []byte("hello"))
	p.expect("ACK 3", func(h Header) bool { return h.StreamID == 3 && h.Flags == FlagACK })

	st1, _ := s.AcceptStream()
	st3, _ := s.AcceptStream()
	if st1.ID() != 1 || st3.ID() != 3 {
		t.Fatalf("accepted %d, %d", st1.ID(), st3.ID())
	}
	if got, err := io.ReadAll(st3); err != nil || string(got) != "hello" {
		t.Fatalf("stream 3: %q, %v", got, err)
	}
	st3.Close()
	p.expect("FIN 3", func(h Header) bool { return h.StreamID == 3 && h.Flags == FlagFIN })

	// A window update carrying the peer's half of the data; the reader
	// consuming half the window triggers an update of exactly that.
	half := bytes.Repeat([]byte{7}, InitialWindow/2)
	p.send(Header{Type: TypeData, StreamID: 1, Length: uint32(len(half))}, half)
	if _, err := io.ReadFull(st1, make([]byte, len(half))); err != nil {
		t.Fatal(err)
	}
	h, _ = p.expect("window update", func(h Header) bool { return h.StreamID == 1 })
	if h != (Header{Type: TypeWindowUpdate, StreamID: 1, Length: InitialWindow / 2}) {
		t.Fatalf("after reading half the window: %v", h)
	}

	// Our writes: Data frames of at most 64 KiB within the window, the
	// window counting from 256 KiB; a WindowUpdate frame grows it.
	go st1.Write(make([]byte, InitialWindow+100))
	total := 0
	for total < InitialWindow {
		h, payload := p.expect("data", func(h Header) bool { return h.StreamID == 1 })
		if h.Type != TypeData || h.Flags != 0 || len(payload) > 64<<10 {
			t.Fatalf("data frame %v", h)
		}
		total += len(payload)
	}
	if total != InitialWindow {
		t.Fatalf("sent %d bytes before a window update, want %d", total, InitialWindow)
	}
	p.send(Header{Type: TypeWindowUpdate, StreamID: 1, Length: 100}, nil)
	if h, payload := p.expect("rest", func(h Header) bool { return h.StreamID == 1 }); len(payload) != 100 {
		t.Fatalf("after the update: %v", h)
	}

	// RST with an error code in a WindowUpdate: the code is not a window.
	p.send(Header{Type: TypeWindowUpdate, Flags: FlagRST, StreamID: 1, Length: 0x1001}, nil)
	var se *StreamError
	if _, err := st1.Read(make([]byte, 1)); !errors.As(err, &se) || se.Code != 0x1001 || !se.Remote {
		t.Fatalf("read after RST: %v", err)
	}
	// Frames for a stream that is gone are ignored, data discarded.
	p.send(Header{Type: TypeData, StreamID: 1, Length: 3}, []byte("abc"))
	p.send(Header{Type: TypePing, Flags: FlagSYN, Length: 77}, nil)
	if h, _ := p.expect("ping answer", func(h Header) bool { return h.Type == TypePing }); h != (Header{Type: TypePing, Flags: FlagACK, Length: 77}) {
		t.Fatalf("ping answer %v", h)
	}
	if s.NumStreams() != 0 {
		t.Fatalf("%d streams open", s.NumStreams())
	}
}

// TestOutboundStreamWire: opening, closing and resetting, as go expects.
func TestOutboundStreamWire(t *testing.T) {
	for _, client := range []bool{true, false} {
		s, p := newRaw(t, client, Config{KeepAlive: -1})
		first := uint32(2)
		if client {
			first = 1
		}
		for i, end := range []string{"close", "closewrite", "reset"} {
			st, err := s.OpenStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			id := first + 2*uint32(i)
			h, _ := p.expect("SYN", func(Header) bool { return true })
			if h != (Header{Type: TypeWindowUpdate, Flags: FlagSYN, StreamID: id}) {
				t.Fatalf("open: %v, want WindowUpdate SYN stream %d", h, id)
			}
			p.send(Header{Type: TypeWindowUpdate, Flags: FlagACK, StreamID: id}, nil)
			switch end {
			case "close":
				st.Close()
				h, _ = p.expect("FIN", func(Header) bool { return true })
				if h != (Header{Type: TypeWindowUpdate, Flags: FlagFIN, StreamID: id}) {
					t.Fatalf("close: %v", h)
				}
				// Data after our Close is dropped; the peer's FIN frees it.
				p.send(Header{Type: TypeData, StreamID: id, Length: 2}, []byte("zz"))
				p.send(Header{Type: TypeWindowUpdate, Flags: FlagFIN, StreamID: id}, nil)
			case "closewrite":
				st.CloseWrite()
				p.expect("FIN", func(h Header) bool { return h.Flags == FlagFIN })
				p.send(Header{Type: TypeData, Flags: FlagFIN, StreamID: id, Length: 2}, []byte("ok"))
				if got, err := io.ReadAll(st); err != nil || string(got) != "ok" {
					t.Fatalf("read after CloseWrite: %q, %v", got, err)
				}
			case "reset":
				st.ResetWithError(0x1004)
				h, _ = p.expect("RST", func(Header) bool { return true })
				if h != (Header{Type: TypeWindowUpdate, Flags: FlagRST, StreamID: id, Length: 0x1004}) {
					t.Fatalf("reset: %v", h)
				}
			}
		}
		p.send(Header{Type: TypePing, Flags: FlagSYN, Length: 1}, nil)
		p.expect("ping answer", func(h Header) bool { return h.Type == TypePing })
		if n := s.NumStreams(); n != 0 {
			t.Fatalf("client=%v: %d streams open", client, n)
		}
	}
}

// TestKeepAlive: pings go out at once and every interval; a peer that
// answers keeps the session, a silent one loses it.
func TestKeepAlive(t *testing.T) {
	cfg := Config{KeepAlive: 20 * time.Millisecond, WriteTimeout: 100 * time.Millisecond}
	t.Run("answered", func(t *testing.T) {
		s, p := newRaw(t, true, cfg)
		for range 5 {
			h, _ := p.expect("ping", func(h Header) bool { return h.Type == TypePing })
			if h.Flags != FlagSYN {
				t.Fatalf("ping %v", h)
			}
			p.send(Header{Type: TypePing, Flags: FlagACK, Length: h.Length}, nil)
		}
		if s.IsClosed() {
			t.Fatalf("session closed: %v", s.Err())
		}
		if s.rtt.Load() <= 0 {
			t.Error("no round-trip time measured")
		}
	})
	t.Run("silent", func(t *testing.T) {
		s, p := newRaw(t, false, cfg)
		h, _, _ := p.next()
		if h.Type != TypePing || h.Flags != FlagSYN {
			t.Fatalf("first frame %v, want a ping", h)
		}
		waitDone(t, s)
		if err := s.Err(); !errors.Is(err, ErrKeepAliveTimeout) {
			t.Fatalf("session error %v", err)
		}
	})
}
