package mux

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// These tests cover Config.MaxSessionRecv: window growth reserved from a
// per-session budget and given back when streams end.

// forceGrowth makes every window update of s's streams count as "the
// window is the bottleneck", so windows double whenever the session's
// budget allows instead of only when the link is slow enough for the
// clock to notice. Sessions using it run without keepalive and do not
// Ping themselves, which would measure the real round trip again.
func forceGrowth(s *Session) { s.rtt.Store(int64(time.Hour)) }

// streamsOf returns s's open streams; the caller locks each one (a
// stream's mu is never taken under the session's).
func streamsOf(s *Session) []*Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*Stream
	for _, st := range s.streams {
		all = append(all, st)
	}
	return all
}

// checkReserved checks, with st's lock held, that its window is exactly
// InitialWindow plus what it reserved, while it can still receive.
func checkReserved(t testing.TB, st *Stream) {
	t.Helper()
	receiving := st.err == nil && !st.readClosed && !st.finRecv
	if receiving && st.rwin != InitialWindow+st.reserved {
		t.Errorf("stream %d: window %d, but %d reserved beyond %d", st.id, st.rwin, st.reserved, InitialWindow)
	}
}

// TestRecvBudgetBoundsGrowth: streams whose readers keep up transfer a
// few MiB each, their windows growing only as far as the session's
// budget allows, and the budget is all given back once they close.
func TestRecvBudgetBoundsGrowth(t *testing.T) {
	const streams, size = 4, 3 << 20
	for _, tc := range []struct {
		name   string
		recv   int // Config.MaxSessionRecv
		budget int // what it means
	}{
		{"default", 0, 4 << 20},
		{"small", 768 << 10, 768 << 10},      // three first doublings, or one window up to 1 MiB
		{"below one doubling", 200 << 10, 0}, // nothing can grow by 256 KiB
		{"none", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forLinks(t, func(t *testing.T, pair func(testing.TB) (net.Conn, net.Conn)) {
				cfg := Config{KeepAlive: -1, MaxStreamWindow: 1 << 20, MaxSessionRecv: tc.recv}
				client, server := sessionsOver(t, pair, cfg, cfg)
				forceGrowth(server)
				if got := server.cfg.MaxSessionRecv; tc.recv == 0 && got != tc.budget {
					t.Fatalf("MaxSessionRecv %d after defaults, want %d", got, tc.budget)
				}
				data := make([]byte, size)
				rand.Read(data)

				// The server reads each stream as fast as it can, checking
				// the budget after every read.
				var readers sync.WaitGroup
				got := make(chan *Stream, streams)
				peak := make(chan int, streams)
				server.SetStreamHandler(func(st *Stream) {
					readers.Add(1)
					go func() {
						defer readers.Done()
						defer func() { got <- st }()
						buf := make([]byte, size)
						hi := 0
						for n := 0; n < size; {
							k, err := st.Read(buf[n:min(n+40<<10, size)])
							if err != nil {
								t.Errorf("stream %d: read after %d bytes: %v", st.id, n, err)
								return
							}
							n += k
							r := server.RecvReserved()
							hi = max(hi, r)
							if r > tc.budget {
								t.Errorf("%d bytes reserved, budget %d", r, tc.budget)
							}
							st.mu.Lock()
							checkReserved(t, st)
							st.mu.Unlock()
						}
						if !bytes.Equal(buf, data) {
							t.Errorf("stream %d: data differs", st.id)
						}
						peak <- hi
					}()
				})

				var opened []*Stream
				errs := make(chan error, streams)
				for range streams {
					st, err := client.OpenStream(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					opened = append(opened, st)
					go func() {
						_, err := st.Write(data)
						errs <- err
					}()
				}
				for range streams {
					if err := <-errs; err != nil {
						t.Fatal(err)
					}
				}
				readers.Wait()
				close(peak)
				hi := 0
				for p := range peak {
					hi = max(hi, p)
				}
				if t.Failed() {
					return
				}
				if tc.budget > 0 && hi == 0 {
					t.Error("no window grew, though the budget allowed it")
				}

				// Quiescent: every byte read, no stream closed. The
				// windows granted add up to streams × InitialWindow plus
				// what is reserved, within the budget.
				sum, reserved := 0, 0
				for _, st := range streamsOf(server) {
					st.mu.Lock()
					checkReserved(t, st)
					sum += int(st.rwin)
					reserved += int(st.reserved)
					st.mu.Unlock()
				}
				if r := server.RecvReserved(); reserved != r || r > tc.budget || sum != streams*InitialWindow+r {
					t.Errorf("windows sum to %d, streams hold %d, session counts %d reserved; budget %d", sum, reserved, r, tc.budget)
				}

				// Closed on both sides: everything given back.
				for range streams {
					st := <-got
					st.Close()
				}
				for _, st := range opened {
					st.Close()
				}
				syncPair(t, client)
				for _, s := range []*Session{client, server} {
					if r, n := s.RecvReserved(), s.NumStreams(); r != 0 || n != 0 {
						t.Errorf("after closing: %d bytes reserved, %d streams", r, n)
					}
				}
			})
		})
	}
}

