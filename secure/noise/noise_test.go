package noise

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mote-p2p/mote/internal/testconn"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure"
)

func newKey(t testing.TB) peer.PrivateKey {
	t.Helper()
	k, err := peer.GenerateEd25519(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTransport(t testing.TB, muxers ...string) *Transport {
	t.Helper()
	tr, err := New(Config{Key: newKey(t), Muxers: muxers})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// tcpPair returns both ends of a loopback TCP connection (dialer first).
var tcpPair = testconn.TCPPair

func pipePair(t testing.TB) (net.Conn, net.Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// secureBoth runs both handshakes; the responder runs in a goroutine.
func secureBoth(ctx context.Context, ti, tr *Transport, ci, cr net.Conn, expect peer.ID) (*Conn, *Conn, error, error) {
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := tr.SecureInbound(ctx, cr)
		if err != nil {
			cr.Close() // unblock the initiator
		}
		ch <- res{c, err}
	}()
	a, errI := ti.SecureOutbound(ctx, ci, expect)
	if errI != nil {
		ci.Close()
	}
	r := <-ch
	return a, r.c, errI, r.err
}

func mustSecure(t testing.TB, ti, tr *Transport, ci, cr net.Conn) (*Conn, *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, b, errA, errB := secureBoth(ctx, ti, tr, ci, cr, tr.LocalPeer())
	if errA != nil || errB != nil {
		t.Fatalf("handshake: initiator %v, responder %v", errA, errB)
	}
	return a, b
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// transfer writes data on w in writes of chunk bytes while reading it all
// on r with reads of rsize bytes.
func transfer(t *testing.T, w, r net.Conn, data []byte, chunk, rsize int) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		for off := 0; off < len(data); off += chunk {
			n, err := w.Write(data[off:min(off+chunk, len(data))])
			if err != nil {
				errc <- err
				return
			}
			if n != min(chunk, len(data)-off) {
				errc <- fmt.Errorf("short write %d", n)
				return
			}
		}
		errc <- nil
	}()
	got := make([]byte, 0, len(data))
	buf := make([]byte, rsize)
	for len(got) < len(data) {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data mismatch")
	}
}

func checkSession(t *testing.T, a, b *Conn, ti, tr *Transport) {
	t.Helper()
	if a.LocalPeer() != ti.LocalPeer() || a.RemotePeer() != tr.LocalPeer() ||
		b.LocalPeer() != tr.LocalPeer() || b.RemotePeer() != ti.LocalPeer() {
		t.Fatal("peer IDs wrong")
	}
	if peer.IDFromPublicKey(a.RemotePublicKey()) != tr.LocalPeer() ||
		peer.IDFromPublicKey(b.RemotePublicKey()) != ti.LocalPeer() {
		t.Fatal("remote public keys wrong")
	}
	for _, tc := range []struct {
		name        string
		size, chunk int
		rsize       int
		aToB        bool
	}{
		{"small", 100, 100, 4096, true},
		{"small-back", 100, 100, 4096, false},
		{"oneframe", MaxPlaintext, MaxPlaintext, MaxPlaintext, true},
		{"frame+1", MaxPlaintext + 1, MaxPlaintext + 1, 7, false},
		{"big-write", 300_000, 300_000, 65536, true},
		{"1MiB-64k", 1 << 20, 64 << 10, 64 << 10, true},
		{"1MiB-single", 1 << 20, 1 << 20, 100_000, false},
		{"1MiB-smallreads", 1 << 20, 1000, 333, true},
	} {
		data := randBytes(tc.size)
		if tc.aToB {
			transfer(t, a, b, data, tc.chunk, tc.rsize)
		} else {
			transfer(t, b, a, data, tc.chunk, tc.rsize)
		}
	}
}

func TestHandshakePipe(t *testing.T) {
	ti, tr := newTransport(t), newTransport(t)
	ci, cr := pipePair(t)
	a, b := mustSecure(t, ti, tr, ci, cr)
	checkSession(t, a, b, ti, tr)
}

func TestHandshakeTCP(t *testing.T) {
	ti, tr := newTransport(t), newTransport(t)
	ci, cr := tcpPair(t)
	a, b := mustSecure(t, ti, tr, ci, cr)
	checkSession(t, a, b, ti, tr)
	// Many handshakes with the same transports (static key reuse).
	for range 5 {
		ci, cr := tcpPair(t)
		a, b := mustSecure(t, ti, tr, ci, cr)
		transfer(t, a, b, []byte("hello"), 5, 10)
		transfer(t, b, a, []byte("world"), 5, 10)
	}
}

func TestConcurrentReadWrite(t *testing.T) {
	ti, tr := newTransport(t), newTransport(t)
	ci, cr := tcpPair(t)
	a, b := mustSecure(t, ti, tr, ci, cr)
	const size = 2 << 20
	dataA, dataB := randBytes(size), randBytes(size)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	write := func(c *Conn, data []byte, chunk int) {
		defer wg.Done()
		for off := 0; off < len(data); off += chunk {
			if _, err := c.Write(data[off:min(off+chunk, len(data))]); err != nil {
				errs <- err
				return
			}
		}
	}
	read := func(c *Conn, want []byte, rsize int) {
		defer wg.Done()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(struct{ io.Reader }{c}, got); err != nil {
			errs <- err
			return
		}
		if !bytes.Equal(got, want) {
			errs <- errors.New("mismatch")
		}
	}
	wg.Add(4)
	go write(a, dataA, 70_000)
	go write(b, dataB, 1500)
	go read(b, dataA, 0)
	go read(a, dataB, 0)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Concurrent writers on one conn must not interleave frames.
	wg.Add(3)
	var got bytes.Buffer
	go func() {
		defer wg.Done()
		buf := make([]byte, 10_000)
		for got.Len() < 2*100*1000 {
			n, err := b.Read(buf)
			if err != nil {
				t.Error(err)
				return
			}
			got.Write(buf[:n])
		}
	}()
	for _, c := range []byte{'x', 'y'} {
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte{c}, 1000)
			for range 100 {
				if _, err := a.Write(msg); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < got.Len(); i += 1000 {
		blk := got.Bytes()[i : i+1000]
		if !bytes.Equal(blk, bytes.Repeat(blk[:1], 1000)) {
			t.Fatal("interleaved writes")
		}
	}
}

func TestEarlyMuxer(t *testing.T) {
	const y, m = "/yamux/1.0.0", "/mplex/6.7.0"
	for _, tc := range []struct {
		name   string
		i, r   []string
		expect string
	}{
		{"both-yamux", []string{y}, []string{y}, y},
		{"initiator-preference", []string{m, y}, []string{y, m}, m},
		{"partial-overlap", []string{"/a", y}, []string{y, "/b"}, y},
		{"disjoint", []string{m}, []string{y}, ""},
		{"initiator-none", nil, []string{y}, ""},
		{"responder-none", []string{y}, nil, ""},
		{"none", nil, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ti, tr := newTransport(t, tc.i...), newTransport(t, tc.r...)
			ci, cr := pipePair(t)
			a, b := mustSecure(t, ti, tr, ci, cr)
			if a.EarlyMuxer() != tc.expect || b.EarlyMuxer() != tc.expect {
				t.Fatalf("muxer: initiator %q responder %q, want %q", a.EarlyMuxer(), b.EarlyMuxer(), tc.expect)
			}
		})
	}
}

func TestPeerMismatch(t *testing.T) {
	ti, tr, other := newTransport(t), newTransport(t), newTransport(t)
	ci, cr := pipePair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, errI, errR := secureBoth(ctx, ti, tr, ci, cr, other.LocalPeer())
	var pm *secure.PeerMismatchError
	if !errors.As(errI, &pm) {
		t.Fatalf("initiator error %v is not a PeerMismatchError", errI)
	}
	if pm.Expected != other.LocalPeer() || pm.Actual != tr.LocalPeer() {
		t.Fatalf("mismatch names %s/%s", pm.Expected, pm.Actual)
	}
	if errR == nil {
		t.Fatal("responder succeeded without message 3")
	}
}

// forged returns a transport whose payload carries the identity of victim
// but is signed by another key.
func forged(t *testing.T) (*Transport, *Transport) {
	honest := newTransport(t)
	evil := newTransport(t)
	victim := newKey(t)
	sig, err := newKey(t).Sign(append([]byte(sigPrefix), evil.static.PublicKey().Bytes()...))
	if err != nil {
		t.Fatal(err)
	}
	evil.payload = Payload{IdentityKey: peer.MarshalPublicKey(victim.Public()), IdentitySig: sig}.Append(nil)
	evil.localID = peer.IDFromPublicKey(victim.Public())
	return honest, evil
}

func TestForgedSignature(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Forging responder.
	honest, evil := forged(t)
	ci, cr := pipePair(t)
	_, _, errI, _ := secureBoth(ctx, honest, evil, ci, cr, evil.LocalPeer())
	if !errors.Is(errI, peer.ErrBadSignature) {
		t.Fatalf("initiator: %v", errI)
	}
	// Forging initiator.
	ci, cr = pipePair(t)
	_, _, _, errR := secureBoth(ctx, evil, honest, ci, cr, honest.LocalPeer())
	if !errors.Is(errR, peer.ErrBadSignature) {
		t.Fatalf("responder: %v", errR)
	}
	// Signature over a different static key (a replayed payload).
	a, b := newTransport(t), newTransport(t)
	b.payload = a.payload
	b.localID = a.localID
	ci, cr = pipePair(t)
	_, _, errI, _ = secureBoth(ctx, newTransport(t), b, ci, cr, "")
	if !errors.Is(errI, peer.ErrBadSignature) {
		t.Fatalf("replayed payload: %v", errI)
	}
}

func TestBadPayloads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"empty", nil},
		{"no-key", Payload{IdentitySig: []byte("x")}.Append(nil)},
		{"bad-key", Payload{IdentityKey: []byte{8, 1, 0x12, 3, 1, 2, 3}, IdentitySig: []byte("x")}.Append(nil)},
		{"garbage", []byte{0xff, 0xff, 0xff}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good, bad := newTransport(t), newTransport(t)
			bad.payload = tc.payload
			ci, cr := pipePair(t)
			if _, _, errI, _ := secureBoth(ctx, good, bad, ci, cr, ""); errI == nil {
				t.Fatal("initiator accepted bad payload")
			}
			ci, cr = pipePair(t)
			if _, _, _, errR := secureBoth(ctx, bad, good, ci, cr, ""); errR == nil {
				t.Fatal("responder accepted bad payload")
			}
		})
	}
}

func TestGarbagePeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tr := newTransport(t)
	for _, garbage := range [][]byte{
		nil,
		{0},
		{0, 0},
		{0, 5, 1, 2, 3, 4, 5},
		append([]byte{0, 40}, randBytes(40)...),
		append([]byte{0, 200}, randBytes(200)...),
		append([]byte{0xff, 0xff}, randBytes(65535)...),
		randBytes(1000),
	} {
		// As responder: garbage instead of messages 1 and 3.
		ci, cr := tcpPair(t)
		ci.Write(append([]byte{0, 32}, randBytes(32)...))
		if len(garbage) > 0 {
			ci.Write(garbage)
		}
		ci.(*net.TCPConn).CloseWrite()
		if _, err := tr.SecureInbound(ctx, cr); err == nil {
			t.Fatal("responder accepted garbage")
		}
		ci2, cr2 := tcpPair(t)
		if len(garbage) > 0 {
			ci2.Write(garbage)
		}
		ci2.(*net.TCPConn).CloseWrite()
		if _, err := tr.SecureInbound(ctx, cr2); err == nil {
			t.Fatal("responder accepted garbage message 1")
		}
		// As initiator: garbage instead of message 2.
		ci3, cr3 := tcpPair(t)
		if len(garbage) > 0 {
			cr3.Write(garbage)
		}
		cr3.(*net.TCPConn).CloseWrite()
		if _, err := tr.SecureOutbound(ctx, ci3, ""); err == nil {
			t.Fatal("initiator accepted garbage")
		}
	}
}

