package mux

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
)

// splitConn is a connection with WriteSplit, as noise.Conn has: it sends
// head and body as two writes, so that a payload written apart from its
// frame header must still arrive in order and whole.
type splitConn struct {
	net.Conn
	splits atomic.Int64
}

func (c *splitConn) WriteSplit(head, body []byte) (int, error) {
	c.splits.Add(1)
	if _, err := c.Conn.Write(head); err != nil {
		return 0, err
	}
	return c.Conn.Write(body)
}

// splitPair is a TCP pair whose ends both have WriteSplit.
func splitPair(t testing.TB) (net.Conn, net.Conn) {
	a, b := tcpPair(t)
	return &splitConn{Conn: a}, &splitConn{Conn: b}
}

// TestSplitWrites: large payloads go out with WriteSplit, small ones
// behind their header in one write, and both arrive intact.
func TestSplitWrites(t *testing.T) {
	a, b := splitPair(t)
	client, err := Client(a, Config{})
	if err != nil {
		t.Fatal(err)
	}
	server, err := Server(b, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	server.SetStreamHandler(func(s *Stream) {
		go func() { io.Copy(s, s); s.Close() }()
	})
	for _, size := range []int{10, splitMin - 1, splitMin, 300 << 10} {
		before := a.(*splitConn).splits.Load()
		st, err := client.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte{byte(size)}, size)
		if _, err := st.Write(data); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, size)
		if _, err := io.ReadFull(st, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: echo differs", size)
		}
		st.Close()
		split := a.(*splitConn).splits.Load() > before
		if want := size >= splitMin; split != want {
			t.Errorf("%d bytes: written with WriteSplit %v, want %v", size, split, want)
		}
	}
}
