package noise

import (
	"context"
	"io"
	"net"
	"testing"
)

func BenchmarkHandshake(b *testing.B) {
	ti, tr := newTransport(b, "/yamux/1.0.0"), newTransport(b, "/yamux/1.0.0")
	ctx := context.Background()
	expect := tr.LocalPeer()
	b.ReportAllocs()
	for b.Loop() {
		ci, cr := net.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := tr.SecureInbound(ctx, cr)
			done <- err
		}()
		if _, err := ti.SecureOutbound(ctx, ci, expect); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		ci.Close()
		cr.Close()
	}
}

// BenchmarkHandshakeFlynnBaseline runs the same handshake with flynn/noise
// on both sides, generating and signing a static key per handshake as
// go-libp2p does: a reference point for BenchmarkHandshake.
func BenchmarkHandshakeFlynnBaseline(b *testing.B) {
	ki, kr := newKey(b), newKey(b)
	b.ReportAllocs()
	for b.Loop() {
		ci, cr := net.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := flynnHandshake(cr, kr, []string{"/yamux/1.0.0"}, false)
			done <- err
		}()
		if _, err := flynnHandshake(ci, ki, []string{"/yamux/1.0.0"}, true); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		ci.Close()
		cr.Close()
	}
}

func benchThroughput(b *testing.B, ci, cr net.Conn, size int) {
	ti, tr := newTransport(b), newTransport(b)
	a, c := mustSecure(b, ti, tr, ci, cr)
	buf := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan error, 1)
	go func() {
		rbuf := make([]byte, size)
		_, err := io.ReadFull(struct{ io.Reader }{c}, make([]byte, 0))
		for i := 0; i < b.N && err == nil; i++ {
			_, err = io.ReadFull(c, rbuf)
		}
		done <- err
	}()
	for range b.N {
		if _, err := a.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

func BenchmarkThroughput(b *testing.B) {
	ci, cr := tcpPair(b)
	benchThroughput(b, ci, cr, 64<<10)
}

func BenchmarkThroughputPipe(b *testing.B) {
	ci, cr := pipePair(b)
	benchThroughput(b, ci, cr, 64<<10)
}

func BenchmarkThroughputSmallWrites(b *testing.B) {
	ci, cr := tcpPair(b)
	benchThroughput(b, ci, cr, 1<<10)
}

func BenchmarkHandshakeTCP(b *testing.B) {
	ti, tr := newTransport(b, "/yamux/1.0.0"), newTransport(b, "/yamux/1.0.0")
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, err = tr.SecureInbound(ctx, c)
			c.Close()
			done <- err
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ti.SecureOutbound(ctx, c, tr.LocalPeer()); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
