// Package secure holds what every security protocol (Noise, TLS) shares:
// the secured-connection seam and the error for a peer that is not the one
// that was dialed.
package secure

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

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

// pastDeadline unblocks I/O when a handshake's context is cancelled.
var pastDeadline = time.Unix(1, 0)

// Handshake runs handshake on conn within ctx: ctx's deadline becomes
// conn's, and a cancellation interrupts blocked I/O by moving the deadline
// into the past. No goroutine is started unless ctx fires. The deadline is
// cleared afterwards; conn is never closed (the caller owns it). name
// prefixes errors ("noise", "tls"). A failure caused by ctx wraps
// ctx.Err() as well as the I/O error.
func Handshake(ctx context.Context, conn net.Conn, name string, handshake func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: handshake: %w", name, err)
	}
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline {
		if err := conn.SetDeadline(dl); err != nil {
			return fmt.Errorf("%s: set deadline: %w", name, err)
		}
	}
	var (
		mu   sync.Mutex
		done bool
		stop = func() bool { return true }
	)
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() {
			mu.Lock()
			if !done {
				conn.SetDeadline(pastDeadline)
			}
			mu.Unlock()
		})
	}

	err := handshake()

	interrupted := !stop()
	mu.Lock()
	done = true
	mu.Unlock()
	if hasDeadline || interrupted {
		if derr := conn.SetDeadline(time.Time{}); derr != nil && err == nil {
			err = fmt.Errorf("%s: clear deadline: %w", name, derr)
		}
	}
	if err != nil {
		cerr := ctx.Err()
		if cerr == nil && hasDeadline && isTimeout(err) && !time.Now().Before(dl) {
			cerr = context.DeadlineExceeded // the conn noticed before ctx did
		}
		if cerr != nil {
			return fmt.Errorf("%s: handshake: %w (%w)", name, cerr, err)
		}
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