// waitGoroutines waits (without sleeping) until at most n goroutines run.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < 1_000_000; i++ {
		if runtime.NumGoroutine() <= n {
			return
		}
		runtime.Gosched()
	}
	t.Fatalf("%d goroutines, want ≤ %d", runtime.NumGoroutine(), n)
}

func TestStalledPeerDeadline(t *testing.T) {
	tr := newTransport(t)
	ci, cr := tcpPair(t)
	before := runtime.NumGoroutine()
	ci.Write([]byte{0, 32}) // a length prefix, then nothing
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := tr.SecureInbound(ctx, cr)
	if err == nil {
		t.Fatal("handshake succeeded")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("not a timeout: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	waitGoroutines(t, before)
	// The deadline was cleared: the conn is usable again.
	ci.Write([]byte{1})
	var b [1]byte
	if _, err := io.ReadFull(cr, b[:]); err != nil {
		t.Fatalf("deadline not cleared: %v", err)
	}
}

func TestStalledPeerCancel(t *testing.T) {
	tr := newTransport(t)
	ci, cr := tcpPair(t)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(50*time.Millisecond, cancel)
	defer timer.Stop()
	_, err := tr.SecureOutbound(ctx, ci, "")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	waitGoroutines(t, before)
	cr.Write([]byte{7})
	var b [1]byte
	if _, err := io.ReadFull(ci, b[:]); err != nil || b[0] != 7 {
		t.Fatalf("deadline not cleared: %v", err)
	}
	// An already-cancelled context fails fast.
	if _, err := tr.SecureInbound(ctx, cr); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	ti, tr := newTransport(t), newTransport(t)
	before := runtime.NumGoroutine()
	for range 20 {
		ci, cr := pipePair(t)
		ctx, cancel := context.WithCancel(context.Background())
		a, b, errA, errB := secureBoth(ctx, ti, tr, ci, cr, "")
		cancel()
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		a.Close()
		b.Close()
	}
	waitGoroutines(t, before)
}

// established returns a session whose initiator side is a raw TCP conn
// (raw) plus its cipher state, so tests can write arbitrary frames.
func established(t *testing.T) (raw net.Conn, send *cipherState, c *Conn) {
	ti, tr := newTransport(t), newTransport(t)
	ci, cr := tcpPair(t)
	a, b := mustSecure(t, ti, tr, ci, cr)
	return ci, &a.send, b
}

func frame(t *testing.T, cs *cipherState, pt []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(pt)+tagLen))
	b, err := cs.seal(b, pt, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTruncatedFrame(t *testing.T) {
	raw, cs, c := established(t)
	f := frame(t, cs, []byte("hello world"))
	raw.Write(f[:len(f)-3])
	raw.(*net.TCPConn).CloseWrite()
	buf := make([]byte, 100)
	if _, err := c.Read(buf); err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v", err)
	}
	if _, err := c.Read(buf); err != io.ErrUnexpectedEOF {
		t.Fatalf("not sticky: %v", err)
	}
	// Header only, then EOF.
	raw, cs, c = established(t)
	raw.Write([]byte{0})
	raw.(*net.TCPConn).CloseWrite()
	if _, err := c.Read(buf); err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v", err)
	}
	// Clean EOF at a frame boundary.
	raw, cs, c = established(t)
	raw.Write(frame(t, cs, []byte("abc")))
	raw.(*net.TCPConn).CloseWrite()
	if n, err := c.Read(buf); n != 3 || err != nil {
		t.Fatalf("got %d %v", n, err)
	}
	if _, err := c.Read(buf); err != io.EOF {
		t.Fatalf("got %v", err)
	}
}