// TestRecvBudgetUnreadStreams: a peer writes as fast as it may on many
// streams, some read for a while and then left, most never read. What
// the session buffers stays within MaxStreams × InitialWindow +
// MaxSessionRecv, and a new stream whose reader keeps up still works.
func TestRecvBudgetUnreadStreams(t *testing.T) {
	const (
		fast, idle = 3, 10     // streams read for a while, and never
		maxStreams = 16        // room for one more
		budget     = 768 << 10 // three first doublings, or one window up to 1 MiB
		readFirst  = 2 << 20   // what is read of the fast streams
	)
	scfg := Config{KeepAlive: -1, MaxStreams: maxStreams, MaxStreamWindow: 1 << 20, MaxSessionRecv: budget}
	if got, want := scfg.MaxUnread(), int64(maxStreams*InitialWindow+budget); got != want {
		t.Fatalf("MaxUnread %d, want %d", got, want)
	}
	client, server := sessionsOver(t, tcpPair, Config{KeepAlive: -1}, scfg)
	forceGrowth(server)

	var readers sync.WaitGroup
	defer readers.Wait()
	fastDone := make(chan error, fast)
	extraCh := make(chan *Stream, 1)
	server.SetStreamHandler(func(st *Stream) {
		switch {
		case st.id <= 2*fast: // client streams are 1, 3, 5, ...: the first ones are fast
			readers.Add(1)
			go func() {
				defer readers.Done()
				_, err := io.ReadFull(st, make([]byte, readFirst))
				fastDone <- err
			}()
		case st.id > 2*(fast+idle):
			extraCh <- st
		}
	})

	// Writers write until their stream or the session ends.
	var writers sync.WaitGroup
	defer writers.Wait()
	defer client.Close()
	chunk := make([]byte, 64<<10)
	for range fast + idle {
		st, err := client.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		writers.Add(1)
		go func() {
			defer writers.Done()
			for {
				if _, err := st.Write(chunk); err != nil {
					return
				}
			}
		}()
	}
	for range fast {
		if err := <-fastDone; err != nil {
			t.Fatal(err)
		}
	}
	if server.RecvReserved() == 0 {
		t.Fatal("no window grew while the fast streams were read")
	}

	// Nobody reads any more; wait until the writers have used every byte
	// of window granted. Each ping round trip lets frames through.
	full := func() (buffered, granted int) {
		all := streamsOf(server)
		if len(all) != fast+idle {
			return -1, -1
		}
		for _, st := range all {
			st.mu.Lock()
			checkReserved(t, st)
			if st.rcredit > 0 {
				buffered = -1
			}
			if buffered >= 0 {
				buffered += int(st.buffered)
			}
			granted += int(st.rwin)
			st.mu.Unlock()
		}
		return buffered, granted
	}
	deadline := time.Now().Add(10 * time.Second)
	buffered, granted := full()
	for ; buffered < 0; buffered, granted = full() {
		if time.Now().After(deadline) {
			t.Fatal("the writers did not fill the windows")
		}
		if _, err := client.Ping(); err != nil {
			t.Fatal(err)
		}
	}
	r := server.RecvReserved()
	t.Logf("%d bytes buffered on %d streams, windows %d, %d reserved", buffered, fast+idle, granted, r)
	if r > budget || granted != (fast+idle)*InitialWindow+r {
		t.Errorf("windows sum to %d with %d reserved, budget %d", granted, r, budget)
	}
	if int64(buffered) > scfg.MaxUnread() || buffered > granted {
		t.Errorf("%d bytes buffered, beyond windows of %d or the bound %d", buffered, granted, scfg.MaxUnread())
	}

	// The session still carries a stream that is read.
	st, err := client.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 2<<20)
	rand.Read(data)
	werr := make(chan error, 1)
	go func() {
		_, err := st.Write(data)
		if err == nil {
			err = st.CloseWrite()
		}
		werr <- err
	}()
	extra := <-extraCh
	got, err := io.ReadAll(extra)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("new stream: read %d bytes, %v", len(got), err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if r := server.RecvReserved(); r > budget {
		t.Errorf("%d bytes reserved, budget %d", r, budget)
	}
	if server.IsClosed() || client.IsClosed() {
		t.Fatal("session ended")
	}
}

