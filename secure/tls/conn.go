package tls

import (
	stdtls "crypto/tls"
	"net"
	"time"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure"
)

// Conn is an established libp2p TLS session over a stream connection. It
// is a thin wrapper around crypto/tls's Conn; besides that it keeps only
// the peer IDs, the remote host key and the early muxer. Read and Write
// may be called concurrently with each other.
type Conn struct {
	tc        *stdtls.Conn
	local     peer.ID
	remote    peer.ID
	remoteKey peer.PublicKey
	muxer     string
}

var _ secure.Conn = (*Conn)(nil)

// LocalPeer returns our peer ID.
func (c *Conn) LocalPeer() peer.ID { return c.local }

// RemotePeer returns the authenticated peer ID of the other side.
func (c *Conn) RemotePeer() peer.ID { return c.remote }

// RemotePublicKey returns the other side's host key.
func (c *Conn) RemotePublicKey() peer.PublicKey { return c.remoteKey }

// EarlyMuxer returns the muxer agreed through ALPN, or "" when ALPN
// settled on "libp2p" (or nothing): the muxer is then negotiated with
// multistream-select inside the session.
func (c *Conn) EarlyMuxer() string { return c.muxer }

// ConnectionState returns the TLS session's details.
func (c *Conn) ConnectionState() stdtls.ConnectionState { return c.tc.ConnectionState() }

// Read reads decrypted data.
func (c *Conn) Read(b []byte) (int, error) { return c.tc.Read(b) }

// Write encrypts and writes b.
func (c *Conn) Write(b []byte) (int, error) { return c.tc.Write(b) }

// Close sends a close_notify alert and closes the underlying connection.
func (c *Conn) Close() error { return c.tc.Close() }

// LocalAddr returns the underlying connection's local address.
func (c *Conn) LocalAddr() net.Addr { return c.tc.LocalAddr() }

// RemoteAddr returns the underlying connection's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.tc.RemoteAddr() }

// SetDeadline sets the read and write deadlines. After a Write times out
// the TLS session is unusable for writing (crypto/tls semantics).
func (c *Conn) SetDeadline(t time.Time) error { return c.tc.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.tc.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.tc.SetWriteDeadline(t) }
