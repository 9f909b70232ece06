//go:build !moteonly && !libp2ponly

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/mote-p2p/mote/bench/internal/benchproto"
)

func init() { register(stackQuicGo, quicgoStack{}) }

// quicgoStack is quic-go alone, with no libp2p on top: the floor that
// mote's QUIC transport is measured against. It does what mote's QUIC
// transport does (transport/quic) and no more: one UDP socket and
// quic.Transport per node, TLS 1.3 with a self-signed ECDSA P-256
// certificate per node, a client certificate required, ALPN "libp2p", and
// mote's default quic.Config. There is no identify, no protocol
// negotiation (one byte names a stream's protocol) and no libp2p
// certificate extension.
type quicgoStack struct{}

// quicgoALPN is the ALPN protocol mote (and every libp2p) offers over QUIC.
const quicgoALPN = "libp2p"

// quicgoProto is the byte that names each benchmark protocol: the opener
// writes it first on every stream it opens.
var quicgoProto = map[string]byte{benchproto.Echo: 'e', benchproto.Sink: 's', benchproto.Hold: 'h'}

// quicgoConfig is the quic.Config of mote's QUIC transport as a mote node
// builds it by default, value for value, so that quic-go alone runs with
// the same flow-control windows, stream limit and timers:
//
//   - transport/quic/transport.go, Config.quicConfig: Versions (v1 only),
//     MaxIncomingUniStreams -1, and initial windows of min(512 KiB,
//     stream window) and min(768 KiB, connection window)
//     (initialStreamWindow, initialConnWindow);
//   - the same file's defaults, which node/quic_on.go leaves in place:
//     HandshakeIdleTimeout 5 s (DefaultHandshakeTimeout) and MaxIdleTimeout
//     30 s (DefaultIdleTimeout);
//   - node/quic_on.go passes the node's limits, which take node/limits.go's
//     server preset (Limits.WithDefaults): QUICStreamWindow 4 MiB,
//     QUICConnWindow 8 MiB, QUICMaxStreams 256 and KeepAlive 30 s (which
//     replaces the transport's own 15 s default).
//
// A change to any of those should be repeated here.
func quicgoConfig() *quic.Config {
	const (
		streamWindow = 4 << 20 // Limits.QUICStreamWindow, server preset
		connWindow   = 8 << 20 // Limits.QUICConnWindow, server preset
	)
	return &quic.Config{
		Versions:                       []quic.Version{quic.Version1},
		HandshakeIdleTimeout:           5 * time.Second,
		MaxIdleTimeout:                 30 * time.Second,
		KeepAlivePeriod:                30 * time.Second, // Limits.KeepAlive, server preset
		InitialStreamReceiveWindow:     min(512<<10, streamWindow),
		MaxStreamReceiveWindow:         streamWindow,
		InitialConnectionReceiveWindow: min(768<<10, connWindow),
		MaxConnectionReceiveWindow:     connWindow,
		MaxIncomingStreams:             256, // Limits.QUICMaxStreams, server preset
		MaxIncomingUniStreams:          -1,
	}
}

// quicgoIdentity is a node's TLS certificate: a fresh ECDSA P-256 key,
// self-signed, as a libp2p TLS certificate is (but without the libp2p
// extension and the host key's signature in it).
type quicgoIdentity struct {
	cert tls.Certificate
	// id names the node: the hex SHA-256 of its certificate's public key.
	// A dialer checks that the listener's certificate carries it, as a
	// libp2p dialer checks the listener's peer ID.
	id string
}

// newQuicgoIdentity generates a node's certificate key and certificate.
func newQuicgoIdentity() (*quicgoIdentity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("quic-go: certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("quic-go: certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{SerialNumber: serial.String()},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("quic-go: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("quic-go: parse own certificate: %w", err)
	}
	return &quicgoIdentity{
		cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		id:   certID(leaf),
	}, nil
}

// certID is the name of the node whose certificate is cert.
func certID(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// tlsConfig is the TLS configuration of both directions, mote's
// (secure/tls, Identity.baseConfig) without the libp2p rules: TLS 1.3
// only, a certificate required from either side and checked by its
// self-signature, no session tickets (resumption would skip the
// certificate exchange), ALPN "libp2p", no SNI. expect, if not empty, is
// the id the peer's certificate must carry.
//
// The check runs in VerifyConnection, on the chain crypto/tls has already
// parsed, as mote's does; VerifyPeerCertificate would parse it a second
// time, work mote does not do.
func (i *quicgoIdentity) tlsConfig(expect string) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{i.cert},
		InsecureSkipVerify:     true, // self-signed: checked in VerifyConnection
		ClientAuth:             tls.RequireAnyClientCert,
		VerifyConnection:       func(cs tls.ConnectionState) error { return verifySelfSigned(cs.PeerCertificates, expect) },
		SessionTicketsDisabled: true,
		NextProtos:             []string{quicgoALPN},
	}
}

