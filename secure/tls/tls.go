// Package tls implements the libp2p TLS 1.3 handshake (/tls/1.0.0, libp2p
// specs tls/tls.md): peers authenticate with self-signed certificates that
// carry their host key in the libp2p Public Key Extension, and may agree
// on a stream muxer through ALPN (connections/inlined-muxer-negotiation).
//
// Identity holds the certificate and hands out crypto/tls configs (used
// directly by QUIC); Transport runs the handshake over a TCP (or relayed)
// connection after multistream-select picked /tls/1.0.0.
package tls

import (
	"context"
	stdtls "crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure"
)

// ID is the multistream protocol ID of libp2p TLS.
const ID = "/tls/1.0.0"

// maxMuxers bounds the muxer list (the same bound go applies to Noise).
const maxMuxers = 100

// Config configures a Transport.
type Config struct {
	// Key is our host key; it signs the certificate key.
	Key peer.PrivateKey
	// Muxers is the early muxer negotiation list in preference order
	// (e.g. ["/yamux/1.0.0"]), offered in ALPN before "libp2p"; nil
	// disables early negotiation.
	Muxers []string
	// Identity, if set, is used instead of a fresh one (it must hold Key),
	// so that TCP and QUIC share one certificate and make it once.
	Identity *Identity
}

// Transport runs libp2p TLS handshakes for one identity. It is safe for
// concurrent use.
type Transport struct {
	id     *Identity
	muxers []string
	protos []string // muxers + "libp2p"
}

// New creates the Identity for cfg.Key and checks the muxer list.
func New(cfg Config) (*Transport, error) {
	if cfg.Key == nil {
		return nil, errors.New("tls: no host key")
	}
	if len(cfg.Muxers) > maxMuxers {
		return nil, fmt.Errorf("tls: %d muxers, at most %d", len(cfg.Muxers), maxMuxers)
	}
	for _, m := range cfg.Muxers {
		if !validMuxer(m) {
			return nil, fmt.Errorf("tls: invalid muxer ID %q", m)
		}
	}
	id := cfg.Identity
	if id == nil {
		var err error
		if id, err = NewIdentity(cfg.Key); err != nil {
			return nil, err
		}
	} else if id.local != peer.IDFromPublicKey(cfg.Key.Public()) {
		return nil, errors.New("tls: the identity given is not of the host key")
	}
	muxers := append([]string(nil), cfg.Muxers...)
	return &Transport{id: id, muxers: muxers, protos: alpnList(muxers)}, nil
}

// ID returns the protocol ID, "/tls/1.0.0".
func (t *Transport) ID() string { return ID }

// LocalPeer returns our peer ID.
func (t *Transport) LocalPeer() peer.ID { return t.id.local }

// Identity returns the transport's certificate identity (for sharing it
// with QUIC).
func (t *Transport) Identity() *Identity { return t.id }

// SecureOutbound runs the handshake as TLS client over conn. If remote is
// not empty, the server must prove that identity, otherwise the error
// wraps a *secure.PeerMismatchError. ctx bounds the handshake. On error
// the caller should close conn.
//
// TLS 1.3 clients finish first: SecureOutbound can succeed although the
// server then rejects our certificate (say, because our clock is off). The
// server closes the connection and the error surfaces on the first Read.
func (t *Transport) SecureOutbound(ctx context.Context, conn net.Conn, remote peer.ID) (*Conn, error) {
	return t.secure(ctx, conn, false, remote)
}

// SecureInbound runs the handshake as TLS server over conn and accepts any
// authenticated peer. ctx bounds the handshake. On error the caller should
// close conn.
func (t *Transport) SecureInbound(ctx context.Context, conn net.Conn) (*Conn, error) {
	return t.secure(ctx, conn, true, "")
}

func (t *Transport) secure(ctx context.Context, conn net.Conn, server bool, remote peer.ID) (*Conn, error) {
	var c *Conn
	err := secure.Handshake(ctx, conn, "tls", func() (err error) {
		c, err = t.handshake(conn, server, remote)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (t *Transport) handshake(conn net.Conn, server bool, remote peer.ID) (*Conn, error) {
	v := &verifier{expected: remote, record: true}
	var tc *stdtls.Conn
	if server {
		tc = stdtls.Server(conn, t.id.serverConfig(t.protos, v))
	} else {
		tc = stdtls.Client(conn, t.id.clientConfig(t.protos, v))
	}
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	if v.key == nil {
		// crypto/tls calls VerifyConnection on every full handshake.
		return nil, errors.New("tls: internal error: peer certificate was not verified")
	}
	c := &Conn{tc: tc, local: t.id.local, remote: v.id, remoteKey: v.key}
	// The negotiated protocol is either one of our muxers or "libp2p"
	// (crypto/tls enforces that it is on our list). Keep our copy of the
	// string rather than the one parsed off the wire.
	proto := tc.ConnectionState().NegotiatedProtocol
	for _, m := range t.muxers {
		if m == proto {
			c.muxer = m
			break
		}
	}
	return c, nil
}
