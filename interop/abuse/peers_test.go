package abuse

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mote-p2p/mote/identify"
	"github.com/mote-p2p/mote/mux"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/ping"
	"github.com/mote-p2p/mote/secure/noise"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/wire"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// legitTimeout bounds a legitimate peer's connect, identify and ping
// outside the attacks that set a tighter bound.
const legitTimeout = 10 * time.Second

// legit is a well-behaved peer: an in-process mote node with a fresh
// identity, dialing the daemon from 127.0.0.1.
type legit struct {
	n *node.Node
	c *node.Conn
}

// connectLegit connects a new legitimate peer to the daemon over tr
// ("tcp" or "quic"), waits for identify to succeed and pings once.
func connectLegit(ctx context.Context, d *daemon, tr string) (*legit, error) {
	cfg := node.Config{DisableQUIC: tr == "tcp"}
	addr := d.tcp
	if tr == "quic" {
		addr = d.quic
	}
	n, err := node.New(cfg)
	if err != nil {
		return nil, err
	}
	l := &legit{n: n}
	c, err := n.Connect(ctx, d.id, addr)
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("legit peer: connect over %s: %w", tr, err)
	}
	l.c = c
	select {
	case <-c.Identified():
		if err := c.IdentifyErr(); err != nil {
			n.Close()
			return nil, fmt.Errorf("legit peer: identify over %s: %w", tr, err)
		}
	case <-ctx.Done():
		n.Close()
		return nil, fmt.Errorf("legit peer: identify over %s: %w", tr, ctx.Err())
	}
	if _, err := l.ping(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return l, nil
}

func (l *legit) ping(ctx context.Context) (time.Duration, error) {
	rtt, err := l.n.Ping(ctx, l.c.RemotePeer())
	if err != nil {
		return 0, fmt.Errorf("legit peer: %w", err)
	}
	return rtt, nil
}

func (l *legit) close() { l.n.Close() }

// checkLegit has a new legitimate peer connect over tr, identify and ping
// within the given time, then leave; it fails the test otherwise and
// returns how long it took.
func checkLegit(t *testing.T, d *daemon, tr string, within time.Duration, when string) time.Duration {
	t.Helper()
	took, err := tryLegit(d, tr, within)
	if err != nil {
		t.Fatalf("%s: %v (after %v)\ndaemon stderr:\n%s", when, err, took.Round(time.Millisecond), d.stderr)
	}
	return took
}

// legitResult is one legitimate peer's visit, for the figures; check
// fails the test if it failed, once the figures are logged.
type legitResult struct {
	when string
	took time.Duration
	err  error
}

// legitNow has a new legitimate peer connect over tr, identify and ping
// within the given time, then leave.
func legitNow(d *daemon, tr string, within time.Duration, when string) legitResult {
	took, err := tryLegit(d, tr, within)
	return legitResult{when: when, took: took, err: err}
}

func (r legitResult) String() string {
	if r.err != nil {
		return fmt.Sprintf("legit %s: FAILED after %v (%s)", r.when, r.took.Round(time.Millisecond), shortErr(r.err))
	}
	return fmt.Sprintf("legit %s: %v", r.when, r.took.Round(time.Millisecond))
}

func (r legitResult) check(t *testing.T) {
	t.Helper()
	if r.err != nil {
		t.Errorf("legit peer %s: %v (after %v)", r.when, r.err, r.took.Round(time.Millisecond))
	}
}

// tryLegit is checkLegit reporting the failure instead; it may run on any
// goroutine.
func tryLegit(d *daemon, tr string, within time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	start := time.Now()
	l, err := connectLegit(ctx, d, tr)
	took := time.Since(start)
	if err != nil {
		return took, err
	}
	l.close()
	return took, nil
}

// legitLoop has legitimate peers connect, ping and leave one after the
// other over tr until stop is closed: the "during the attack" check.
type legitLoop struct {
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	ok, fail int
	slowest  time.Duration
	firstErr error
}

func startLegitLoop(d *daemon, tr string, within time.Duration) *legitLoop {
	l := &legitLoop{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			took, err := tryLegit(d, tr, within)
			l.mu.Lock()
			if err != nil {
				l.fail++
				if l.firstErr == nil {
					l.firstErr = err
				}
			} else {
				l.ok++
				l.slowest = max(l.slowest, took)
			}
			l.mu.Unlock()
			select {
			case <-l.stop:
				return
			case <-time.After(legitInterval): // the peers' pace, not a synchronisation
			}
		}
	}()
	return l
}

// legitInterval spaces the legitimate peers' visits during an attack.
const legitInterval = 20 * time.Millisecond

// Stop waits for the attempt in progress and returns the tally.
func (l *legitLoop) Stop() (ok, fail int, slowest time.Duration, firstErr error) {
	close(l.stop)
	<-l.done
	return l.ok, l.fail, l.slowest, l.firstErr
}

// attackerIP is the i-th attacker address, 127.0.0.2 to 127.0.0.9.
func attackerIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i%8)}) }

// rawPeer is a hand-driven attacker identity: its connections are
// secured (Noise) and muxed (yamux) by the repo's own upgrader, and the
// attack drives the streams itself.
type rawPeer struct {
	key peer.PrivateKey
	id  peer.ID
	up  *transport.Upgrader
	// answer is what the peer writes when the daemon asks it for
	// identify: one or more length-prefixed identify messages.
	answer []byte
}

