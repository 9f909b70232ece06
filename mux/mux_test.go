package mux

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mote-p2p/mote/internal/testconn"
)

// links are the connections sessions are tested over.
var links = []struct {
	name string
	pair func(t testing.TB) (net.Conn, net.Conn)
}{
	{"tcp", tcpPair},
	{"pipe", func(testing.TB) (net.Conn, net.Conn) { a, b := newPipe(); return a, b }},
	{"split", splitPair},
}

// tcpPair returns both ends of a loopback TCP connection (dialer first).
var tcpPair = testconn.TCPPair

// forLinks runs f as a subtest per link.
func forLinks(t *testing.T, f func(t *testing.T, pair func(testing.TB) (net.Conn, net.Conn))) {
	for _, l := range links {
		t.Run(l.name, func(t *testing.T) { f(t, l.pair) })
	}
}

func sessions(t *testing.T, cfg Config) (*Session, *Session) {
	t.Helper()
	return sessionsWith(t, cfg, cfg)
}

func sessionsWith(t *testing.T, ccfg, scfg Config) (*Session, *Session) {
	t.Helper()
	return sessionsOver(t, tcpPair, ccfg, scfg)
}

func sessionsOver(t testing.TB, pair func(testing.TB) (net.Conn, net.Conn), ccfg, scfg Config) (*Session, *Session) {
	t.Helper()
	dc, lc := pair(t)
	client, err := Client(dc, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	server, err := Server(lc, scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
		<-client.Done()
		<-server.Done()
	})
	return client, server
}

func waitDone(t *testing.T, s *Session) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end")
	}
}

// TestTransferBeyondWindow moves more than several windows' worth through
// one stream, so window updates must flow.
func TestTransferBeyondWindow(t *testing.T) {
	forLinks(t, func(t *testing.T, pair func(testing.TB) (net.Conn, net.Conn)) {
		for _, window := range []uint32{0, InitialWindow, 4 << 20} {
			client, server := sessionsOver(t, pair, Config{MaxStreamWindow: window}, Config{MaxStreamWindow: window})
			data := make([]byte, 3<<20)
			rand.Read(data)
			s, err := client.OpenStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				s.Write(data)
				s.CloseWrite()
			}()
			r, err := server.AcceptStream()
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("window %d: got %d bytes, %v", window, len(got), err)
			}
			r.Close()
			s.Close()
		}
	})
}

// TestManyStreams runs concurrent streams that echo data both ways, with
// reads and writes in small and large pieces.
func TestManyStreams(t *testing.T) {
	forLinks(t, func(t *testing.T, pair func(testing.TB) (net.Conn, net.Conn)) {
		const streams, size = 40, 300 << 10
		client, server := sessionsOver(t, pair, Config{}, Config{})
		var wg sync.WaitGroup
		// The server echoes every stream, from both sides' openings.
		echo := func(s *Stream) {
			defer wg.Done()
			if _, err := io.Copy(s, s); err != nil {
				t.Errorf("echo: %v", err)
			}
			s.Close()
		}
		server.SetStreamHandler(func(s *Stream) { wg.Add(1); go echo(s) })
		client.SetStreamHandler(func(s *Stream) { wg.Add(1); go echo(s) })
		errs := make(chan error, 2*streams)
		for i := range 2 * streams {
			opener := client
			if i%2 == 1 {
				opener = server
			}
			go func() { errs <- roundTrip(opener, size, 512+i*7919%(70<<10)) }()
		}
		for range 2 * streams {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
		for _, s := range []*Session{client, server} {
			if n := s.NumStreams(); n != 0 {
				t.Errorf("%d streams left open", n)
			}
		}
	})
}

// roundTrip sends size random bytes on a new stream in pieces of chunk
// bytes and checks the echo.
func roundTrip(s *Session, size, chunk int) error {
	st, err := s.OpenStream(context.Background())
	if err != nil {
		return err
	}
	data := make([]byte, size)
	rand.Read(data)
	werr := make(chan error, 1)
	go func() {
		for b := data; len(b) > 0; {
			n := min(chunk, len(b))
			if _, err := st.Write(b[:n]); err != nil {
				werr <- err
				return
			}
			b = b[n:]
		}
		werr <- st.CloseWrite()
	}()
	got, err := io.ReadAll(st)
	if err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("echo differs: %d bytes, want %d", len(got), len(data))
	}
	return st.Close()
}

