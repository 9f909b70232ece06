// Package noise implements the libp2p Noise security handshake
// (Noise_XX_25519_ChaChaPoly_SHA256, Noise spec rev. 34, libp2p noise spec
// r4) and the framed, encrypted connection that follows it.
//
// A Transport holds our identity, one static X25519 key (generated in New,
// never persisted, reused across handshakes as the spec allows) and the
// handshake payload signed once for it. Every handshake uses a fresh
// ephemeral key.
package noise

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"net"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure"
)

// ID is the multistream protocol ID of libp2p Noise.
const ID = "/noise"

// sigPrefix is prepended to the static key before it is signed.
const sigPrefix = "noise-libp2p-static-key:"

// Config configures a Transport.
type Config struct {
	// Key is our identity key; it signs the static Noise key.
	Key peer.PrivateKey
	// Muxers is the early muxer negotiation list in preference order
	// (e.g. ["/yamux/1.0.0"]); nil disables early negotiation.
	Muxers []string
}

// Transport runs Noise handshakes for one identity. It is safe for
// concurrent use.
type Transport struct {
	localID peer.ID
	static  *ecdh.PrivateKey
	muxers  []string
	payload []byte // encoded handshake payload, signed for static
}

// New prepares a Transport: it generates the static Noise key and signs it
// with cfg.Key.
func New(cfg Config) (*Transport, error) {
	if cfg.Key == nil {
		return nil, errors.New("noise: no identity key")
	}
	if len(cfg.Muxers) > maxMuxers {
		return nil, fmt.Errorf("noise: %d muxers, at most %d", len(cfg.Muxers), maxMuxers)
	}
	for _, m := range cfg.Muxers {
		if m == "" || len(m) > maxMuxerLen {
			return nil, fmt.Errorf("noise: invalid muxer ID %q", m)
		}
	}
	static, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("noise: generate static key: %w", err)
	}
	sig, err := cfg.Key.Sign(append([]byte(sigPrefix), static.PublicKey().Bytes()...))
	if err != nil {
		return nil, fmt.Errorf("noise: sign static key: %w", err)
	}
	pub := cfg.Key.Public()
	t := &Transport{
		localID: peer.IDFromPublicKey(pub),
		static:  static,
		muxers:  append([]string(nil), cfg.Muxers...),
	}
	t.payload = Payload{
		IdentityKey: peer.MarshalPublicKey(pub),
		IdentitySig: sig,
		Muxers:      t.muxers,
	}.Append(nil)
	if len(t.payload) > maxHandshakePayload {
		return nil, errors.New("noise: handshake payload too large")
	}
	return t, nil
}

// ID returns the protocol ID, "/noise".
func (t *Transport) ID() string { return ID }

// LocalPeer returns our peer ID.
func (t *Transport) LocalPeer() peer.ID { return t.localID }

// SecureOutbound runs the handshake as initiator over conn. If remote is
// not empty, the responder must prove that identity, otherwise the error
// wraps a *secure.PeerMismatchError. ctx bounds the handshake. On error the
// caller should close conn.
func (t *Transport) SecureOutbound(ctx context.Context, conn net.Conn, remote peer.ID) (*Conn, error) {
	return t.secure(ctx, conn, true, remote)
}

// SecureInbound runs the handshake as responder over conn and accepts any
// authenticated peer. ctx bounds the handshake. On error the caller should
// close conn.
func (t *Transport) SecureInbound(ctx context.Context, conn net.Conn) (*Conn, error) {
	return t.secure(ctx, conn, false, "")
}

func (t *Transport) secure(ctx context.Context, conn net.Conn, initiator bool, remote peer.ID) (*Conn, error) {
	var c *Conn
	err := secure.Handshake(ctx, conn, "noise", func() (err error) {
		c, err = t.handshake(conn, initiator, remote)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}