// TestRecvBudgetReleased: a stream whose window grew gives its
// reservation back however it ends, and not before it can receive no
// more.
func TestRecvBudgetReleased(t *testing.T) {
	for _, tc := range []struct {
		name string
		// end ends the stream: w is the writer's end, r the reader's.
		end func(t *testing.T, client, server *Session, w, r *Stream)
	}{
		{"close both", func(t *testing.T, client, server *Session, w, r *Stream) {
			w.Close()
			r.Close()
		}},
		{"reader closes first, writer still sending", func(t *testing.T, client, server *Session, w, r *Stream) {
			r.Close()
			// Data after the reader's Close is dropped, and grows nothing.
			if _, err := w.Write(make([]byte, 100<<10)); err != nil {
				t.Fatal(err)
			}
			syncPair(t, client)
			if n := server.RecvReserved(); n != 0 {
				t.Fatalf("%d bytes still reserved after the reader's Close", n)
			}
			w.Close()
		}},
		{"FIN both ways, read to EOF", func(t *testing.T, client, server *Session, w, r *Stream) {
			w.CloseWrite()
			if b, err := io.ReadAll(r); err != nil || len(b) != 0 {
				t.Fatalf("read %d bytes, %v", len(b), err)
			}
			r.CloseWrite()
		}},
		{"FIN both ways, data unread", func(t *testing.T, client, server *Session, w, r *Stream) {
			if _, err := w.Write(make([]byte, 100<<10)); err != nil {
				t.Fatal(err)
			}
			w.CloseWrite()
			r.CloseWrite()
			syncPair(t, client)
			// The stream has left the session, but holds data: its
			// reservation stays until the data is read.
			if n := server.NumStreams(); n != 0 {
				t.Fatalf("%d streams after FIN both ways", n)
			}
			if server.RecvReserved() == 0 {
				t.Fatal("reservation given back while data is unread")
			}
			if b, err := io.ReadAll(r); err != nil || len(b) != 100<<10 {
				t.Fatalf("read %d bytes, %v", len(b), err)
			}
		}},
		{"reader resets", func(t *testing.T, client, server *Session, w, r *Stream) {
			r.Reset()
		}},
		{"writer resets", func(t *testing.T, client, server *Session, w, r *Stream) {
			w.Reset()
		}},
		{"session closed", func(t *testing.T, client, server *Session, w, r *Stream) {
			client.Close()
			waitDone(t, server)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{KeepAlive: -1, MaxStreamWindow: 1 << 20, MaxSessionRecv: 1 << 20}
			client, server := sessions(t, cfg)
			forceGrowth(server)
			w, err := client.OpenStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			const size = 2 << 20
			go w.Write(make([]byte, size))
			r, err := server.AcceptStream()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(r, make([]byte, size)); err != nil {
				t.Fatal(err)
			}
			r.mu.Lock()
			held := r.reserved
			r.mu.Unlock()
			if n := server.RecvReserved(); n == 0 || n != int(held) {
				t.Fatalf("session counts %d bytes reserved, the stream %d", n, held)
			}
			tc.end(t, client, server, w, r)
			if !client.IsClosed() {
				syncPair(t, client)
			}
			for _, s := range []*Session{client, server} {
				if n := s.RecvReserved(); n != 0 {
					t.Errorf("%d bytes reserved after the end", n)
				}
			}
			if n := server.NumStreams(); n != 0 {
				t.Errorf("%d streams left", n)
			}
		})
	}
}

// syncPair returns once both sessions of client's pair have handled
// every frame the other sent before the call: the server answers the ping
// after the frames the client sent before it, and its answer follows the
// frames it queued itself before. The ping goes from the client because a
// server Ping would measure the round trip and undo forceGrowth.
func syncPair(t *testing.T, client *Session) {
	t.Helper()
	if _, err := client.Ping(); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// TestMaxUnread pins the bound node prints per preset.
func TestMaxUnread(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want int64
	}{
		{Config{}, 1024*InitialWindow + 4<<20},
		{Config{MaxStreamWindow: 4 << 20, MaxStreams: 256}, 256*InitialWindow + 16<<20},
		{Config{MaxStreamWindow: 4 << 20, MaxSessionRecv: -1}, 1024 * InitialWindow},
		{Config{MaxStreamWindow: 1 << 20, MaxSessionRecv: 1 << 30, MaxStreams: 2}, 2 * (1 << 20)}, // no more than the streams can grow
		{Config{MaxStreamWindow: InitialWindow}, 1024 * InitialWindow},                            // nothing can grow
	} {
		if got := tc.cfg.MaxUnread(); got != tc.want {
			t.Errorf("%+v: MaxUnread %d, want %d", tc.cfg, got, tc.want)
		}
	}
}
