package fuzz

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure/noise"
)

func FuzzNoisePayload(f *testing.F) {
	key, err := peer.GenerateEd25519(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add(noise.Payload{
		IdentityKey: peer.MarshalPublicKey(key.Public()),
		IdentitySig: bytes.Repeat([]byte{1}, 64),
		Muxers:      []string{"/yamux/1.0.0", "/mplex/6.7.0"},
	}.Append(nil))
	f.Add([]byte{0x22, 6, 0x0a, 1, 0, 0x12, 1, 'x'})
	f.Add([]byte{0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := noise.DecodePayload(b)
		if err != nil {
			return
		}
		if len(p.Muxers) > 100 {
			t.Fatalf("%d muxers accepted", len(p.Muxers))
		}
		for _, m := range p.Muxers {
			if len(m) > 1024 {
				t.Fatalf("muxer of %d bytes accepted", len(m))
			}
		}
		// Re-encoding is canonical and decodes to the same payload.
		enc := p.Append(nil)
		q, err := noise.DecodePayload(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !bytes.Equal(p.IdentityKey, q.IdentityKey) || !bytes.Equal(p.IdentitySig, q.IdentitySig) ||
			strings.Join(p.Muxers, "\n") != strings.Join(q.Muxers, "\n") || len(p.Muxers) != len(q.Muxers) {
			t.Fatalf("round trip: %+v != %+v", p, q)
		}
		if !bytes.Equal(q.Append(nil), enc) {
			t.Fatal("encoding not stable")
		}
	})
}

// noiseFuzzConn returns the fuzz input on Read (then EOF) and discards
// writes.
type noiseFuzzConn struct{ r *bytes.Reader }

func (c noiseFuzzConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c noiseFuzzConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c noiseFuzzConn) Close() error                     { return nil }
func (c noiseFuzzConn) LocalAddr() net.Addr              { return noiseFuzzAddr{} }
func (c noiseFuzzConn) RemoteAddr() net.Addr             { return noiseFuzzAddr{} }
func (c noiseFuzzConn) SetDeadline(time.Time) error      { return nil }
func (c noiseFuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c noiseFuzzConn) SetWriteDeadline(time.Time) error { return nil }

type noiseFuzzAddr struct{}

func (noiseFuzzAddr) Network() string { return "fuzz" }
func (noiseFuzzAddr) String() string  { return "fuzz" }

func FuzzNoiseHandshakeResponder(f *testing.F) {
	key, err := peer.GenerateEd25519(nil)
	if err != nil {
		f.Fatal(err)
	}
	tr, err := noise.New(noise.Config{Key: key, Muxers: []string{"/yamux/1.0.0"}})
	if err != nil {
		f.Fatal(err)
	}
	msg1 := append([]byte{0, 32}, bytes.Repeat([]byte{9}, 32)...)
	f.Add([]byte{})
	f.Add([]byte{0, 0})
	f.Add(msg1)
	f.Add(append(append([]byte{}, msg1...), 0, 64))
	f.Add(append(append([]byte{}, msg1...), append([]byte{0, 100}, make([]byte, 100)...)...))
	f.Add(append([]byte{0xff, 0xff}, make([]byte, 300)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := tr.SecureInbound(ctx, noiseFuzzConn{bytes.NewReader(b)})
		if err == nil || c != nil {
			t.Fatal("handshake succeeded on fuzz input")
		}
	})
}
