// Package ping implements the libp2p ping protocol (/ipfs/ping/1.0.0): the
// opener writes 32 random bytes, the responder echoes them, repeated on one
// stream as often as the opener likes. It measures round-trip time and
// keeps idle connections alive.
//
// Timeouts follow go-libp2p (and so Kubo): a responder drops the stream if
// no payload arrives within IdleTimeout of the previous echo, and in any
// case StreamTimeout after it started serving. Openers that ping for longer
// must open a fresh stream, as they must with a go peer.
package ping

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ID is the protocol ID, as negotiated with multistream-select.
const ID = "/ipfs/ping/1.0.0"

// PayloadSize is the size of every ping payload; the protocol has no
// framing, so both sides rely on this fixed size.
const PayloadSize = 32

// Responder time limits, the values go-libp2p uses (pingTimeout and
// pingDuration), so a stream that a go responder would keep open is kept
// open by us and vice versa.
const (
	// IdleTimeout is how long Serve waits for the next payload after an
	// echo (or for the first one).
	IdleTimeout = 10 * time.Second
	// StreamTimeout is how long Serve serves one stream in total.
	StreamTimeout = 30 * time.Second
)

// ErrMismatch is wrapped by Once when the echo differs from the payload
// sent: the peer is broken or not speaking ping.
var ErrMismatch = errors.New("ping: echoed payload differs from the payload sent")

// Stream is what Serve needs from a muxed stream: reading with a deadline
// (the idle and total limits) and closing. If the stream also has
// SetWriteDeadline (as net.Conn and our muxer streams do), Serve uses it
// so a peer that stops reading cannot block an echo forever.
type Stream interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
}

// writeDeadliner is the optional write-side deadline of a Stream.
type writeDeadliner interface {
	SetWriteDeadline(time.Time) error
}

// Serve answers a ping stream: it echoes each PayloadSize-byte payload until
// the peer ends the stream, then closes s. It returns nil when the peer
// ends the stream cleanly between payloads, and an error (having closed s)
// when a payload is cut short, a time limit is hit, or I/O fails.
func Serve(s Stream) error {
	return serve(s, IdleTimeout, StreamTimeout)
}

// serve is Serve with adjustable limits, so tests can exercise them
// without waiting seconds.
func serve(s Stream, idle, total time.Duration) (err error) {
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("ping: close stream: %w", cerr)
		}
	}()
	end := time.Now().Add(total)
	if wd, ok := s.(writeDeadliner); ok {
		// Best effort: a stream that cannot take a deadline is already
		// closed or reset, which the first read reports.
		_ = wd.SetWriteDeadline(end)
	}
	var buf [PayloadSize]byte
	for round := 1; ; round++ {
		deadline, limit := time.Now().Add(idle), "idle limit "+idle.String()
		if deadline.After(end) {
			deadline, limit = end, "stream limit "+total.String()
		}
		// Some streams (net.Pipe among them) refuse deadlines once the
		// peer has closed; the read then returns at once, and a clean
		// end must still count as success.
		derr := s.SetReadDeadline(deadline)
		n, err := io.ReadFull(s, buf[:])
		switch {
		case err == io.EOF:
			return nil
		case derr != nil:
			return fmt.Errorf("ping: set read deadline for payload %d: %w", round, derr)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("ping: stream ended after %d of %d bytes of payload %d: %w", n, PayloadSize, round, err)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("ping: waiting for payload %d: %s reached: %w", round, limit, err)
		case err != nil:
			return fmt.Errorf("ping: read payload %d: %w", round, err)
		}
		if _, err := s.Write(buf[:]); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("ping: echo payload %d: stream limit %s reached: %w", round, total, err)
			}
			return fmt.Errorf("ping: echo payload %d: %w", round, err)
		}
	}
}

// Once sends one ping on s and waits for the echo, returning the round-trip
// time. rnd supplies the payload (crypto/rand if nil); randomness makes a
// stale or forged echo detectable. Once sets no deadline: the caller bounds
// it with deadlines on s or by resetting s. After the last ping the caller
// close-writes s, as the protocol expects of the opener.
func Once(s io.ReadWriter, rnd io.Reader) (time.Duration, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var out, in [PayloadSize]byte
	if _, err := io.ReadFull(rnd, out[:]); err != nil {
		return 0, fmt.Errorf("ping: generate payload: %w", err)
	}
	start := time.Now()
	if _, err := s.Write(out[:]); err != nil {
		return 0, fmt.Errorf("ping: send payload: %w", err)
	}
	if n, err := io.ReadFull(s, in[:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, fmt.Errorf("ping: read echo (%d of %d bytes): %w", n, PayloadSize, err)
	}
	rtt := time.Since(start)
	if in != out {
		return 0, ErrMismatch
	}
	return rtt, nil
}