func TestBadFrames(t *testing.T) {
	buf := make([]byte, 100)
	// Tampered ciphertext, into p and into the internal buffer.
	for _, rsize := range []int{100, 2} {
		raw, cs, c := established(t)
		f := frame(t, cs, []byte("hello world"))
		f[5] ^= 1
		raw.Write(f)
		if _, err := c.Read(buf[:rsize]); !errors.Is(err, errDecrypt) {
			t.Fatalf("got %v", err)
		}
		if _, err := c.Read(buf); !errors.Is(err, errDecrypt) {
			t.Fatalf("not sticky: %v", err)
		}
	}
	// Frame shorter than a tag.
	raw, _, c := established(t)
	raw.Write([]byte{0, 3, 1, 2, 3})
	if _, err := c.Read(buf); err != errShortFrame {
		t.Fatalf("got %v", err)
	}
	// Replayed frame.
	raw, cs, c := established(t)
	f := frame(t, cs, []byte("once"))
	raw.Write(f)
	raw.Write(f)
	if n, err := c.Read(buf); n != 4 || err != nil {
		t.Fatalf("got %d %v", n, err)
	}
	if _, err := c.Read(buf); !errors.Is(err, errDecrypt) {
		t.Fatalf("replay: %v", err)
	}
	// Garbage frames of every size do not panic.
	for _, n := range []int{16, 17, 100, 4094, 4095, 65535} {
		raw, _, c := established(t)
		g := append(binary.BigEndian.AppendUint16(nil, uint16(n)), randBytes(n)...)
		raw.Write(g)
		if _, err := c.Read(make([]byte, 70000)); !errors.Is(err, errDecrypt) {
			t.Fatalf("size %d: %v", n, err)
		}
	}
}