func TestHalfClose(t *testing.T) {
	forLinks(t, func(t *testing.T, pair func(testing.TB) (net.Conn, net.Conn)) {
		client, server := sessionsOver(t, pair, Config{}, Config{})
		s, err := client.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("request"))
		s.CloseWrite()
		if _, err := s.Write([]byte("x")); !errors.Is(err, ErrStreamClosed) {
			t.Fatalf("write after CloseWrite: %v", err)
		}
		r, err := server.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != "request" {
			t.Fatalf("server read %q, %v", got, err)
		}
		// The server can still answer after the client's FIN.
		if _, err := r.Write([]byte("response")); err != nil {
			t.Fatal(err)
		}
		r.Close()
		if n := server.NumStreams(); n != 0 {
			t.Errorf("server: %d streams after both sides closed", n)
		}
		got, err = io.ReadAll(s)
		if err != nil || string(got) != "response" {
			t.Fatalf("client read %q, %v", got, err)
		}
		if n := client.NumStreams(); n != 0 {
			t.Errorf("client: %d streams after both sides closed", n)
		}
		s.Close()
	})
}

// TestCloseStopsReading: after Close, the peer's data is dropped and our
// reads fail, but the peer can still finish.
func TestCloseStopsReading(t *testing.T) {
	client, server := sessions(t, Config{KeepAlive: -1})
	s, _ := client.OpenStream(context.Background())
	s.Write([]byte("hi"))
	r, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	if _, err := io.ReadAll(s); err != nil {
		t.Fatalf("peer reads to EOF: %v", err)
	}
	// The peer writes into the void, then closes: the stream is freed.
	if _, err := s.Write(make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := client.Ping(); err != nil { // the FIN has been processed
		t.Fatal(err)
	}
	if n := server.NumStreams(); n != 0 {
		t.Errorf("server: %d streams", n)
	}
}

func TestResetBothWays(t *testing.T) {
	forLinks(t, func(t *testing.T, pair func(testing.TB) (net.Conn, net.Conn)) {
		client, server := sessionsOver(t, pair, Config{}, Config{})
		for _, resetter := range []string{"opener", "acceptor"} {
			s, err := client.OpenStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			s.Write([]byte{1})
			r, err := server.AcceptStream()
			if err != nil {
				t.Fatal(err)
			}
			local, remote := s, r
			if resetter == "acceptor" {
				local, remote = r, s
			}
			// A read blocked on the remote side is woken by the RST.
			done := make(chan error, 1)
			go func() {
				_, err := io.ReadAll(remote)
				done <- err
			}()
			if err := local.ResetWithError(0x1001); err != nil {
				t.Fatal(err)
			}
			var se *StreamError
			err = <-done
			if !errors.Is(err, ErrReset) || !errors.As(err, &se) || !se.Remote || se.Code != 0x1001 {
				t.Fatalf("%s reset: peer read %v", resetter, err)
			}
			if _, err := remote.Write([]byte{1}); !errors.Is(err, ErrReset) {
				t.Fatalf("%s reset: peer write %v", resetter, err)
			}
			if _, err := local.Read(make([]byte, 1)); !errors.As(err, &se) || se.Remote {
				t.Fatalf("%s reset: own read %v", resetter, err)
			}
			if _, err := local.Write([]byte{1}); !errors.Is(err, ErrReset) {
				t.Fatalf("%s reset: own write %v", resetter, err)
			}
		}
		if _, err := client.Ping(); err != nil {
			t.Fatal(err)
		}
		if a, b := client.NumStreams(), server.NumStreams(); a != 0 || b != 0 {
			t.Errorf("streams left: %d, %d", a, b)
		}
	})
}

func TestPingAnswered(t *testing.T) {
	forLinks(t, func(t *testing.T, pair func(testing.TB) (net.Conn, net.Conn)) {
		client, server := sessionsOver(t, pair, Config{KeepAlive: -1}, Config{KeepAlive: -1})
		for _, s := range []*Session{client, server} {
			if rtt, err := s.Ping(); err != nil || rtt <= 0 {
				t.Fatalf("ping: %v, %v", rtt, err)
			}
		}
	})
}

func TestResetUnblocksAndCloseEndsSession(t *testing.T) {
	client, server := sessions(t, Config{})
	s, err := client.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte{1})
	r, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 1))
		_, err = r.Read(make([]byte, 1))
		done <- err
	}()
	r.Reset()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read after reset succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reset did not unblock a read")
	}
	client.Close()
	select {
	case <-server.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("server did not notice the closed session")
	}
	if !server.IsClosed() {
		t.Error("IsClosed false after Done")
	}
}

