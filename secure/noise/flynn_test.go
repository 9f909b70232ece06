package noise

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	fnoise "github.com/flynn/noise"

	"github.com/mote-p2p/mote/peer"
)

// The peer in these tests is built on github.com/flynn/noise, an
// independent Noise implementation, plus the libp2p payload rules. If our
// transcript (h, ck, message layout) differed from standard Noise XX in
// any way, an AEAD check would fail.

var flynnSuite = fnoise.NewCipherSuite(fnoise.DH25519, fnoise.CipherChaChaPoly, fnoise.HashSHA256)

type flynnSession struct {
	conn       net.Conn
	send, recv *fnoise.CipherState
	remote     peer.ID
	muxers     []string
}

func flynnRead(conn net.Conn) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	_, err := io.ReadFull(conn, b)
	return b, err
}

func flynnWrite(conn net.Conn, m []byte) error {
	_, err := conn.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(m))), m...))
	return err
}

// flynnHandshake runs libp2p Noise with flynn/noise over conn.
func flynnHandshake(conn net.Conn, key peer.PrivateKey, muxers []string, initiator bool) (*flynnSession, error) {
	static, err := fnoise.DH25519.GenerateKeypair(rand.Reader)
	if err != nil {
		return nil, err
	}
	sig, err := key.Sign(append([]byte(sigPrefix), static.Public...))
	if err != nil {
		return nil, err
	}
	payload := Payload{IdentityKey: peer.MarshalPublicKey(key.Public()), IdentitySig: sig, Muxers: muxers}.Append(nil)
	hs, err := fnoise.NewHandshakeState(fnoise.Config{
		CipherSuite:   flynnSuite,
		Random:        rand.Reader,
		Pattern:       fnoise.HandshakeXX,
		Initiator:     initiator,
		StaticKeypair: static,
	})
	if err != nil {
		return nil, err
	}
	s := &flynnSession{conn: conn}
	check := func(pl []byte) error {
		p, err := DecodePayload(pl)
		if err != nil {
			return err
		}
		pub, err := peer.UnmarshalPublicKey(p.IdentityKey)
		if err != nil {
			return err
		}
		if err := pub.Verify(append([]byte(sigPrefix), hs.PeerStatic()...), p.IdentitySig); err != nil {
			return err
		}
		s.remote, s.muxers = peer.IDFromPublicKey(pub), p.Muxers
		return nil
	}
	var cs1, cs2 *fnoise.CipherState
	if initiator {
		m, _, _, err := hs.WriteMessage(nil, nil)
		if err != nil {
			return nil, err
		}
		if err := flynnWrite(conn, m); err != nil {
			return nil, err
		}
		if m, err = flynnRead(conn); err != nil {
			return nil, err
		}
		pl, _, _, err := hs.ReadMessage(nil, m)
		if err != nil {
			return nil, err
		}
		if err := check(pl); err != nil {
			return nil, err
		}
		if m, cs1, cs2, err = hs.WriteMessage(nil, payload); err != nil {
			return nil, err
		}
		if err := flynnWrite(conn, m); err != nil {
			return nil, err
		}
		s.send, s.recv = cs1, cs2
	} else {
		m, err := flynnRead(conn)
		if err != nil {
			return nil, err
		}
		if _, _, _, err = hs.ReadMessage(nil, m); err != nil {
			return nil, err
		}
		if m, _, _, err = hs.WriteMessage(nil, payload); err != nil {
			return nil, err
		}
		if err := flynnWrite(conn, m); err != nil {
			return nil, err
		}
		if m, err = flynnRead(conn); err != nil {
			return nil, err
		}
		pl, cs1, cs2, err := hs.ReadMessage(nil, m)
		if err != nil {
			return nil, err
		}
		if err := check(pl); err != nil {
			return nil, err
		}
		s.send, s.recv = cs2, cs1
	}
	if s.send == nil || s.recv == nil {
		return nil, errors.New("flynn: handshake did not split")
	}
	return s, nil
}

func (s *flynnSession) writeData(p []byte) error {
	for len(p) > 0 {
		n := min(len(p), MaxPlaintext)
		ct, err := s.send.Encrypt(nil, nil, p[:n])
		if err != nil {
			return err
		}
		if err := flynnWrite(s.conn, ct); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

func (s *flynnSession) readData(n int) ([]byte, error) {
	var out []byte
	for len(out) < n {
		m, err := flynnRead(s.conn)
		if err != nil {
			return nil, err
		}
		if len(m) > maxMsg {
			return nil, errors.New("frame too big")
		}
		pt, err := s.recv.Decrypt(nil, nil, m)
		if err != nil {
			return nil, err
		}
		out = append(out, pt...)
	}
	return out, nil
}

func exchangeWithFlynn(t *testing.T, c *Conn, f *flynnSession) {
	t.Helper()
	data := randBytes(200_000)
	errc := make(chan error, 1)
	go func() { _, err := c.Write(data); errc <- err }()
	got, err := f.readData(len(data))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("flynn read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	data = randBytes(150_000)
	go func() { errc <- f.writeData(data) }()
	got = make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("our read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestFlynnResponder(t *testing.T) {
	ours := newTransport(t, "/yamux/1.0.0")
	theirKey := newKey(t)
	for _, conns := range []func(testing.TB) (net.Conn, net.Conn){pipePair, tcpPair} {
		ci, cr := conns(t)
		type res struct {
			s   *flynnSession
			err error
		}
		ch := make(chan res, 1)
		go func() {
			s, err := flynnHandshake(cr, theirKey, []string{"/yamux/1.0.0"}, false)
			ch <- res{s, err}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := ours.SecureOutbound(ctx, ci, peer.IDFromPublicKey(theirKey.Public()))
		cancel()
		r := <-ch
		if err != nil || r.err != nil {
			t.Fatalf("ours %v, flynn %v", err, r.err)
		}
		if r.s.remote != ours.LocalPeer() || len(r.s.muxers) != 1 || c.EarlyMuxer() != "/yamux/1.0.0" {
			t.Fatalf("flynn saw %s %v; we chose %q", r.s.remote, r.s.muxers, c.EarlyMuxer())
		}
		exchangeWithFlynn(t, c, r.s)
	}
}

func TestFlynnInitiator(t *testing.T) {
	ours := newTransport(t)
	theirKey := newKey(t)
	for _, conns := range []func(testing.TB) (net.Conn, net.Conn){pipePair, tcpPair} {
		ci, cr := conns(t)
		type res struct {
			s   *flynnSession
			err error
		}
		ch := make(chan res, 1)
		go func() {
			s, err := flynnHandshake(ci, theirKey, nil, true)
			ch <- res{s, err}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := ours.SecureInbound(ctx, cr)
		cancel()
		r := <-ch
		if err != nil || r.err != nil {
			t.Fatalf("ours %v, flynn %v", err, r.err)
		}
		if r.s.remote != ours.LocalPeer() || c.RemotePeer() != peer.IDFromPublicKey(theirKey.Public()) || c.EarlyMuxer() != "" {
			t.Fatal("identities wrong")
		}
		exchangeWithFlynn(t, c, r.s)
	}
}
