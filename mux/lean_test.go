package mux

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// waitGoroutines waits until runtime.NumGoroutine() ≤ want, which
// short-lived goroutines (control-frame flushes, timer callbacks) reach
// once they are done. It fails if the count stays above.
func waitGoroutines(t testing.TB, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// At most: goroutines left over by earlier tests may still be
		// ending, which only lowers the count.
		n := runtime.NumGoroutine()
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want %d\n%s", n, want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// settledGoroutines waits for goroutines left over by earlier tests (peer
// implementations, echo loops) to end: it returns the count once it has
// not changed for 100 ms.
func settledGoroutines() int {
	n, since := runtime.NumGoroutine(), time.Now()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if m := runtime.NumGoroutine(); m != n {
			n, since = m, time.Now()
		} else if time.Since(since) > 100*time.Millisecond {
			break
		}
	}
	return n
}

// idlePair sets up a session pair the way the node uses it (stream
// handler, keepalive on) with one open, idle stream that has carried data
// both ways.
func idlePair(t testing.TB, pair func(testing.TB) (net.Conn, net.Conn), cfg Config) (*Session, *Session, error) {
	client, server := sessionsOver(t, pair, cfg, cfg)
	got := make(chan *Stream, 1)
	server.SetStreamHandler(func(s *Stream) { got <- s })
	s, err := client.OpenStream(context.Background())
	if err != nil {
		return nil, nil, err
	}
	if _, err := s.Write([]byte("ping")); err != nil {
		return nil, nil, err
	}
	r := <-got
	buf := make([]byte, 4)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, nil, err
	}
	if _, err := r.Write(buf); err != nil {
		return nil, nil, err
	}
	if _, err := io.ReadFull(s, buf); err != nil {
		return nil, nil, err
	}
	// Round trips both ways flush every queued control frame.
	if _, err := client.Ping(); err != nil {
		return nil, nil, err
	}
	if _, err := server.Ping(); err != nil {
		return nil, nil, err
	}
	return client, server, nil
}

// TestGoroutinesPerSession: an idle session runs exactly one goroutine,
// its receive loop, and none once it has ended.
func TestGoroutinesPerSession(t *testing.T) {
	forLinks(t, func(t *testing.T, pair func(testing.TB) (net.Conn, net.Conn)) {
		const n = 50
		before := settledGoroutines()
		var all []*Session
		for range n {
			c, s, err := idlePair(t, pair, Config{KeepAlive: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, c, s)
		}
		waitGoroutines(t, before+2*n)
		for _, s := range all {
			s.Close()
		}
		for _, s := range all {
			waitDone(t, s)
		}
		waitGoroutines(t, before)
	})
}

// TestIdleHoldsNoBuffers: an idle stream and session keep no receive
// chunk and no control queue.
func TestIdleHoldsNoBuffers(t *testing.T) {
	client, server, err := idlePair(t, tcpPair, Config{KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Session{client, server} {
		s.mu.Lock()
		for _, st := range s.streams {
			st.mu.Lock()
			if len(st.chunks) != 0 || st.buffered != 0 {
				t.Errorf("idle stream %d holds %d chunks", st.id, len(st.chunks))
			}
			st.mu.Unlock()
		}
		s.mu.Unlock()
		s.ctrlMu.Lock()
		if cap(s.ctrl) > 16*HeaderSize {
			t.Errorf("idle session holds a %d-byte control queue", cap(s.ctrl))
		}
		s.ctrlMu.Unlock()
	}
}

// BenchmarkIdleSessions measures what one idle session pair with one idle
// stream costs, over in-memory pipes (so that only the muxer counts).
func BenchmarkIdleSessions(b *testing.B) {
	const n = 1000
	pipe := func(testing.TB) (net.Conn, net.Conn) { x, y := newPipe(); return x, y }
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var m0 runtime.MemStats
		runtime.ReadMemStats(&m0)
		g0 := runtime.NumGoroutine()
		b.StartTimer()
		var all []*Session
		for range n {
			c, s, err := idlePair(b, pipe, Config{KeepAlive: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			all = append(all, c, s)
		}
		b.StopTimer()
		waitGoroutines(b, g0+2*n)
		runtime.GC()
		var m1 runtime.MemStats
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/(2*n), "heap-B/session")
		b.ReportMetric(float64(m1.StackInuse-m0.StackInuse)/(2*n), "stack-B/session")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/(2*n), "goroutines/session")
		for _, s := range all {
			s.Close()
		}
		for _, s := range all {
			<-s.Done()
		}
		b.StartTimer()
	}
}

// BenchmarkThroughput: one stream, 64 KiB writes, to a reader that
// discards.
func BenchmarkThroughput(b *testing.B) {
	for _, l := range links {
		b.Run(l.name, func(b *testing.B) {
			client, server := sessionsOver(b, l.pair, Config{}, Config{})
			done := make(chan int64, 1)
			server.SetStreamHandler(func(s *Stream) {
				go func() {
					n, _ := io.Copy(io.Discard, s)
					s.Close()
					done <- n
				}()
			})
			s, err := client.OpenStream(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 64<<10)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := s.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			s.CloseWrite()
			if n := <-done; n != int64(b.N)*int64(len(buf)) {
				b.Fatal(fmt.Sprintf("received %d bytes", n))
			}
		})
	}
}