// TestCloseUnblocksEverything: a session's Close returns every blocked
// call on it and its streams.
func TestCloseUnblocksEverything(t *testing.T) {
	client, server := sessions(t, Config{KeepAlive: -1})
	s, _ := client.OpenStream(context.Background())
	s.Write([]byte{1})
	if _, err := server.AcceptStream(); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	go func() { _, err := s.Read(make([]byte, 1)); errs <- err }()
	go func() { _, err := s.Write(make([]byte, 1<<20)); errs <- err }() // beyond the window
	go func() { _, err := client.AcceptStream(); errs <- err }()
	client.Close()
	for range 3 {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatal("blocked call succeeded")
			}
			if !errors.Is(err, ErrReset) && !errors.Is(err, ErrSessionClosed) {
				t.Errorf("unexpected error %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not unblock a call")
		}
	}
	waitDone(t, client)
	if _, err := client.OpenStream(context.Background()); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("open after close: %v", err)
	}
}

func TestDeadlines(t *testing.T) {
	client, server := sessions(t, Config{KeepAlive: -1})
	s, _ := client.OpenStream(context.Background())
	s.Write([]byte{1})
	r, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	r.Read(make([]byte, 1))

	r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) || !isTimeout(err) {
		t.Fatalf("read past deadline: %v", err)
	}
	r.SetReadDeadline(time.Time{})
	s.Write([]byte{2})
	if b := make([]byte, 1); !readOne(r, b) || b[0] != 2 {
		t.Fatal("read after clearing the deadline failed")
	}

	// A blocked read is woken by a deadline moved into the past, as
	// node's context.AfterFunc does to abort a stream.
	done := make(chan error, 1)
	go func() { _, err := r.Read(make([]byte, 1)); done <- err }()
	r.SetDeadline(time.Unix(1, 0))
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after past deadline: %v", err)
	}

	// Writes block once the peer's window is used up (2 bytes of it were
	// sent above), until the deadline.
	s.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := s.Write(make([]byte, 2*InitialWindow))
	if !errors.Is(err, os.ErrDeadlineExceeded) || n != InitialWindow-2 {
		t.Fatalf("write beyond window: %d, %v", n, err)
	}
}

func readOne(r io.Reader, b []byte) bool {
	n, err := r.Read(b)
	return n == 1 && err == nil
}

func TestAcceptBacklogBounded(t *testing.T) {
	client, _ := sessionsWith(t, Config{}, Config{AcceptBacklog: 2})
	// Nobody accepts on the server: the third stream is refused with a
	// reset, so its read ends instead of hanging.
	var streams []*Stream
	for range 3 {
		s, err := client.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte{1})
		streams = append(streams, s)
	}
	streams[2].SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := streams[2].Read(make([]byte, 1))
	var se *StreamError
	if !errors.As(err, &se) || !se.Remote || se.Code != ResetCodeLimit {
		t.Fatalf("stream beyond the backlog: read err = %v, want a reset", err)
	}
}

