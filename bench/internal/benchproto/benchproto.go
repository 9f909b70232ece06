// Package benchproto holds the benchmark protocols both stacks serve (mote
// and go-libp2p), so that the Go benchmarks and sidebyside measure the
// same handlers.
package benchproto

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync/atomic"
)

// Protocol IDs of the benchmark handlers.
const (
	Echo = "/mote-bench/echo/1.0.0" // echoes until EOF
	Sink = "/mote-bench/sink/1.0.0" // sends a ready byte, discards, then replies with the byte count
	Hold = "/mote-bench/hold/1.0.0" // echoes one byte, then idles until EOF
)

// Stream is what both stacks' streams have in common.
type Stream interface {
	io.ReadWriter
	CloseWrite() error
	Close() error
	Reset() error
}

// ServeEcho writes back what it reads until EOF.
func ServeEcho(s Stream) {
	var buf [512]byte
	for {
		n, err := s.Read(buf[:])
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				s.Reset()
				return
			}
		}
		if err != nil {
			if err == io.EOF {
				s.Close()
			} else {
				s.Reset()
			}
			return
		}
	}
}

// ServeSink sends a ready byte, discards everything until EOF, then
// replies with the byte count (8 bytes, big-endian).
func ServeSink(s Stream) {
	if _, err := s.Write([]byte{1}); err != nil { // ready
		s.Reset()
		return
	}
	buf := make([]byte, 64<<10)
	var total uint64
	for {
		n, err := s.Read(buf)
		total += uint64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			s.Reset()
			return
		}
	}
	var cnt [8]byte
	binary.BigEndian.PutUint64(cnt[:], total)
	if _, err := s.Write(cnt[:]); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

// ServeHold echoes one byte, waits for identified (if not nil), counts
// itself in held, and idles in a read until the stream ends.
func ServeHold(s Stream, identified <-chan struct{}, held *atomic.Int64) {
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err != nil {
		s.Reset()
		return
	}
	if _, err := s.Write(b[:]); err != nil {
		s.Reset()
		return
	}
	if identified != nil {
		<-identified
	}
	held.Add(1)
	defer held.Add(-1)
	s.Read(b[:])
	s.Close()
}

// EchoByte writes one byte and reads it back.
func EchoByte(s io.ReadWriter) error {
	b := [1]byte{0x2a}
	if _, err := s.Write(b[:]); err != nil {
		return fmt.Errorf("echo write: %w", err)
	}
	if _, err := io.ReadFull(s, b[:]); err != nil {
		return fmt.Errorf("echo read: %w", err)
	}
	if b[0] != 0x2a {
		return fmt.Errorf("echo: got %#x", b[0])
	}
	return nil
}

// FinishSink half-closes a sink stream and reads the byte count.
func FinishSink(s Stream) (uint64, error) {
	if err := s.CloseWrite(); err != nil {
		return 0, fmt.Errorf("sink close write: %w", err)
	}
	var cnt [8]byte
	if _, err := io.ReadFull(s, cnt[:]); err != nil {
		return 0, fmt.Errorf("sink count: %w", err)
	}
	s.Close()
	return binary.BigEndian.Uint64(cnt[:]), nil
}
