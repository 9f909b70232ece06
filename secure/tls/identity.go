package tls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure"
)

// ALPN is the application protocol libp2p TLS always offers, last.
const ALPN = "libp2p"

// Certificate lifetime, as go-libp2p issues them: backdated an hour to
// tolerate clock skew, valid for about a century.
const (
	certBackdate = time.Hour
	certLifetime = 100 * 365 * 24 * time.Hour
)

// ALPN protocol names are 1 to 255 bytes.
const maxProtoLen = 255

// Identity holds a host key's self-signed TLS certificate: a fresh ECDSA
// P-256 key (unrelated to the host key, never persisted) certifying the
// libp2p Public Key Extension. It is immutable and safe for concurrent
// use; TCP (Transport) and QUIC share one per host.
type Identity struct {
	local  peer.ID
	certs  []stdtls.Certificate // exactly one; shared read-only by all configs
	curves []stdtls.CurveID     // key agreement offered; nil: crypto/tls's default
}

// WithClassicKeyExchange returns a copy of i whose handshakes agree keys
// with X25519 alone. crypto/tls (and so go-libp2p and Kubo) offers the
// post-quantum hybrid X25519MLKEM768 first; leaving it out saves the
// ML-KEM key generation, encapsulation and decapsulation of every
// handshake, 1.1 KB of ClientHello, and several KiB per QUIC connection
// on the listener (crypto/tls keeps a handshake buffer sized to the
// ClientHello; see bench's IdleConnMemory/quic-classic), at the cost
// of protection against recorded traffic being decrypted later by a
// quantum computer. Peers that offer the hybrid still agree on X25519 with
// us, without a retry. Noise uses X25519 alone in any case.
func (i *Identity) WithClassicKeyExchange() *Identity {
	c := *i
	c.curves = []stdtls.CurveID{stdtls.X25519}
	return &c
}

// NewIdentity generates the certificate key and the certificate for key.
func NewIdentity(key peer.PrivateKey) (*Identity, error) {
	if key == nil {
		return nil, errors.New("tls: no host key")
	}
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tls: generate certificate key: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&certKey.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("tls: marshal certificate key: %w", err)
	}
	sig, err := key.Sign(append([]byte(sigPrefix), spki...))
	if err != nil {
		return nil, fmt.Errorf("tls: sign certificate key with host key: %w", err)
	}
	value, err := marshalExtension(peer.MarshalPublicKey(key.Public()), sig)
	if err != nil {
		return nil, fmt.Errorf("tls: encode extension: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("tls: certificate serial: %w", err)
	}
	subjectSerial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("tls: certificate subject: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{SerialNumber: subjectSerial.String()},
		NotBefore:    now.Add(-certBackdate),
		NotAfter:     now.Add(certLifetime),
		// Not critical: the spec allows either, and non-critical is
		// what go-libp2p sends and every implementation accepts.
		ExtraExtensions: []pkix.Extension{{Id: ExtensionOID, Value: value}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &certKey.PublicKey, certKey)
	if err != nil {
		return nil, fmt.Errorf("tls: create certificate: %w", err)
	}
	// Check the result the way a peer will, so that a host key that signs
	// garbage fails here rather than in every handshake.
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tls: parse own certificate: %w", err)
	}
	pub, err := PublicKeyFromChain([]*x509.Certificate{cert})
	if err != nil {
		return nil, fmt.Errorf("tls: own certificate does not verify: %w", err)
	}
	return &Identity{
		local: peer.IDFromPublicKey(pub),
		certs: []stdtls.Certificate{{Certificate: [][]byte{der}, PrivateKey: certKey}},
	}, nil
}

// LocalPeer returns the peer ID of the host key.
func (i *Identity) LocalPeer() peer.ID { return i.local }

// ConfigForServer returns a crypto/tls config for the listening side:
// TLS 1.3 only, a client certificate required and checked with
// PublicKeyFromChain, no session tickets, and ALPN muxers (in order)
// followed by "libp2p". The server picks the first protocol in the
// client's list that it supports (not crypto/tls's server-preference
// order); a client offering only unsupported protocols is refused with a
// no_application_protocol alert. Invalid muxer names (empty, over 255
// bytes, "libp2p") are dropped.
//
// After the handshake, get the peer's key with PublicKeyFromChain on
// ConnectionState().PeerCertificates (a repeat of the check the handshake
// made, so it succeeds).
func (i *Identity) ConfigForServer(muxers []string) *stdtls.Config {
	return i.serverConfig(alpnList(muxers), &verifier{})
}

// ConfigForClient returns a crypto/tls config for the dialing side: TLS
// 1.3 only, no SNI, our certificate offered to the server, the server's
// certificate checked with PublicKeyFromChain, ALPN muxers followed by
// "libp2p". If remote is not empty the server must be that peer,
// otherwise the handshake fails with an error wrapping a
// *secure.PeerMismatchError.
//
// In TLS 1.3 the client finishes first: its handshake can succeed while
// the server still rejects the client's certificate. The server then
// closes the connection and the client sees the error (an alert) on its
// first read. Nothing in the protocol lets the client wait for that.
func (i *Identity) ConfigForClient(remote peer.ID, muxers []string) *stdtls.Config {
	return i.clientConfig(alpnList(muxers), &verifier{expected: remote})
}

// ConfigForDial is ConfigForClient for a single handshake: verified
// returns the server's key checked during it (nil until the handshake has
// verified it), so the caller need not check the chain a second time.
func (i *Identity) ConfigForDial(remote peer.ID, muxers []string) (cfg *stdtls.Config, verified func() peer.PublicKey) {
	v := &verifier{expected: remote, record: true}
	return i.clientConfig(alpnList(muxers), v), func() peer.PublicKey { return v.key }
}