func TestMaxStreams(t *testing.T) {
	client, server := sessionsWith(t, Config{}, Config{MaxStreams: 3})
	var mu sync.Mutex
	var accepted []*Stream
	server.SetStreamHandler(func(s *Stream) { mu.Lock(); accepted = append(accepted, s); mu.Unlock() })
	var streams []*Stream
	for range 4 {
		s, err := client.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	if _, err := streams[3].Read(make([]byte, 1)); !errors.Is(err, ErrReset) {
		t.Fatalf("stream beyond MaxStreams: %v", err)
	}
	// Our own opens are bounded too.
	for range 3 {
		if _, err := server.OpenStream(context.Background()); err == nil {
			t.Fatal("open beyond MaxStreams succeeded")
		} else if !errors.Is(err, ErrStreamLimit) {
			t.Fatal(err)
		}
	}
	// Closing one on both sides frees a slot.
	streams[0].Close()
	if _, err := client.Ping(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	a := accepted[0]
	mu.Unlock()
	a.Close()
	s, err := client.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Ping(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := len(accepted)
	mu.Unlock()
	if n != 4 {
		t.Fatalf("%d streams handled, want 4", n)
	}
}

// TestStreamHandler: streams queued before the handler is set are handed
// over, new ones go straight to it, and OnClose follows the last call.
func TestStreamHandler(t *testing.T) {
	client, server := sessions(t, Config{KeepAlive: -1})
	s1, _ := client.OpenStream(context.Background())
	s1.Write([]byte{1})
	if _, err := client.Ping(); err != nil { // s1 is queued on the server
		t.Fatal(err)
	}
	got := make(chan *Stream, 2)
	server.SetStreamHandler(func(s *Stream) { got <- s })
	if s := <-got; s.ID() != s1.ID() {
		t.Fatalf("queued stream %d, want %d", s.ID(), s1.ID())
	}
	s2, _ := client.OpenStream(context.Background())
	if s := <-got; s.ID() != s2.ID() {
		t.Fatalf("new stream %d, want %d", s.ID(), s2.ID())
	}
	closed := make(chan struct{})
	server.OnClose(func() {
		select {
		case <-server.Done():
		default:
			t.Error("OnClose before Done")
		}
		close(closed)
	})
	client.Close()
	<-closed
	ran := false
	server.OnClose(func() { ran = true })
	if !ran {
		t.Error("OnClose after the end did not run at once")
	}
}

func TestRemoteGoAway(t *testing.T) {
	client, server := sessions(t, Config{KeepAlive: -1})
	s, _ := client.OpenStream(context.Background())
	s.Write([]byte("a"))
	r, _ := server.AcceptStream()
	server.writeFrame(&Header{Type: TypeGoAway, Length: GoAwayNormal}, nil, nil)
	if _, err := server.Ping(); err != nil { // the GoAway has been received
		t.Fatal(err)
	}
	if _, err := client.OpenStream(context.Background()); !errors.Is(err, ErrRemoteGoAway) {
		t.Fatalf("open after GoAway: %v", err)
	}
	// Existing streams go on.
	s.Write([]byte("b"))
	s.CloseWrite()
	if got, err := io.ReadAll(r); err != nil || string(got) != "ab" {
		t.Fatalf("read %q, %v", got, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestCloseTimeout: a stream we closed for writing whose peer never
// closes is reset after CloseTimeout and leaves the session, freeing its
// MaxStreams slot; one whose peer closes in time is not reset.
func TestCloseTimeout(t *testing.T) {
	for _, full := range []bool{false, true} {
		t.Run(fmt.Sprintf("close=%v", full), func(t *testing.T) {
			cfg := Config{CloseTimeout: 100 * time.Millisecond, MaxStreams: 1}
			client, server := sessions(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := client.OpenStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			peer, err := server.AcceptStream()
			if err != nil {
				t.Fatal(err)
			}
			if full {
				s.Close()
			} else {
				s.CloseWrite()
			}
			// The peer never closes: after the timeout the stream is
			// reset on both ends and the slot is free again.
			deadline := time.Now().Add(5 * time.Second)
			for client.NumStreams() > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the half-closed stream is still open after %v", time.Since(deadline.Add(-5*time.Second)))
				}
				time.Sleep(10 * time.Millisecond)
			}
			if n := client.CloseTimeouts(); n != 1 {
				t.Errorf("CloseTimeouts = %d, want 1", n)
			}
			// The reset travels behind the data and the FIN: a read may
			// see their EOF before it arrives.
			peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 16)
			for {
				_, err := peer.Read(buf)
				if errors.Is(err, ErrReset) {
					break
				}
				if err != nil && err != io.EOF {
					t.Fatalf("the peer's read after the timeout: %v, want a reset", err)
				}
				if err == io.EOF {
					time.Sleep(5 * time.Millisecond) // polling for the reset
				}
			}
			s2, err := client.OpenStream(ctx)
			if err != nil {
				t.Fatalf("a new stream in the freed slot: %v", err)
			}
			// This one the peer closes in time: no reset.
			s2.CloseWrite()
			p2, err := server.AcceptStream()
			if err != nil {
				t.Fatal(err)
			}
			p2.Close()
			if _, err := io.ReadAll(s2); err != nil {
				t.Fatalf("a stream closed by both: %v", err)
			}
			if n := client.CloseTimeouts(); n != 1 {
				t.Errorf("CloseTimeouts = %d after a stream both closed, want still 1", n)
			}
		})
	}
}
