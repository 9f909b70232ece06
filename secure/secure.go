// Package secure holds what every security protocol (Noise, TLS) shares:
// the secured-connection seam and the error for a peer that is not the one
// that was dialed.
package secure

import (
	"fmt"
	"net"

	"github.com/mote-p2p/mote/peer"
)

// Conn is a connection whose remote peer has been authenticated. Reads and
// writes carry plaintext; the implementation encrypts.
type Conn interface {
	net.Conn
	// LocalPeer is our own peer ID.
	LocalPeer() peer.ID
	// RemotePeer is the authenticated peer ID of the other side.
	RemotePeer() peer.ID
	// RemotePublicKey is the other side's identity key.
	RemotePublicKey() peer.PublicKey
	// EarlyMuxer is the stream muxer agreed inside the handshake
	// (Noise extensions or TLS ALPN), or "" when a multistream round is needed.
	EarlyMuxer() string
}

// PeerMismatchError reports that the authenticated remote peer is not the
// one the dialer expected.
type PeerMismatchError struct {
	Expected peer.ID
	Actual   peer.ID
}

func (e *PeerMismatchError) Error() string {
	return fmt.Sprintf("peer ID mismatch: dialed %s, remote is %s", e.Expected, e.Actual)
}
