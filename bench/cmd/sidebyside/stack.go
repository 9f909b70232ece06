package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"sync/atomic"
)

// The two stacks' names, as in flags, JSON and the table.
const (
	stackMote   = "mote"
	stackLibp2p = "go-libp2p"
)

// Benchmark protocols served by the listener A of either stack.
const (
	echoProto = "/mote-bench/echo/1.0.0" // echoes until EOF
	sinkProto = "/mote-bench/sink/1.0.0" // sends a ready byte, discards, then replies with the byte count
	holdProto = "/mote-bench/hold/1.0.0" // echoes one byte, then idles until EOF
)

// listenAddrs are A's listen addresses per transport: one transport at a
// time, so that every dial to A goes over the transport being measured.
var listenAddrs = map[string]string{
	"tcp":  "/ip4/127.0.0.1/tcp/0",
	"quic": "/ip4/127.0.0.1/udp/0/quic-v1",
}

// stack is one networking stack under test. The implementations live in
// stack_mote.go and stack_libp2p.go; build tags leave one of them out of
// the child processes' binaries, so a child links only its own stack.
type stack interface {
	// listen starts the listener A on transport tr ("tcp" or "quic"),
	// serving the echo, sink and hold protocols, with connection limits
	// lifted so that it can hold thousands of connections.
	listen(tr string) (server, error)
	// newPeer creates a dialing node with a fresh identity, for transport tr.
	newPeer(tr string) (client, error)
}

// server is a listener A.
type server interface {
	id() string
	addr() string     // the one listen multiaddr
	conns() int       // open connections
	held() int64      // hold streams that have echoed and whose connection is identified
	accepted() uint64 // inbound connections established so far
	close()
}

// client is one dialing node of B.
type client interface {
	// connect dials A over the client's transport and waits for identify.
	connect(ctx context.Context, id, addr string) error
	// open opens a stream for proto on the connection to A.
	open(ctx context.Context, proto string) (stream, error)
	// disconnect closes the connection to A.
	disconnect() error
	close() error
}

// stream is what both stacks' streams have in common.
type stream interface {
	io.ReadWriter
	CloseWrite() error
	Close() error
	Reset() error
}

// stacks holds the stacks compiled into this binary, by name.
var stacks = map[string]stack{}

func register(name string, s stack) { stacks[name] = s }

func stackNames() []string {
	var names []string
	for n := range stacks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ---------------------------------------------------------------------------
// Handlers of A, shared by both stacks.

func serveEcho(s stream) {
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

func serveSink(s stream) {
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

// serveHold echoes one byte, waits until the connection is identified,
// counts itself in held, and idles in a read until the stream ends.
func serveHold(s stream, identified <-chan struct{}, held *atomic.Int64) {
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err != nil {
		s.Reset()
		return
	}
	if _, err := s.Write(b[:]); err != nil {
		s.Reset()
		return
	}
	<-identified
	held.Add(1)
	defer held.Add(-1)
	s.Read(b[:])
	s.Close()
}

// echoByte writes one byte and reads it back.
func echoByte(s stream) error {
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
