package noise

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure"
)

// maxMsg is the largest Noise message; frames carry a 2-byte length.
const maxMsg = 65535

// maxHandshakePayload is the largest payload that fits message 2
// (e, encrypted s, payload and its tag).
const maxHandshakePayload = maxMsg - dhLen - (dhLen + tagLen) - tagLen

// handshake is the Noise XX HandshakeState for one connection.
type handshake struct {
	ss   symmetricState
	s, e *ecdh.PrivateKey
	re   *ecdh.PublicKey
	rs   *ecdh.PublicKey
	hdr  [2]byte
	bufp *[]byte // pooled message buffer
}

// dh runs X25519 and mixes the result into the chaining key. X25519 with
// a low-order remote point yields all zeros, which crypto/ecdh rejects.
func (hs *handshake) dh(priv *ecdh.PrivateKey, pub *ecdh.PublicKey) error {
	shared, err := priv.ECDH(pub)
	if err != nil {
		return fmt.Errorf("noise: %w", err)
	}
	hs.ss.mixKey(shared)
	clear(shared)
	return nil
}

func (hs *handshake) buf(n int) []byte {
	if hs.bufp == nil || cap(*hs.bufp) < n {
		hs.release()
		hs.bufp = getBuf(n)
	}
	return (*hs.bufp)[:n]
}

func (hs *handshake) release() {
	if hs.bufp != nil {
		putBuf(hs.bufp)
		hs.bufp = nil
	}
}

// writeMsg frames b[2:] (b[:2] is reserved for the length) and sends it.
func (hs *handshake) writeMsg(conn net.Conn, b []byte) error {
	binary.BigEndian.PutUint16(b, uint16(len(b)-2))
	if _, err := conn.Write(b); err != nil {
		return fmt.Errorf("noise: write handshake message: %w", err)
	}
	return nil
}

// readMsg reads one framed handshake message into the pooled buffer.
func (hs *handshake) readMsg(conn net.Conn) ([]byte, error) {
	if _, err := io.ReadFull(conn, hs.hdr[:]); err != nil {
		return nil, fmt.Errorf("noise: read handshake message: %w", err)
	}
	n := int(binary.BigEndian.Uint16(hs.hdr[:]))
	b := hs.buf(n)
	if _, err := io.ReadFull(conn, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("noise: read handshake message: %w", err)
	}
	return b, nil
}

func newPublic(b []byte) (*ecdh.PublicKey, error) {
	k, err := ecdh.X25519().NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("noise: %w", err)
	}
	return k, nil
}

// remoteInfo is what the peer proved in its payload.
type remoteInfo struct {
	id     peer.ID
	key    peer.PublicKey
	muxers []string
}

// checkPayload validates the peer's handshake payload against its static
// key hs.rs and the expected peer ID (if any).
func (hs *handshake) checkPayload(pl []byte, expected peer.ID) (remoteInfo, error) {
	var ri remoteInfo
	if len(pl) == 0 {
		return ri, errors.New("noise: empty handshake payload")
	}
	p, err := DecodePayload(pl)
	if err != nil {
		return ri, err
	}
	if len(p.IdentityKey) == 0 {
		return ri, errors.New("noise: handshake payload has no identity key")
	}
	// The payload lives in a pooled buffer: copy what outlives it.
	key, err := peer.UnmarshalPublicKey(append([]byte(nil), p.IdentityKey...))
	if err != nil {
		return ri, fmt.Errorf("noise: remote identity key: %w", err)
	}
	ri.id, ri.key, ri.muxers = peer.IDFromPublicKey(key), key, p.Muxers
	if expected != "" && ri.id != expected {
		return ri, fmt.Errorf("noise: %w", &secure.PeerMismatchError{Expected: expected, Actual: ri.id})
	}
	var msg [len(sigPrefix) + dhLen]byte
	copy(msg[:], sigPrefix)
	copy(msg[len(sigPrefix):], hs.rs.Bytes())
	if err := key.Verify(msg[:], p.IdentitySig); err != nil {
		return ri, fmt.Errorf("noise: static key signature of %s: %w", ri.id, err)
	}
	return ri, nil
}

// selectMuxer returns the first entry of the initiator's list that the
// responder also lists, or "".
func selectMuxer(initiator, responder []string) string {
	for _, a := range initiator {
		for _, b := range responder {
			if a == b {
				return a
			}
		}
	}
	return ""
}

func (t *Transport) handshake(conn net.Conn, initiator bool, expected peer.ID) (*Conn, error) {
	hs := &handshake{s: t.static}
	defer hs.release()
	hs.ss.init()
	var (
		ri  remoteInfo
		err error
	)
	if initiator {
		ri, err = hs.runInitiator(conn, t.payload, expected)
	} else {
		ri, err = hs.runResponder(conn, t.payload)
	}
	if err != nil {
		return nil, err
	}
	c1, c2 := hs.ss.split()
	c := &Conn{
		conn:      conn,
		local:     t.localID,
		remote:    ri.id,
		remoteKey: ri.key,
	}
	if initiator {
		c.send, c.recv = c1, c2
		c.muxer = selectMuxer(t.muxers, ri.muxers)
	} else {
		c.send, c.recv = c2, c1
		c.muxer = selectMuxer(ri.muxers, t.muxers)
	}
	return c, nil
}

