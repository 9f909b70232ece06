package quic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/mote-p2p/mote/mux"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure"
	p2ptls "github.com/mote-p2p/mote/secure/tls"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

func newKey(t testing.TB) peer.PrivateKey {
	t.Helper()
	k, err := peer.GenerateEd25519(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTransport(t testing.TB, mod ...func(*Config)) *Transport {
	t.Helper()
	cfg := Config{Key: newKey(t), HandshakeTimeout: 2 * time.Second}
	for _, f := range mod {
		f(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func listen(t testing.TB, tr *Transport, addr string) transport.Listener {
	t.Helper()
	l, err := tr.Listen(ma.StringCast(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// acceptAsync runs one Accept and delivers its result.
func acceptAsync(l transport.Listener) <-chan transport.Conn {
	ch := make(chan transport.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			c = nil
		}
		ch <- c
	}()
	return ch
}

// connect dials l from tr and returns both ends.
func connect(t testing.TB, tr *Transport, l transport.Listener, remote peer.ID) (dialed, accepted transport.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch := acceptAsync(l)
	dialed, err := tr.Dial(ctx, l.Multiaddr(), remote)
	if err != nil {
		t.Fatal(err)
	}
	accepted = <-ch
	if accepted == nil {
		t.Fatal("accept failed")
	}
	return dialed, accepted
}

// haveIPv6Loopback reports whether ::1 can be bound, and why not.
func haveIPv6Loopback() (bool, string) {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		return false, err.Error()
	}
	c.Close()
	return true, ""
}

func TestCanDial(t *testing.T) {
	tr := newTransport(t)
	id := peer.IDFromPublicKey(newKey(t).Public())
	for addr, want := range map[string]bool{
		"/ip4/1.2.3.4/udp/4001/quic-v1":                    true,
		"/ip6/::1/udp/4001/quic-v1":                        true,
		"/ip4/1.2.3.4/udp/4001/quic-v1/p2p/" + id.String(): true,
		"/ip4/1.2.3.4/udp/4001/quic":                       false,
		"/ip4/1.2.3.4/udp/4001":                            false,
		"/ip4/1.2.3.4/tcp/4001":                            false,
		"/dns4/example.com/udp/4001/quic-v1":               false,
		"/ip4/1.2.3.4/udp/4001/quic-v1/webtransport":       false,
		"/ip4/1.2.3.4/udp/4001/quic-v1/p2p-circuit":        false,
	} {
		if got := tr.CanDial(ma.StringCast(addr)); got != want {
			t.Errorf("CanDial(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestDialListen(t *testing.T) {
	for _, host := range []string{"/ip4/127.0.0.1", "/ip6/::1"} {
		t.Run(host, func(t *testing.T) {
			if host == "/ip6/::1" {
				if ok, why := haveIPv6Loopback(); !ok {
					t.Skip("no IPv6 loopback on this host: " + why)
				}
			}
			a, b := newTransport(t), newTransport(t)
			l := listen(t, a, host+"/udp/0/quic-v1")
			if !strings.HasPrefix(l.Multiaddr().String(), host+"/udp/") || strings.Contains(l.Multiaddr().String(), "/udp/0/") {
				t.Fatalf("listen address %s", l.Multiaddr())
			}
			bc, ac := connect(t, b, l, a.LocalPeer())
			defer bc.Close()

			if bc.RemotePeer() != a.LocalPeer() || ac.RemotePeer() != b.LocalPeer() {
				t.Fatalf("peers: dialer sees %s, listener sees %s", bc.RemotePeer(), ac.RemotePeer())
			}
			if bc.LocalPeer() != b.LocalPeer() || ac.LocalPeer() != a.LocalPeer() {
				t.Fatal("local peer wrong")
			}
			if !peer.KeyEqual(ac.RemotePublicKey(), b.cfg.Key.Public()) || !peer.KeyEqual(bc.RemotePublicKey(), a.cfg.Key.Public()) {
				t.Fatal("remote public key wrong")
			}
			want := transport.ConnState{Transport: "quic-v1", Security: "/tls/1.0.0", Muxer: "quic", Outbound: true}
			if bc.State() != want {
				t.Fatalf("dialer state %+v", bc.State())
			}
			want.Outbound = false
			if ac.State() != want {
				t.Fatalf("listener state %+v", ac.State())
			}
			if !bc.RemoteMultiaddr().Equal(l.Multiaddr()) {
				t.Fatalf("dialer remote %s, listening on %s", bc.RemoteMultiaddr(), l.Multiaddr())
			}
			if !ac.LocalMultiaddr().Equal(l.Multiaddr()) {
				t.Fatalf("listener local %s, listening on %s", ac.LocalMultiaddr(), l.Multiaddr())
			}
			if !b.CanDial(ac.RemoteMultiaddr()) {
				t.Fatalf("remote address %s", ac.RemoteMultiaddr())
			}

			// Several streams each way, data both ways on each.
			const n = 4
			var wg sync.WaitGroup
			for _, side := range []struct{ open, accept transport.Conn }{{bc, ac}, {ac, bc}} {
				wg.Go(func() { echoServer(t, side.accept, n) })
				for i := range n {
					wg.Go(func() { echoClient(t, side.open, fmt.Sprintf("stream %d", i)) })
				}
			}
			wg.Wait()
		})
	}
}

// echoServer accepts n streams and answers each with its input in upper
// case, then closes it.
func echoServer(t testing.TB, c transport.Conn, n int) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for range n {
		s, err := c.AcceptStream()
		if err != nil {
			t.Error(err)
			return
		}
		wg.Go(func() {
			defer s.Close()
			in, err := io.ReadAll(s)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := s.Write(bytes.ToUpper(in)); err != nil {
				t.Error(err)
			}
		})
	}
}

// echoClient sends msg, half-closes and expects it back in upper case.
func echoClient(t testing.TB, c transport.Conn, msg string) {
	s, err := c.OpenStream(context.Background())
	if err != nil {
		t.Error(err)
		return
	}
	defer s.Close()
	if _, err := s.Write([]byte(msg)); err != nil {
		t.Error(err)
		return
	}
	if err := s.CloseWrite(); err != nil {
		t.Error(err)
		return
	}
	got, err := io.ReadAll(s)
	if err != nil {
		t.Error(err)
		return
	}
	if string(got) != strings.ToUpper(msg) {
		t.Errorf("echo of %q: %q", msg, got)
	}
}

// streamPair opens a stream from bc and accepts it on ac; the opener writes
// first so that the peer learns of the stream.
func streamPair(t *testing.T, bc, ac transport.Conn) (opened, accepted transport.Stream) {
	t.Helper()
	s, err := bc.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	r, err := ac.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	return s, r
}

// writeUntilError writes until the stream fails (or 5 s pass).
func writeUntilError(s transport.Stream) error {
	s.SetWriteDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	for {
		if _, err := s.Write(buf); err != nil {
			return err
		}
	}
}

func TestStreamSemantics(t *testing.T) {
	a, b := newTransport(t), newTransport(t)
	l := listen(t, a, "/ip4/127.0.0.1/udp/0/quic-v1")
	bc, ac := connect(t, b, l, a.LocalPeer())
	defer bc.Close()
	buf := make([]byte, 16)

	t.Run("CloseWrite", func(t *testing.T) {
		s, r := streamPair(t, bc, ac)
		s.Write([]byte("req"))
		if err := s.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != "req" {
			t.Fatalf("read %q, %v", got, err)
		}
		// The half-closed opener still reads the answer.
		r.Write([]byte("resp"))
		r.Close()
		got, err = io.ReadAll(s)
		if err != nil || string(got) != "resp" {
			t.Fatalf("read %q, %v", got, err)
		}
		s.Close()
	})

	t.Run("Close", func(t *testing.T) {
		s, r := streamPair(t, bc, ac)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// The peer reads EOF (FIN) ...
		if n, err := r.Read(buf); err != io.EOF {
			t.Fatalf("read after peer Close: %d, %v", n, err)
		}
		// ... and its writes fail: Close also stopped our reading.
		if err := writeUntilError(r); !errors.Is(err, mux.ErrReset) {
			t.Fatalf("write after peer Close: %v", err)
		}
		var se *quicgo.StreamError
		if err := writeUntilError(r); !errors.As(err, &se) || se.ErrorCode != 0 || !se.Remote {
			t.Fatalf("want STOP_SENDING with code 0 from the peer, got %v", err)
		}
		r.Close()
	})

	t.Run("Reset", func(t *testing.T) {
		s, r := streamPair(t, bc, ac)
		if err := s.Reset(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Read(buf); !errors.Is(err, mux.ErrReset) {
			t.Fatalf("read after peer Reset: %v", err)
		}
		if err := writeUntilError(r); !errors.Is(err, mux.ErrReset) {
			t.Fatalf("write after peer Reset: %v", err)
		}
		if _, err := s.Write([]byte("x")); err == nil {
			t.Fatal("write after own Reset succeeded")
		}
		r.Reset()
	})

	t.Run("Deadline", func(t *testing.T) {
		s, r := streamPair(t, bc, ac)
		defer s.Reset()
		defer r.Reset()
		r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := r.Read(buf)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read past deadline: %v", err)
		}
		r.SetDeadline(time.Time{})
		s.Write([]byte("y"))
		if _, err := io.ReadFull(r, buf[:1]); err != nil || buf[0] != 'y' {
			t.Fatalf("read after clearing deadline: %v", err)
		}
	})

	t.Run("ConnClose", func(t *testing.T) {
		c2b, c2a := connect(t, b, l, a.LocalPeer())
		s, r := streamPair(t, c2b, c2a)
		_ = s
		if err := c2b.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c2a.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("peer's Done not closed after Close")
		}
		select {
		case <-c2b.Done():
		default:
			t.Fatal("own Done not closed after Close")
		}
		var ae *quicgo.ApplicationError
		if _, err := r.Read(buf); !errors.As(err, &ae) || ae.ErrorCode != 0 || !ae.Remote {
			t.Fatalf("read on closed conn: %v", err)
		}
		if _, err := c2a.AcceptStream(); err == nil {
			t.Fatal("AcceptStream on closed conn")
		}
		if _, err := c2b.OpenStream(context.Background()); err == nil {
			t.Fatal("OpenStream on closed conn")
		}
	})
}

func TestPeerMismatch(t *testing.T) {
	a, b := newTransport(t), newTransport(t)
	l := listen(t, a, "/ip4/127.0.0.1/udp/0/quic-v1")
	ch := acceptAsync(l)
	other := peer.IDFromPublicKey(newKey(t).Public())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := b.Dial(ctx, l.Multiaddr(), other)
	if err == nil {
		t.Fatal("dial with wrong peer ID succeeded")
	}
	var mismatch *secure.PeerMismatchError
	if !errors.As(err, &mismatch) || mismatch.Expected != other || mismatch.Actual != a.LocalPeer() {
		t.Fatalf("want PeerMismatchError(%s, %s), got %v", other, a.LocalPeer(), err)
	}
	if msg := err.Error(); !strings.Contains(msg, other.String()) || !strings.Contains(msg, a.LocalPeer().String()) {
		t.Fatalf("error does not name both peers: %v", err)
	}
	t.Log(err)
	// The same via /p2p/ in the address.
	_, err = b.Dial(ctx, append(l.Multiaddr(), ma.StringCast("/p2p/"+other.String())...), "")
	if !errors.As(err, &mismatch) {
		t.Fatalf("dial /p2p/<wrong>: %v", err)
	}

	// The failed handshakes never surfaced from Accept: the first
	// connection it yields is the good one.
	c, err := b.Dial(ctx, l.Multiaddr(), a.LocalPeer())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ac := <-ch
	if ac == nil || ac.RemotePeer() != b.LocalPeer() {
		t.Fatal("accept after failed handshakes")
	}
	if portOf(t, ac.RemoteMultiaddr()) != portOf(t, c.LocalMultiaddr()) {
		t.Fatalf("accepted from %s, dialed from %s", ac.RemoteMultiaddr(), c.LocalMultiaddr())
	}
	// No connection is left over from the failed dials.
	a.mu.Lock()
	n := len(a.conns)
	a.mu.Unlock()
	if n != 1 {
		t.Fatalf("listener side holds %d connections, want 1", n)
	}
}

func portOf(t testing.TB, a ma.Multiaddr) string {
	t.Helper()
	p, err := a.ValueForProtocol(ma.P_UDP)
	if err != nil {
		t.Fatal(err)
	}
	return "/udp/" + p
}

// rawClient dials l with bare quic-go and our TLS identity.
func rawClient(t *testing.T, l transport.Listener, server peer.ID) *quicgo.Conn {
	t.Helper()
	id, err := p2ptls.NewIdentity(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	ua, err := udpAddrOf(l.Multiaddr())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	qc, err := quicgo.DialAddr(ctx, ua.String(), id.ConfigForClient(server, nil), &quicgo.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	return qc
}

func TestStreamLimit(t *testing.T) {
	const limit = 4
	a := newTransport(t, func(c *Config) { c.MaxIncomingStreams = limit })
	l := listen(t, a, "/ip4/127.0.0.1/udp/0/quic-v1")
	ch := acceptAsync(l)
	qc := rawClient(t, l, a.LocalPeer())
	ac := <-ch
	if ac == nil {
		t.Fatal("accept failed")
	}

	var held []*quicgo.Stream
	for range limit {
		s, err := qc.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte{1})
		held = append(held, s)
	}
	var accepted []transport.Stream
	for range limit {
		s, err := ac.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		accepted = append(accepted, s)
	}
	// The peer may not open a 5th while the 4 are held ...
	if _, err := qc.OpenStream(); !errors.As(err, new(*quicgo.StreamLimitReachedError)) {
		t.Fatalf("stream beyond the limit: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err := qc.OpenStreamSync(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocking open beyond the limit: %v", err)
	}
	// ... and may once one of them has ended on both sides.
	held[0].Close()
	if _, err := io.ReadAll(accepted[0]); err != nil {
		t.Fatal(err)
	}
	accepted[0].Close()
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := qc.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("open after a stream ended: %v", err)
	}
	s.Write([]byte{2})
	if _, err := ac.AcceptStream(); err != nil {
		t.Fatal(err)
	}
}

func TestUniStreamsRefused(t *testing.T) {
	a := newTransport(t)
	l := listen(t, a, "/ip4/127.0.0.1/udp/0/quic-v1")
	qc := rawClient(t, l, a.LocalPeer())
	if _, err := qc.OpenUniStream(); !errors.As(err, new(*quicgo.StreamLimitReachedError)) {
		t.Fatalf("unidirectional stream: %v", err)
	}
}

func TestPortReuse(t *testing.T) {
	a, b := newTransport(t), newTransport(t)
	lb := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")

	t.Run("specific", func(t *testing.T) {
		la := listen(t, a, "/ip4/127.0.0.1/udp/0/quic-v1")
		ac, bc := connect(t, a, lb, b.LocalPeer())
		defer ac.Close()
		if !bc.RemoteMultiaddr().Equal(la.Multiaddr()) {
			t.Fatalf("dial arrived from %s, listening on %s", bc.RemoteMultiaddr(), la.Multiaddr())
		}
		if !ac.LocalMultiaddr().Equal(la.Multiaddr()) {
			t.Fatalf("dialed from %s, listening on %s", ac.LocalMultiaddr(), la.Multiaddr())
		}
		// Incoming and outgoing share the one socket.
		a.mu.Lock()
		n := len(a.sockets)
		a.mu.Unlock()
		if n != 1 {
			t.Fatalf("%d sockets", n)
		}
	})

	t.Run("unspecified", func(t *testing.T) {
		c := newTransport(t)
		lc := listen(t, c, "/ip4/0.0.0.0/udp/0/quic-v1")
		cc, bc := connect(t, c, lb, b.LocalPeer())
		defer cc.Close()
		if portOf(t, bc.RemoteMultiaddr()) != portOf(t, lc.Multiaddr()) {
			t.Fatalf("dial arrived from %s, listening on %s", bc.RemoteMultiaddr(), lc.Multiaddr())
		}
	})

	t.Run("no listener", func(t *testing.T) {
		d := newTransport(t)
		lb2 := listen(t, b, "/ip4/127.0.0.1/udp/0/quic-v1")
		d1, b1 := connect(t, d, lb, b.LocalPeer())
		defer d1.Close()
		d2, b2 := connect(t, d, lb2, b.LocalPeer())
		defer d2.Close()
		if portOf(t, b1.RemoteMultiaddr()) != portOf(t, b2.RemoteMultiaddr()) {
			t.Fatalf("dials from %s and %s: want one shared socket", b1.RemoteMultiaddr(), b2.RemoteMultiaddr())
		}
		// Listening on the unspecified address adopts the dial socket, so
		// later dials keep the port peers already know.
		ld := listen(t, d, "/ip4/0.0.0.0/udp/0/quic-v1")
		if portOf(t, ld.Multiaddr()) != portOf(t, b1.RemoteMultiaddr()) {
			t.Fatalf("listener on %s did not adopt dial socket %s", ld.Multiaddr(), b1.RemoteMultiaddr())
		}
	})

	t.Run("loopback listener not used for other destinations", func(t *testing.T) {
		e := newTransport(t)
		listen(t, e, "/ip4/127.0.0.1/udp/0/quic-v1")
		e.mu.Lock()
		s := e.listenerForLocked(&net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, 0)
		e.mu.Unlock()
		if s != nil {
			t.Fatalf("would dial 192.0.2.1 from %s", s.maddr)
		}
	})
}

func TestListenerClose(t *testing.T) {
	a, b := newTransport(t), newTransport(t)
	l := listen(t, a, "/ip4/127.0.0.1/udp/0/quic-v1")
	bc, ac := connect(t, b, l, a.LocalPeer())
	blocked := acceptAsync(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if c := <-blocked; c != nil {
		t.Fatal("Accept yielded a connection after Close")
	}
	if _, err := l.Accept(); !errors.Is(err, transport.ErrListenerClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	// Accepted connections live on ...
	s, r := streamPair(t, bc, ac)
	s.Close()
	r.Close()
	// ... new ones are refused ...
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := b.Dial(ctx, l.Multiaddr(), a.LocalPeer()); err == nil {
		t.Fatal("dial to a closed listener succeeded")
	}
	// ... and the socket goes when the last connection does.
	bc.Close()
	<-ac.Done()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.mu.Lock()
		n, m := len(a.sockets), len(a.conns)
		a.mu.Unlock()
		if n == 0 && m == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sockets, %d conns left", n, m)
		}
		runtime.Gosched()
	}
	// The port is free again (the socket closes just after it is
	// forgotten).
	for {
		l2, err := a.Listen(l.Multiaddr())
		if err == nil {
			l2.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		runtime.Gosched()
	}
}

func TestListenTwice(t *testing.T) {
	a := newTransport(t)
	l := listen(t, a, "/ip4/127.0.0.1/udp/0/quic-v1")
	if _, err := a.Listen(l.Multiaddr()); err == nil {
		t.Fatal("second listener on one address")
	}
	for _, bad := range []string{"/ip4/127.0.0.1/udp/0", "/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic"} {
		if _, err := a.Listen(ma.StringCast(bad)); err == nil {
			t.Fatalf("listened on %s", bad)
		}
	}
}

// TestCloseEndsEverything checks that Transport.Close ends listeners,
// connections, streams, sockets and every goroutine.
func TestCloseEndsEverything(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		a, err := New(Config{Key: newKey(t)})
		if err != nil {
			t.Fatal(err)
		}
		b, err := New(Config{Key: newKey(t)})
		if err != nil {
			t.Fatal(err)
		}
		la, err := a.Listen(ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"))
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := haveIPv6Loopback(); ok {
			if _, err := a.Listen(ma.StringCast("/ip6/::1/udp/0/quic-v1")); err != nil {
				t.Fatal(err)
			}
		}
		var conns []transport.Conn
		for range 3 {
			bc, ac := connect(t, b, la, a.LocalPeer())
			conns = append(conns, bc, ac)
		}
		s, r := streamPair(t, conns[0], conns[1])
		_ = s
		readErr := make(chan error, 1)
		go func() {
			_, err := r.Read(make([]byte, 1))
			readErr <- err
		}()
		acceptErr := make(chan error, 1)
		go func() {
			_, err := la.Accept()
			acceptErr <- err
		}()
		streamErr := make(chan error, 1)
		go func() {
			_, err := conns[2].AcceptStream()
			streamErr <- err
		}()

		a.Close()
		for i, c := range conns {
			if i%2 == 1 { // a's ends are closed when Close returns
				select {
				case <-c.Done():
				default:
					t.Fatal("a connection outlived its transport's Close")
				}
			}
		}
		if err := <-acceptErr; !errors.Is(err, transport.ErrListenerClosed) {
			t.Fatalf("Accept: %v", err)
		}
		if err := <-readErr; err == nil {
			t.Fatal("Read survived Close")
		}
		// b learns from the CONNECTION_CLOSE.
		for _, c := range conns {
			<-c.Done()
		}
		if err := <-streamErr; err == nil {
			t.Fatal("AcceptStream survived Close")
		}
		b.Close()
		if _, err := b.Dial(context.Background(), la.Multiaddr(), ""); !errors.Is(err, ErrClosed) {
			t.Fatalf("Dial after Close: %v", err)
		}
		if _, err := a.Listen(la.Multiaddr()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Listen after Close: %v", err)
		}
	}()
	waitGoroutines(t, base)
}

// waitGoroutines waits for the goroutine count to fall back to base; the
// last quic-go goroutines exit just after the connection they served.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDialCancel(t *testing.T) {
	b := newTransport(t)
	// A UDP socket that never answers.
	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	addr, err := multiaddrOf(silent.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Dial(ctx, addr, ""); err == nil {
		t.Fatal("dial to a silent socket succeeded")
	}
	b.mu.Lock()
	users := b.dialers[0].users
	b.mu.Unlock()
	if users != 0 {
		t.Fatalf("failed dial left %d users on the dial socket", users)
	}
}
