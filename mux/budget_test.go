package mux

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// budgetPair is a client and server session over a pipe, the server's
// inbound streams collected unread.
func budgetPair(t *testing.T, b *Budget) (*Session, <-chan *Stream) {
	t.Helper()
	cfg := Config{KeepAlive: -1}
	scfg := cfg
	scfg.Budget = b
	client, server := sessionsOver(t, func(tb testing.TB) (net.Conn, net.Conn) { return net.Pipe() }, cfg, scfg)
	got := make(chan *Stream, 16)
	server.SetStreamHandler(func(st *Stream) { got <- st })
	return client, got
}

// sendUnread opens a stream on c and writes n bytes, which the peer does
// not read (n at most InitialWindow, so the write does not wait).
func sendUnread(t *testing.T, c *Session, n int) *Stream {
	t.Helper()
	st, err := trySend(c, n)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// trySend is sendUnread for a stream the peer may reset meanwhile.
func trySend(c *Session, n int) (*Stream, error) {
	st, err := c.OpenStream(context.Background())
	if err != nil {
		return nil, err
	}
	_, err = st.Write(make([]byte, n))
	return st, err
}

// waitUsed waits until b holds want bytes.
func waitUsed(t *testing.T, b *Budget, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.Used() != want {
		if time.Now().After(deadline) {
			t.Fatalf("budget holds %d bytes, want %d", b.Used(), want)
		}
		time.Sleep(time.Millisecond) // polling a counter, not ordering events
	}
}

// wantLimitReset checks that the peer reset st with ResetCodeLimit,
// seen by the write (err) or else by a read.
func wantLimitReset(t *testing.T, st *Stream, err error) {
	t.Helper()
	if err == nil {
		st.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = st.Read(make([]byte, 1))
	}
	var se *StreamError
	if !errors.As(err, &se) || se.Code != ResetCodeLimit || !se.Remote {
		t.Fatalf("read after the budget ran out: %v, want a reset by the peer with code %#x", err, ResetCodeLimit)
	}
}

// TestBudgetSharedBySessions: unread data of streams on two sessions
// sharing a Budget stays within it, each stream's first BudgetFree of
// chunks aside; a frame that does not fit resets its stream, small streams are
// served while bulk ones hold the budget, and reading gives it back.
func TestBudgetSharedBySessions(t *testing.T) {
	const kib = 1 << 10
	bulk := int64(256*kib - BudgetFree) // what 256 KiB unread takes
	t.Run("frame over budget resets its stream", func(t *testing.T) {
		b := NewBudget(300 * kib)
		a, aGot := budgetPair(t, b)
		c, _ := budgetPair(t, b)
		sendUnread(t, a, 256*kib)
		<-aGot
		waitUsed(t, b, bulk)
		st, err := trySend(c, 128*kib) // its first 64 KiB frame does not fit
		wantLimitReset(t, st, err)
		waitUsed(t, b, bulk)
		if b.Refused() == 0 {
			t.Error("a refusal was not counted")
		}
	})
	t.Run("spent budget still serves small streams", func(t *testing.T) {
		b := NewBudget(2 * bulk)
		a, aGot := budgetPair(t, b)
		c, cGot := budgetPair(t, b)
		sendUnread(t, a, 256*kib)
		sendUnread(t, c, 256*kib)
		held := <-aGot
		<-cGot
		waitUsed(t, b, 2*bulk)

		small := sendUnread(t, a, 100)
		got := <-aGot
		if _, err := io.ReadFull(got, make([]byte, 100)); err != nil {
			t.Fatalf("small stream with the budget spent: %v", err)
		}
		small.Close()
		st, err := trySend(a, 64*kib)
		wantLimitReset(t, st, err)
		<-aGot // the reset stream, as accepted

		// Reading one stream's data gives its share back: bulk fits again.
		if _, err := io.ReadFull(held, make([]byte, 256*kib)); err != nil {
			t.Fatal(err)
		}
		waitUsed(t, b, bulk)
		sendUnread(t, a, 64*kib)
		ok := <-aGot
		if _, err := io.ReadFull(ok, make([]byte, 64*kib)); err != nil {
			t.Fatalf("bulk stream after the budget was given back: %v", err)
		}
		waitUsed(t, b, bulk)
	})
	t.Run("closing gives everything back", func(t *testing.T) {
		b := NewBudget(1 << 20)
		a, aGot := budgetPair(t, b)
		sendUnread(t, a, 200*kib)
		st := <-aGot
		waitUsed(t, b, 3*64*kib+16*kib-BudgetFree) // 64, 64, 64 KiB frames and 8 KiB: three full chunks and a 16 KiB one
		st.Close()
		waitUsed(t, b, 0)
	})
}

// TestMaxInboundStreams: the peer's streams, counting those we closed
// that it has not, stop at MaxInboundStreams; ours still open, and the
// refusals count in the Budget.
func TestMaxInboundStreams(t *testing.T) {
	b := NewBudget(0)
	cfg := Config{KeepAlive: -1}
	scfg := Config{KeepAlive: -1, MaxInboundStreams: 2, MaxStreams: 8, Budget: b}
	client, server := sessionsOver(t, func(tb testing.TB) (net.Conn, net.Conn) { return net.Pipe() }, cfg, scfg)
	got := make(chan *Stream, 8)
	server.SetStreamHandler(func(st *Stream) { got <- st })
	client.SetStreamHandler(func(st *Stream) { go io.Copy(io.Discard, st) })
	for range 2 {
		sendUnread(t, client, 1)
		st := <-got
		st.CloseWrite() // half-closed: the peer has not closed its side
	}
	st, err := trySend(client, 1)
	wantLimitReset(t, st, err)
	if b.StreamsRefused() != 1 {
		t.Errorf("StreamsRefused = %d, want 1", b.StreamsRefused())
	}
	ours, err := server.OpenStream(context.Background())
	if err != nil {
		t.Fatalf("our own stream with the peer's at its limit: %v", err)
	}
	if _, err := ours.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
}

// TestBudgetCountsChunks: the budget counts the chunks a stream's unread
// data holds, sized to the frames, so that a byte held is a small chunk
// held and a bulk frame a full one.
func TestBudgetCountsChunks(t *testing.T) {
	const kib = 1 << 10
	for _, tc := range []struct {
		name  string
		frame int   // one frame of this size, unread
		want  int64 // what the budget holds for it
	}{
		{"one byte", 1, 0},                   // a 2 KiB chunk, within BudgetFree
		{"identify-sized", 8 * kib, 0},       // a 16 KiB chunk
		{"over 16 KiB", 17 * kib, 48 * kib},  // a 64 KiB chunk
		{"full frame", 64 * kib, 48 * kib},   // one 64 KiB chunk
		{"two frames", 128 * kib, 112 * kib}, // two
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBudget(1 << 20)
			a, got := budgetPair(t, b)
			sendUnread(t, a, tc.frame)
			st := <-got
			// The chunk is charged before the data lands in it.
			deadline := time.Now().Add(10 * time.Second)
			for {
				st.mu.Lock()
				held, buffered := st.held, st.buffered
				st.mu.Unlock()
				if int(buffered) == tc.frame {
					if held < buffered {
						t.Errorf("%d bytes buffered in %d of chunks", buffered, held)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d bytes arrived", buffered, tc.frame)
				}
				time.Sleep(time.Millisecond) // polling a counter
			}
			if got := b.Used(); got != tc.want {
				t.Errorf("budget holds %d bytes, want %d", got, tc.want)
			}
		})
	}
}