// verifySelfSigned accepts a chain of one certificate, valid now and
// signed by its own key (a comparable amount of work to the first half of
// libp2p's check; the second half verifies the host key's signature in
// the libp2p extension), and with expect, carrying that id.
func verifySelfSigned(chain []*x509.Certificate, expect string) error {
	if len(chain) != 1 {
		return fmt.Errorf("quic-go: want one certificate, got %d", len(chain))
	}
	cert := chain[0]
	if now := time.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return errors.New("quic-go: certificate not valid now")
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return fmt.Errorf("quic-go: certificate self-signature: %w", err)
	}
	if expect != "" {
		if got := certID(cert); got != expect {
			return fmt.Errorf("quic-go: peer is %s, want %s", got, expect)
		}
	}
	return nil
}

// newQuicgoTransport binds a UDP socket at laddr and puts a quic.Transport
// on it, with a stateless reset key and a token key, as mote's sockets
// have (mote derives them from the host key; random ones do the same work).
func newQuicgoTransport(laddr *net.UDPAddr) (*quic.Transport, *net.UDPConn, error) {
	udp, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, nil, fmt.Errorf("quic-go: %w", err)
	}
	var resetKey quic.StatelessResetKey
	var tokenKey quic.TokenGeneratorKey
	rand.Read(resetKey[:])
	rand.Read(tokenKey[:])
	return &quic.Transport{Conn: udp, StatelessResetKey: &resetKey, TokenGeneratorKey: &tokenKey}, udp, nil
}

// quicgoMultiaddr writes a UDP address as a QUIC v1 multiaddr, the form
// the rest of sidebyside passes around. Plain string building: this file
// depends on no multiaddr package.
func quicgoMultiaddr(a *net.UDPAddr) string {
	fam := "ip4"
	if a.IP.To4() == nil {
		fam = "ip6"
	}
	return fmt.Sprintf("/%s/%s/udp/%d/quic-v1", fam, a.IP, a.Port)
}

// parseQuicgoMultiaddr reads back an address written by quicgoMultiaddr:
// /ip4|ip6/<ip>/udp/<port>/quic-v1.
func parseQuicgoMultiaddr(addr string) (*net.UDPAddr, error) {
	f := strings.Split(addr, "/")
	if len(f) != 6 || f[0] != "" || (f[1] != "ip4" && f[1] != "ip6") || f[3] != "udp" || f[5] != "quic-v1" {
		return nil, fmt.Errorf("quic-go: %q is not /ip4|ip6/<ip>/udp/<port>/quic-v1", addr)
	}
	if _, err := strconv.ParseUint(f[4], 10, 16); err != nil {
		return nil, fmt.Errorf("quic-go: %q: bad port: %w", addr, err)
	}
	ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(f[2], f[4]))
	if err != nil {
		return nil, fmt.Errorf("quic-go: %q: %w", addr, err)
	}
	return ua, nil
}