func newRawPeer(t testing.TB) *rawPeer {
	t.Helper()
	key, err := peer.GenerateEd25519(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	up, err := transport.NewUpgrader(transport.UpgraderConfig{
		Key:      key,
		Security: []string{noise.ID},
		Mux:      mux.Config{MaxStreams: 4096, KeepAlive: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{key: key, id: peer.IDFromPublicKey(key.Public()), up: up}
	p.answer = identifyFrames(t, p.key, nil, nil)
	return p
}

// rawConn is a rawPeer's connection to the daemon. The daemon's identify
// requests are answered with the peer's answer, its pushes read and
// dropped, other streams reset.
type rawConn struct {
	transport.Conn
	answer     []byte // the peer's identify answer
	wg         sync.WaitGroup
	identified chan struct{} // closed once the daemon has read our identify answer
	idOnce     sync.Once
}

// dialTimeout bounds an attacker's dial and upgrade.
const dialTimeout = 10 * time.Second

// dial connects p from src to the daemon's TCP port.
func (p *rawPeer) dial(ctx context.Context, d *daemon, src netip.Addr) (*rawConn, error) {
	return p.dialTo(ctx, d.id, d.tcp, src)
}

// dialTo connects p from src to peer id at the TCP address to.
func (p *rawPeer) dialTo(ctx context.Context, id peer.ID, to ma.Multiaddr, src netip.Addr) (*rawConn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	tc, err := p.up.Dial(ctx, id, func(ctx context.Context) (net.Conn, transport.Endpoint, error) {
		raw, err := dialTCPFrom(ctx, src, to)
		if err != nil {
			return nil, transport.Endpoint{}, err
		}
		local, err := ma.FromNetAddr(raw.LocalAddr())
		if err != nil {
			raw.Close()
			return nil, transport.Endpoint{}, err
		}
		return raw, transport.Endpoint{Transport: "tcp", Local: local, Remote: to}, nil
	})
	if err != nil {
		return nil, err
	}
	c := &rawConn{Conn: tc, answer: p.answer, identified: make(chan struct{})}
	c.wg.Add(1)
	go c.serve(p.answer)
	return c, nil
}

// dialTCPFrom opens a plain TCP connection from src (any port) to dst.
func dialTCPFrom(ctx context.Context, src netip.Addr, dst ma.Multiaddr) (net.Conn, error) {
	na, err := ma.ToNetAddr(dst)
	if err != nil {
		return nil, err
	}
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	return dl.DialContext(ctx, "tcp", na.String())
}

func (c *rawConn) serve(answer []byte) {
	defer c.wg.Done()
	for {
		s, err := c.AcceptStream()
		if err != nil {
			c.idOnce.Do(func() { close(c.identified) })
			return
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.serveStream(s, answer)
		}()
	}
}

func (c *rawConn) serveStream(s transport.Stream, answer []byte) {
	s.SetDeadline(time.Now().Add(15 * time.Second))
	proto, err := wire.Negotiate(s, []string{identify.ID, identify.PushID}, nil)
	if err != nil {
		s.Reset()
		return
	}
	switch proto {
	case identify.ID:
		if _, err := s.Write(answer); err != nil {
			s.Reset()
			break
		}
		s.CloseWrite()
		// The daemon closes its side once it has read the answer.
		io.Copy(io.Discard, s)
		s.Close()
		c.idOnce.Do(func() { close(c.identified) })
	case identify.PushID:
		io.Copy(io.Discard, s)
		s.Close()
	}
}

// close closes the connection and waits for its goroutines.
func (c *rawConn) close() {
	c.Close()
	c.wg.Wait()
}

// waitIdentified waits until the daemon has read our identify answer.
func (c *rawConn) waitIdentified(ctx context.Context) error {
	select {
	case <-c.identified:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("daemon did not read our identify answer: %w", ctx.Err())
	}
}

// pingOnce opens a ping stream on c and pings once.
func (c *rawConn) pingOnce(ctx context.Context) error {
	s, err := c.OpenStream(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		s.SetDeadline(dl)
	}
	if err := wire.SelectOne(s, ping.ID); err != nil {
		s.Reset()
		return err
	}
	if _, err := ping.Once(s, nil); err != nil {
		s.Reset()
		return err
	}
	return nil
}

// identifyFrames builds the identify answer of key: the public key, then
// addrs (binary multiaddrs) and protos, split over as many
// length-prefixed messages of at most identify.MaxMessageSize bytes as
// needed (at most identify.MaxMessages, which the daemon merges).
func identifyFrames(t testing.TB, key peer.PrivateKey, addrs [][]byte, protos []string) []byte {
	t.Helper()
	const budget = identify.MaxMessageSize - 64 // room for a field's tag and length
	var buf bytes.Buffer
	msgs := 0
	flush := func(m *identify.Message) {
		if err := identify.WriteMessage(&buf, m); err != nil {
			t.Fatal(err)
		}
		msgs++
	}
	m := &identify.Message{PublicKey: peer.MarshalPublicKey(key.Public()), AgentVersion: "abuse/0"}
	size := len(m.PublicKey) + len(m.AgentVersion) + 8
	for _, a := range addrs {
		if size+len(a)+4 > budget {
			flush(m)
			m, size = &identify.Message{}, 0
		}
		m.ListenAddrs = append(m.ListenAddrs, a)
		size += len(a) + 4
	}
	for _, p := range protos {
		if size+len(p)+4 > budget {
			flush(m)
			m, size = &identify.Message{}, 0
		}
		m.Protocols = append(m.Protocols, p)
		size += len(p) + 4
	}
	flush(m)
	if msgs > identify.MaxMessages {
		t.Fatalf("identify answer needs %d messages, more than the %d a reader merges", msgs, identify.MaxMessages)
	}
	return buf.Bytes()
}

// forEach runs f(i) for i in [0, n) on at most par goroutines at once and
// returns the first error.
func forEach(n, par int, f func(i int) error) error {
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
