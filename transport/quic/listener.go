package quic

import (
	"context"
	stdtls "crypto/tls"
	"fmt"
	"sync"

	quicgo "github.com/quic-go/quic-go"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// listener yields the connections quic-go has finished handshaking on one
// socket. It has no goroutine of its own: quic-go runs the handshakes, and
// Accept does the little left to do (reading the peer's key).
type listener struct {
	t  *Transport
	s  *socket
	ql *quicgo.Listener
	// verified returns the client key the handshake checked.
	verified func(stdtls.ConnectionState) peer.PublicKey
	done     chan struct{} // closed by Close
	once     sync.Once
}

var _ transport.Listener = (*listener)(nil)

// Accept waits for the next authenticated connection. Failed handshakes
// never surface here.
func (l *listener) Accept() (transport.Conn, error) {
	for {
		qc, err := l.ql.Accept(context.Background())
		if err != nil {
			if l.isClosed() {
				return nil, transport.ErrListenerClosed
			}
			return nil, fmt.Errorf("quic: accept: %w", err)
		}
		accepted(qc)
		if l.isClosed() {
			qc.CloseWithError(0, "")
			return nil, transport.ErrListenerClosed
		}
		c, err := l.t.setup(qc, l.s, false, "", nil, l.verified(qc.ConnectionState().TLS))
		if err != nil {
			l.t.log.Debug("inbound connection dropped", "remote", qc.RemoteAddr(), "err", err)
			continue
		}
		return c, nil
	}
}

func (l *listener) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// Close stops accepting: handshakes in progress are refused and connections
// not yet accepted are closed. Accepted connections live on; the socket is
// closed once the last of them ends, unless it also serves for dialing.
func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.ql.Close() // waits for handshakes in progress to end
		for {
			qc, err := l.ql.Accept(context.Background())
			if err != nil {
				break
			}
			qc.CloseWithError(0, "")
		}
		t := l.t
		t.mu.Lock()
		l.s.ln = nil
		idle := t.retireLocked(l.s)
		t.mu.Unlock()
		if idle {
			l.s.close()
		}
	})
	return nil
}

// Multiaddr is the bound address, /ip4|ip6/<ip>/udp/<port>/quic-v1.
func (l *listener) Multiaddr() ma.Multiaddr { return l.s.maddr }