// listen starts a listener on 127.0.0.1 over QUIC (the only transport),
// with no limit of its own on connections: quic-go has none to lift.
func (quicgoStack) listen(tr, preset string) (server, error) {
	if tr != "quic" {
		return nil, errors.New("quic-go alone has no TCP")
	}
	if preset != "" {
		return nil, fmt.Errorf("quic-go alone has no preset %q", preset)
	}
	ident, err := newQuicgoIdentity()
	if err != nil {
		return nil, err
	}
	qt, udp, err := newQuicgoTransport(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	ln, err := qt.Listen(ident.tlsConfig(""), quicgoConfig())
	if err != nil {
		qt.Close()
		udp.Close()
		return nil, fmt.Errorf("quic-go: listen: %w", err)
	}
	s := &quicgoServer{
		ident: ident,
		qt:    qt,
		udp:   udp,
		ln:    ln,
		live:  make(map[*quic.Conn]struct{}),
	}
	s.wg.Go(s.acceptLoop)
	return s, nil
}

// quicgoServer is a quic-go listener A serving the benchmark protocols.
type quicgoServer struct {
	ident *quicgoIdentity
	qt    *quic.Transport
	udp   *net.UDPConn
	ln    *quic.Listener

	nHeld  atomic.Int64
	nAccpt atomic.Uint64
	wg     sync.WaitGroup // the accept loop, the connections' and the streams' goroutines

	mu   sync.Mutex
	live map[*quic.Conn]struct{} // connections not yet ended
}

// acceptLoop takes the connections quic-go has handshaken until the
// listener is closed.
func (s *quicgoServer) acceptLoop() {
	for {
		qc, err := s.ln.Accept(context.Background())
		if err != nil {
			return // closed
		}
		s.nAccpt.Add(1)
		s.mu.Lock()
		s.live[qc] = struct{}{}
		s.mu.Unlock()
		// Forget the connection when it ends, however it ends; AfterFunc
		// costs no goroutine until then (mote's transport does the same).
		context.AfterFunc(qc.Context(), func() {
			s.mu.Lock()
			delete(s.live, qc)
			s.mu.Unlock()
		})
		s.wg.Go(func() { s.serveConn(qc) })
	}
}

// serveConn accepts the peer's streams until the connection ends: one
// goroutine per connection, as a libp2p node has to wait for streams.
func (s *quicgoServer) serveConn(qc *quic.Conn) {
	for {
		st, err := qc.AcceptStream(context.Background())
		if err != nil {
			return // the connection has ended
		}
		s.wg.Go(func() { s.serveStream((*quicgoStream)(st)) })
	}
}

// serveStream reads the protocol byte and runs its handler, which ends
// when the stream or its connection does.
func (s *quicgoServer) serveStream(st *quicgoStream) {
	var b [1]byte
	if _, err := io.ReadFull(st, b[:]); err != nil {
		st.Reset()
		return
	}
	switch b[0] {
	case quicgoProto[benchproto.Echo]:
		benchproto.ServeEcho(st)
	case quicgoProto[benchproto.Sink]:
		benchproto.ServeSink(st)
	case quicgoProto[benchproto.Hold]:
		// No identify: the connection is as identified as it will be.
		benchproto.ServeHold(st, closedChan, &s.nHeld)
	default:
		st.Reset()
	}
}

// closedChan is a closed channel: ServeHold's "identified" for quic-go.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// id is the listener's name: the hex SHA-256 of its certificate's public
// key, which dialers check (the -peer flag of the children).
func (s *quicgoServer) id() string { return s.ident.id }

// addr is the bound socket as a QUIC v1 multiaddr.
func (s *quicgoServer) addr() string {
	return quicgoMultiaddr(s.udp.LocalAddr().(*net.UDPAddr))
}

// held is the number of hold streams that have echoed and still idle.
func (s *quicgoServer) held() int64 { return s.nHeld.Load() }

// accepted is the number of connections accepted so far.
func (s *quicgoServer) accepted() uint64 { return s.nAccpt.Load() }

// conns is the number of accepted connections that have not ended.
func (s *quicgoServer) conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// close stops accepting, closes every connection with a CONNECTION_CLOSE
// (quic.Transport.Close alone would drop them silently), closes the
// socket and waits for the goroutines to end.
func (s *quicgoServer) close() {
	s.ln.Close()
	s.mu.Lock()
	live := make([]*quic.Conn, 0, len(s.live))
	for qc := range s.live {
		live = append(live, qc)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, qc := range live {
		wg.Go(func() { qc.CloseWithError(0, "") })
	}
	wg.Wait()
	s.qt.Close()
	s.udp.Close()
	s.wg.Wait()
}

// newPeer makes a dialing node with a fresh certificate; its socket is
// opened by its first dial.
func (quicgoStack) newPeer(tr string) (client, error) {
	if tr != "quic" {
		return nil, errors.New("quic-go alone has no TCP")
	}
	ident, err := newQuicgoIdentity() // untimed, as a libp2p node's key and certificate
	if err != nil {
		return nil, err
	}
	return &quicgoClient{ident: ident}, nil
}

// quicgoClient is a dialing node: one identity and, from its first dial
// on, one UDP socket, as a mote node without a listener has (its shared
// ephemeral dial socket, opened on the first dial and kept until Close).
type quicgoClient struct {
	ident *quicgoIdentity
	qt    *quic.Transport // nil until the first dial
	udp   *net.UDPConn
	qc    *quic.Conn // the connection to A, nil when not connected
}

// connect dials A and checks that its certificate carries id. There is
// no identify, so identified changes nothing.
func (c *quicgoClient) connect(ctx context.Context, id, addr string, _ bool) error {
	if c.qc != nil {
		return errors.New("quic-go: already connected")
	}
	raddr, err := parseQuicgoMultiaddr(addr)
	if err != nil {
		return err
	}
	if c.qt == nil {
		// The unspecified address, as mote's dial socket.
		if c.qt, c.udp, err = newQuicgoTransport(&net.UDPAddr{IP: net.IPv4zero}); err != nil {
			return err
		}
	}
	qc, err := c.qt.Dial(ctx, raddr, c.ident.tlsConfig(id), quicgoConfig())
	if err != nil {
		return fmt.Errorf("quic-go: dial %s: %w", addr, err)
	}
	c.qc = qc
	return nil
}

// open opens a stream and writes the protocol's byte at once. Like
// mote's optimistic protocol selection, this costs no round trip: the
// byte leaves with (or just before) the first data, and nothing waits for
// an answer.
func (c *quicgoClient) open(ctx context.Context, proto string) (stream, error) {
	if c.qc == nil {
		return nil, errors.New("quic-go: not connected")
	}
	p, ok := quicgoProto[proto]
	if !ok {
		return nil, fmt.Errorf("quic-go: unknown protocol %q", proto)
	}
	st, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("quic-go: open stream: %w", err)
	}
	s := (*quicgoStream)(st)
	if _, err := s.Write([]byte{p}); err != nil {
		s.Reset()
		return nil, fmt.Errorf("quic-go: write protocol byte: %w", err)
	}
	return s, nil
}

// disconnect closes the connection and waits until it has ended, as
// mote's and go-libp2p's do.
func (c *quicgoClient) disconnect() error {
	if c.qc == nil {
		return nil
	}
	err := c.qc.CloseWithError(0, "")
	select {
	case <-c.qc.Context().Done():
	case <-time.After(10 * time.Second):
		err = errors.Join(err, errors.New("quic-go: connection not done 10 s after close"))
	}
	c.qc = nil
	return err
}

// close closes the connection with a CONNECTION_CLOSE, so that A lets go
// of it at once, then the transport and the socket.
func (c *quicgoClient) close() error {
	err := c.disconnect()
	if c.qt != nil {
		c.qt.Close()
		c.udp.Close()
		c.qt, c.udp = nil, nil
	}
	return err
}

// quicgoStream is a quic-go stream with the close semantics the benchmark
// handlers expect, the same as mote's QUIC streams (transport/quic,
// stream): Close sends FIN and stops reading, CloseWrite sends FIN, Reset
// abandons both directions. Being the same struct type, it wraps without
// allocating.
type quicgoStream quic.Stream

// q is the stream as quic-go's type.
func (s *quicgoStream) q() *quic.Stream { return (*quic.Stream)(s) }

// Read reads from the stream.
func (s *quicgoStream) Read(p []byte) (int, error) { return s.q().Read(p) }

// Write writes to the stream.
func (s *quicgoStream) Write(p []byte) (int, error) { return s.q().Write(p) }

// Close sends FIN and stops reading (STOP_SENDING, code 0).
func (s *quicgoStream) Close() error {
	s.q().CancelRead(0)
	return s.q().Close()
}

// CloseWrite sends FIN; reading goes on.
func (s *quicgoStream) CloseWrite() error { return s.q().Close() }

// Reset sends RESET_STREAM and STOP_SENDING, code 0.
func (s *quicgoStream) Reset() error {
	s.q().CancelWrite(0)
	s.q().CancelRead(0)
	return nil
}
