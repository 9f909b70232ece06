package fuzz

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mote-p2p/mote/mux"
)

// yamuxConn plays the peer of a session: its Read returns the fuzz input,
// then EOF; what the session writes is discarded.
type yamuxConn struct {
	mu     sync.Mutex
	r      *bytes.Reader
	closed bool
}

func (c *yamuxConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.r.Read(b)
}

func (c *yamuxConn) Write(b []byte) (int, error) { return len(b), nil }

func (c *yamuxConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

type yamuxAddr struct{}

func (yamuxAddr) Network() string { return "fuzz" }
func (yamuxAddr) String() string  { return "fuzz" }

func (c *yamuxConn) LocalAddr() net.Addr                { return yamuxAddr{} }
func (c *yamuxConn) RemoteAddr() net.Addr               { return yamuxAddr{} }
func (c *yamuxConn) SetDeadline(t time.Time) error      { return nil }
func (c *yamuxConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *yamuxConn) SetWriteDeadline(t time.Time) error { return nil }

// yamuxFrames concatenates frames for seeds.
func yamuxFrames(frames ...any) []byte {
	var b []byte
	for _, f := range frames {
		switch f := f.(type) {
		case mux.Header:
			b = f.Append(b)
		case []byte:
			b = append(b, f...)
		case string:
			b = append(b, f...)
		}
	}
	return b
}

func FuzzYamuxFrames(f *testing.F) {
	type H = mux.Header
	syn := func(id uint32) H { return H{Type: mux.TypeWindowUpdate, Flags: mux.FlagSYN, StreamID: id} }
	data := func(id uint32, fl mux.Flags, n int) H {
		return H{Type: mux.TypeData, Flags: fl, StreamID: id, Length: uint32(n)}
	}
	for _, seed := range [][]byte{
		{},
		yamuxFrames(syn(1), data(1, 0, 5), "hello", H{Type: mux.TypeWindowUpdate, Flags: mux.FlagFIN, StreamID: 1}),
		yamuxFrames(syn(2), data(2, mux.FlagFIN, 3), "abc"),
		yamuxFrames(data(3, mux.FlagSYN|mux.FlagFIN, 2), "hi", H{Type: mux.TypeWindowUpdate, Flags: mux.FlagRST, StreamID: 3, Length: 0x1001}),
		yamuxFrames(H{Type: mux.TypePing, Flags: mux.FlagSYN, Length: 7}, H{Type: mux.TypePing, Flags: mux.FlagACK, Length: 1}),
		yamuxFrames(H{Type: mux.TypeGoAway, Length: 0}, syn(5)),
		yamuxFrames(H{Type: mux.TypeGoAway, Length: 0x1003}),
		yamuxFrames(syn(1), syn(1)),
		yamuxFrames(syn(1), H{Type: mux.TypeWindowUpdate, StreamID: 1, Length: 1 << 31}, H{Type: mux.TypeWindowUpdate, Flags: mux.FlagACK, StreamID: 1}),
		yamuxFrames(syn(1), data(1, 0, mux.InitialWindow+1)),
		yamuxFrames(data(9, 0, 4), "junk", syn(7), data(7, mux.FlagRST, 1), "x"),
		yamuxFrames(H{Type: mux.TypeWindowUpdate, Flags: mux.FlagACK | mux.FlagFIN, StreamID: 1}, data(2, mux.FlagACK, 0)),
		{0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0},
		{1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0},
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, in []byte, client bool) {
		yamuxHeaderRoundTrip(t, in)

		conn := &yamuxConn{r: bytes.NewReader(in)}
		cfg := mux.Config{KeepAlive: -1, AcceptBacklog: 4, MaxStreams: 8, MaxStreamWindow: 512 << 10}
		var s *mux.Session
		var err error
		if client {
			s, err = mux.Client(conn, cfg)
		} else {
			s, err = mux.Server(conn, cfg)
		}
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		use := func(st *mux.Stream) {
			defer wg.Done()
			st.Write([]byte("reply"))
			io.Copy(io.Discard, st)
			st.Close()
		}
		// Half the inbound streams go through AcceptStream, the rest
		// through the handler; we open one stream ourselves.
		wg.Add(2)
		go func() {
			defer wg.Done()
			if st, err := s.AcceptStream(); err == nil {
				wg.Add(1)
				use(st)
			}
		}()
		go func() {
			defer wg.Done()
			if st, err := s.OpenStream(context.Background()); err == nil {
				wg.Add(1)
				use(st)
			}
		}()
		if len(in)%2 == 1 {
			s.SetStreamHandler(func(st *mux.Stream) { wg.Add(1); go use(st) })
		}
		select {
		case <-s.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("session did not end at the end of its input")
		}
		finished := make(chan struct{})
		go func() { wg.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Fatal("stream calls hang after the session ended")
		}
	})
}

// yamuxHeaderRoundTrip checks that a decodable header re-encodes to the
// same bytes, and that any header with a known type survives encoding.
func yamuxHeaderRoundTrip(t *testing.T, in []byte) {
	h, err := mux.ParseHeader(in)
	if len(in) < mux.HeaderSize {
		if err == nil {
			t.Fatalf("parsed a %d-byte header", len(in))
		}
		return
	}
	if err == nil {
		if enc := h.Append(nil); !bytes.Equal(enc, in[:mux.HeaderSize]) {
			t.Fatalf("header %x decoded to %v, encodes to %x", in[:mux.HeaderSize], h, enc)
		}
	} else if in[0] == 0 && in[1] <= byte(mux.TypeGoAway) {
		t.Fatalf("valid header %x refused: %v", in[:mux.HeaderSize], err)
	}
	want := mux.Header{
		Type:     mux.FrameType(in[1] % 4),
		Flags:    mux.Flags(uint16(in[2])<<8 | uint16(in[3])),
		StreamID: uint32(in[4])<<24 | uint32(in[5])<<16 | uint32(in[6])<<8 | uint32(in[7]),
		Length:   uint32(in[8])<<24 | uint32(in[9])<<16 | uint32(in[10])<<8 | uint32(in[11]),
	}
	if got, err := mux.ParseHeader(want.Append(nil)); err != nil || got != want {
		t.Fatalf("%v round-trips to %v, %v", want, got, err)
	}
}