func TestReadTimeoutResumes(t *testing.T) {
	raw, cs, c := established(t)
	msg := randBytes(10_000)
	f := frame(t, cs, msg)
	buf := make([]byte, 20_000)
	for _, cut := range []int{1, 2, 500} {
		raw.Write(f[:cut])
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := c.Read(buf)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("cut %d: %v", cut, err)
		}
		c.SetReadDeadline(time.Time{})
		raw.Write(f[cut:])
		n, err := io.ReadFull(c, buf[:len(msg)])
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("cut %d: resume: %v", cut, err)
		}
		f = frame(t, cs, msg)
	}
}

func TestManySmallFramesOneSegment(t *testing.T) {
	raw, cs, c := established(t)
	var all, want []byte
	for i := range 1000 {
		m := []byte(fmt.Sprintf("msg %d;", i))
		want = append(want, m...)
		all = append(all, frame(t, cs, m)...)
		if i%100 == 0 { // an empty frame now and then
			all = append(all, frame(t, cs, nil)...)
		}
	}
	all = append(all, frame(t, cs, randBytes(MaxPlaintext))[:100]...) // partial big frame at the end
	raw.Write(all)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %v", err)
	}
}

func TestNonceExhaustion(t *testing.T) {
	ti, tr := newTransport(t), newTransport(t)
	ci, cr := pipePair(t)
	a, b := mustSecure(t, ti, tr, ci, cr)
	a.send.n = math.MaxUint64 - 1
	b.recv.n = math.MaxUint64 - 1
	go a.Write([]byte("last"))
	buf := make([]byte, 10)
	if n, err := b.Read(buf); err != nil || string(buf[:n]) != "last" {
		t.Fatalf("last message: %q %v", buf[:n], err)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, errNonceExhausted) {
		t.Fatalf("got %v", err)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, errNonceExhausted) {
		t.Fatalf("not sticky: %v", err)
	}
	if _, err := b.Read(buf); err == nil {
		t.Fatal("conn not closed")
	}
}

func TestIdleHoldsNoBuffers(t *testing.T) {
	ti, tr := newTransport(t), newTransport(t)
	ci, cr := pipePair(t)
	a, b := mustSecure(t, ti, tr, ci, cr)
	go a.Write(randBytes(100_000))
	got := make([]byte, 100_000)
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if b.rbuf != nil || b.rdata != nil {
		t.Fatal("read buffer kept after draining")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Read(got) // blocks in the header read
	}()
	a.Write([]byte("x"))
	<-done
	if b.rbuf != nil {
		t.Fatal("read buffer kept")
	}
}

func TestConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("nil key accepted")
	}
	if _, err := New(Config{Key: newKey(t), Muxers: []string{""}}); err == nil {
		t.Fatal("empty muxer accepted")
	}
	tr := newTransport(t, "/yamux/1.0.0")
	if tr.ID() != "/noise" || ID != "/noise" {
		t.Fatal("ID")
	}
	p, err := DecodePayload(tr.payload)
	if err != nil || len(p.Muxers) != 1 || p.Muxers[0] != "/yamux/1.0.0" {
		t.Fatalf("payload %+v %v", p, err)
	}
}
