package mux

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

func sessions(t *testing.T, cfg Config) (*Session, *Session) {
	t.Helper()
	return sessionsWith(t, cfg, cfg)
}

func sessionsWith(t *testing.T, ccfg, scfg Config) (*Session, *Session) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	dc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	lc := <-accepted
	client, err := Client(dc, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	server, err := Server(lc, scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestTransferBeyondWindow moves more than several windows' worth through
// one stream, so window updates must flow.
func TestTransferBeyondWindow(t *testing.T) {
	for _, window := range []uint32{0, InitialWindow, 4 << 20} {
		client, server := sessions(t, Config{MaxStreamWindow: window})
		data := make([]byte, 3<<20)
		rand.Read(data)
		s, err := client.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			s.Write(data)
			s.CloseWrite()
		}()
		r, err := server.AcceptStream()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("window %d: got %d bytes, %v", window, len(got), err)
		}
		r.Close()
		s.Close()
	}
}

func TestPingAnswered(t *testing.T) {
	client, server := sessions(t, Config{KeepAlive: -1})
	for _, s := range []*Session{client, server} {
		if rtt, err := s.Ping(); err != nil || rtt <= 0 {
			t.Fatalf("ping: %v, %v", rtt, err)
		}
	}
}

func TestResetUnblocksAndCloseEndsSession(t *testing.T) {
	client, server := sessions(t, Config{})
	s, err := client.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte{1})
	r, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 1))
		_, err = r.Read(make([]byte, 1))
		done <- err
	}()
	r.Reset()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read after reset succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reset did not unblock a read")
	}
	client.Close()
	select {
	case <-server.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("server did not notice the closed session")
	}
	if !server.IsClosed() {
		t.Error("IsClosed false after Done")
	}
}

func TestAcceptBacklogBounded(t *testing.T) {
	client, _ := sessionsWith(t, Config{}, Config{AcceptBacklog: 2})
	// Nobody accepts on the server: the third stream is refused with a
	// reset, so its read ends instead of hanging.
	var streams []*Stream
	for range 3 {
		s, err := client.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte{1})
		streams = append(streams, s)
	}
	streams[2].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := streams[2].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("stream beyond the backlog: read err = %v, want a reset", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
