package quic

import (
	"context"
	"io"
	"runtime"
	"sync"
	"testing"

	"github.com/mote-p2p/mote/transport"
)

// serveEcho accepts connections on l until it closes and echoes every
// stream of them; the returned func stops it and waits.
func serveEcho(b *testing.B, tr *Transport, l transport.Listener) func() {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				for {
					s, err := c.AcceptStream()
					if err != nil {
						return
					}
					wg.Go(func() {
						io.Copy(s, s)
						s.Close()
					})
				}
			})
		}
	})
	return func() {
		tr.Close()
		wg.Wait()
	}
}

// BenchmarkDialFirstStream times a fresh connection: dial (QUIC + TLS 1.3
// handshake), open a stream, echo one byte, close.
func BenchmarkDialFirstStream(b *testing.B) {
	a, d := newTransport(b), newTransport(b)
	l := listen(b, a, "/ip4/127.0.0.1/udp/0/quic-v1")
	defer serveEcho(b, a, l)()
	ctx := context.Background()
	buf := []byte{1}
	b.ReportAllocs()
	for b.Loop() {
		c, err := d.Dial(ctx, l.Multiaddr(), a.LocalPeer())
		if err != nil {
			b.Fatal(err)
		}
		s, err := c.OpenStream(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkThroughput sends 64 KiB writes on one stream to a reader that
// discards them.
func BenchmarkThroughput(b *testing.B) {
	a, d := newTransport(b), newTransport(b)
	l := listen(b, a, "/ip4/127.0.0.1/udp/0/quic-v1")
	ch := acceptAsync(l)
	ctx := context.Background()
	c, err := d.Dial(ctx, l.Multiaddr(), a.LocalPeer())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ac := <-ch
	done := make(chan int64, 1)
	go func() {
		s, err := ac.AcceptStream()
		if err != nil {
			done <- -1
			return
		}
		n, _ := io.Copy(io.Discard, s)
		s.Write([]byte{1}) // the count has arrived
		s.Close()
		done <- n
	}()
	s, err := c.OpenStream(ctx)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	s.CloseWrite()
	io.ReadFull(s, buf[:1])
	if n := <-done; n != int64(b.N)*int64(len(buf)) {
		b.Fatalf("received %d bytes of %d", n, int64(b.N)*int64(len(buf)))
	}
	s.Close()
}

// BenchmarkIdleConns measures what an idle connection costs: it holds 200
// connections between two transports of this process, each with one open
// stream, and reports the heap, goroutine-stack and goroutine growth per
// connection, both ends together. Run with -benchtime=1x.
func BenchmarkIdleConns(b *testing.B) {
	const n = 200
	for range b.N {
		a, d := newTransport(b), newTransport(b)
		l := listen(b, a, "/ip4/127.0.0.1/udp/0/quic-v1")
		// Warm up: sockets, pools and TLS state that every connection shares.
		c0, a0 := connect(b, d, l, a.LocalPeer())
		before, g0 := memNow()

		conns := make([]transport.Conn, 0, 2*n)
		streams := make([]transport.Stream, 0, 2*n)
		for range n {
			dc, ac := connect(b, d, l, a.LocalPeer())
			s, err := dc.OpenStream(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			s.Write([]byte{1})
			r, err := ac.AcceptStream()
			if err != nil {
				b.Fatal(err)
			}
			io.ReadFull(r, make([]byte, 1))
			conns = append(conns, dc, ac)
			streams = append(streams, s, r)
		}
		after, g1 := memNow()
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n, "heap-B/conn")
		b.ReportMetric(float64(after.StackInuse-before.StackInuse)/n, "stack-B/conn")
		b.ReportMetric(float64(g1-g0)/n, "goroutines/conn")
		runtime.KeepAlive(streams)
		for _, c := range conns {
			c.Close()
		}
		c0.Close()
		a0.Close()
		a.Close()
		d.Close()
	}
}

func memNow() (runtime.MemStats, int) {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m, runtime.NumGoroutine()
}