// runInitiator: -> e; <- e, ee, s, es; -> s, se.
func (hs *handshake) runInitiator(conn net.Conn, payload []byte, expected peer.ID) (ri remoteInfo, err error) {
	ss := &hs.ss
	if hs.e, err = ecdh.X25519().GenerateKey(rand.Reader); err != nil {
		return ri, fmt.Errorf("noise: generate ephemeral key: %w", err)
	}

	// Message 1: e, empty payload.
	b := hs.buf(2 + dhLen)[:2]
	epub := hs.e.PublicKey().Bytes()
	b = append(b, epub...)
	ss.mixHash(epub)
	if b, err = ss.encryptAndHash(b, nil); err != nil {
		return ri, err
	}
	if err = hs.writeMsg(conn, b); err != nil {
		return ri, err
	}

	// Message 2: e, ee, s, es, payload.
	m, err := hs.readMsg(conn)
	if err != nil {
		return ri, err
	}
	if len(m) < dhLen+dhLen+tagLen+tagLen {
		return ri, fmt.Errorf("noise: handshake message 2 too short (%d bytes)", len(m))
	}
	if hs.re, err = newPublic(m[:dhLen]); err != nil {
		return ri, err
	}
	ss.mixHash(m[:dhLen])
	if err = hs.dh(hs.e, hs.re); err != nil {
		return ri, err
	}
	rs, err := ss.decryptAndHash(m[dhLen : 2*dhLen+tagLen])
	if err != nil {
		return ri, fmt.Errorf("noise: handshake message 2: %w", err)
	}
	if hs.rs, err = newPublic(rs); err != nil {
		return ri, err
	}
	if err = hs.dh(hs.e, hs.rs); err != nil {
		return ri, err
	}
	pl, err := ss.decryptAndHash(m[2*dhLen+tagLen:])
	if err != nil {
		return ri, fmt.Errorf("noise: handshake message 2: %w", err)
	}
	if ri, err = hs.checkPayload(pl, expected); err != nil {
		return ri, err
	}

	// Message 3: s, se, payload.
	b = hs.buf(2 + dhLen + tagLen + len(payload) + tagLen)[:2]
	if b, err = ss.encryptAndHash(b, hs.s.PublicKey().Bytes()); err != nil {
		return ri, err
	}
	if err = hs.dh(hs.s, hs.re); err != nil {
		return ri, err
	}
	if b, err = ss.encryptAndHash(b, payload); err != nil {
		return ri, err
	}
	return ri, hs.writeMsg(conn, b)
}

// runResponder: -> e; <- e, ee, s, es; -> s, se.
func (hs *handshake) runResponder(conn net.Conn, payload []byte) (ri remoteInfo, err error) {
	ss := &hs.ss
	// The ephemeral key does not depend on message 1: generate it while
	// the initiator is still producing and sending that message.
	if hs.e, err = ecdh.X25519().GenerateKey(rand.Reader); err != nil {
		return ri, fmt.Errorf("noise: generate ephemeral key: %w", err)
	}

	// Message 1: e, payload (empty for libp2p; mixed in, otherwise ignored).
	m, err := hs.readMsg(conn)
	if err != nil {
		return ri, err
	}
	if len(m) < dhLen {
		return ri, fmt.Errorf("noise: handshake message 1 too short (%d bytes)", len(m))
	}
	if hs.re, err = newPublic(m[:dhLen]); err != nil {
		return ri, err
	}
	ss.mixHash(m[:dhLen])
	if _, err = ss.decryptAndHash(m[dhLen:]); err != nil {
		return ri, err
	}

	// Message 2: e, ee, s, es, payload.
	b := hs.buf(2 + dhLen + dhLen + tagLen + len(payload) + tagLen)[:2]
	epub := hs.e.PublicKey().Bytes()
	b = append(b, epub...)
	ss.mixHash(epub)
	if err = hs.dh(hs.e, hs.re); err != nil {
		return ri, err
	}
	if b, err = ss.encryptAndHash(b, hs.s.PublicKey().Bytes()); err != nil {
		return ri, err
	}
	if err = hs.dh(hs.s, hs.re); err != nil {
		return ri, err
	}
	if b, err = ss.encryptAndHash(b, payload); err != nil {
		return ri, err
	}
	if err = hs.writeMsg(conn, b); err != nil {
		return ri, err
	}

	// Message 3: s, se, payload.
	if m, err = hs.readMsg(conn); err != nil {
		return ri, err
	}
	if len(m) < dhLen+tagLen+tagLen {
		return ri, fmt.Errorf("noise: handshake message 3 too short (%d bytes)", len(m))
	}
	rs, err := ss.decryptAndHash(m[:dhLen+tagLen])
	if err != nil {
		return ri, fmt.Errorf("noise: handshake message 3: %w", err)
	}
	if hs.rs, err = newPublic(rs); err != nil {
		return ri, err
	}
	if err = hs.dh(hs.e, hs.rs); err != nil {
		return ri, err
	}
	pl, err := ss.decryptAndHash(m[dhLen+tagLen:])
	if err != nil {
		return ri, fmt.Errorf("noise: handshake message 3: %w", err)
	}
	return hs.checkPayload(pl, "")
}