// ConfigForListen is ConfigForServer for a listener whose connections are
// set up after the handshake (QUIC): verified returns the client's key
// that the handshake checked, given the connection's state, so the caller
// need not check the chain a second time (a P-256 and an Ed25519
// signature, about 0.15 ms on the listener's critical path). It returns
// nil for a connection whose result was not kept; check the chain then.
//
// Results are kept per leaf certificate until claimed, at most
// maxPending of them: when full, the kept results are dropped (their
// connections fall back to a full check), so handshakes whose connections
// are never claimed cannot pile up.
func (i *Identity) ConfigForListen(muxers []string) (cfg *stdtls.Config, verified func(stdtls.ConnectionState) peer.PublicKey) {
	p := &pending{}
	return i.serverConfig(alpnList(muxers), &verifier{pending: p}), p.claim
}

// maxPending bounds the verified keys a listen config keeps unclaimed.
const maxPending = 256

// pending holds the keys a shared server config verified, keyed by the
// leaf certificate crypto/tls parsed: the connection state handed out
// after the handshake points at the same certificate.
type pending struct {
	mu   sync.Mutex
	keys map[*x509.Certificate]peer.PublicKey
}

func (p *pending) put(cert *x509.Certificate, key peer.PublicKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keys == nil || len(p.keys) >= maxPending {
		p.keys = make(map[*x509.Certificate]peer.PublicKey)
	}
	p.keys[cert] = key
}

func (p *pending) claim(cs stdtls.ConnectionState) peer.PublicKey {
	if len(cs.PeerCertificates) != 1 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	key := p.keys[cs.PeerCertificates[0]]
	delete(p.keys, cs.PeerCertificates[0])
	return key
}

func (i *Identity) baseConfig(v *verifier) *stdtls.Config {
	return &stdtls.Config{
		MinVersion:   stdtls.VersionTLS13,
		MaxVersion:   stdtls.VersionTLS13,
		Certificates: i.certs,
		// The peer's certificate is self-signed and carries its identity
		// in the libp2p extension: skip WebPKI verification (client) and
		// accept any certificate (server), then apply the libp2p rules in
		// VerifyConnection. VerifyConnection receives the chain crypto/tls
		// has already parsed, where VerifyPeerCertificate would have to
		// parse it again; both run at the same point of the handshake.
		InsecureSkipVerify: true,
		ClientAuth:         stdtls.RequireAnyClientCert,
		VerifyConnection:   v.verify,
		// Resumption would skip the certificate exchange.
		SessionTicketsDisabled: true,
		CurvePreferences:       i.curves,
	}
}

func (i *Identity) clientConfig(protos []string, v *verifier) *stdtls.Config {
	c := i.baseConfig(v)
	c.NextProtos = protos
	// ServerName stays empty: with InsecureSkipVerify crypto/tls then
	// sends no SNI, as the spec requires.
	return c
}

func (i *Identity) serverConfig(protos []string, v *verifier) *stdtls.Config {
	c := i.baseConfig(v)
	c.NextProtos = protos
	c.GetConfigForClient = func(hello *stdtls.ClientHelloInfo) (*stdtls.Config, error) {
		// crypto/tls would walk our list and take the first entry the
		// client offers; libp2p wants the client's order. Offer crypto/tls
		// just the protocol we pick. If none matches, keep the full list
		// so that crypto/tls refuses the client (or, if the client sent
		// no ALPN at all, proceeds without one).
		cc := i.baseConfig(v)
		cc.NextProtos = protos
		if p, ok := firstCommon(hello.SupportedProtos, protos); ok {
			cc.NextProtos = []string{p}
		}
		return cc, nil
	}
	return c
}

// firstCommon returns the first entry of prefs that is in supported.
func firstCommon(prefs, supported []string) (string, bool) {
	for _, p := range prefs {
		for _, s := range supported {
			if p == s {
				return s, true
			}
		}
	}
	return "", false
}

// validMuxer reports whether m can be offered in ALPN as a muxer.
func validMuxer(m string) bool {
	return m != "" && len(m) <= maxProtoLen && m != ALPN
}

// alpnList returns the valid muxers, in order, followed by "libp2p".
func alpnList(muxers []string) []string {
	protos := make([]string, 0, len(muxers)+1)
	for _, m := range muxers {
		if validMuxer(m) {
			protos = append(protos, m)
		}
	}
	return append(protos, ALPN)
}

// verifier checks the peer's chain for one config. For the configs of
// Transport handshakes (record set) it also keeps the result; configs
// handed out by ConfigForServer/ConfigForClient are shared by concurrent
// handshakes and record nothing.
type verifier struct {
	expected peer.ID
	record   bool
	key      peer.PublicKey
	id       peer.ID
	pending  *pending // ConfigForListen's kept results, or nil
}

func (v *verifier) verify(cs stdtls.ConnectionState) error {
	key, err := PublicKeyFromChain(cs.PeerCertificates)
	if err != nil {
		return err
	}
	var id peer.ID
	if v.expected != "" || v.record {
		id = peer.IDFromPublicKey(key)
	}
	if v.expected != "" && id != v.expected {
		return fmt.Errorf("tls: %w", &secure.PeerMismatchError{Expected: v.expected, Actual: id})
	}
	if v.record {
		v.key, v.id = key, id
	}
	if v.pending != nil {
		v.pending.put(cs.PeerCertificates[0], key)
	}
	return nil
}
