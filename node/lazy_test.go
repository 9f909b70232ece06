package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/mote-p2p/mote/secure/noise"
	p2ptls "github.com/mote-p2p/mote/secure/tls"
	"github.com/mote-p2p/mote/wire"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

const echoProto = "/test/echo/1.0.0"

// echoHandler copies a stream back to its opener until EOF, then closes.
func echoHandler(s *Stream) {
	if _, err := io.Copy(s, s); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

// lazyTransports are the transports the optimistic select must hold on.
var lazyTransports = []struct {
	name   string
	listen string
	sec    []string
}{
	{"tcp-noise", "/ip4/127.0.0.1/tcp/0", []string{noise.ID}},
	{"tcp-tls", "/ip4/127.0.0.1/tcp/0", []string{p2ptls.ID}},
	{"quic", "/ip4/127.0.0.1/udp/0/quic-v1", nil},
}

// echoPair starts a listener serving echoProto and a dialer connected to
// it with identify done. With known, the dialer's peerstore lists
// echoProto for the listener, so streams are opened optimistically;
// without, the protocol is negotiated before NewStream returns.
func echoPair(t *testing.T, ctx context.Context, listen string, sec []string, known bool, h Handler) (a, b *Node, c *Conn) {
	t.Helper()
	mod := func(c *Config) {
		c.ListenAddrs = []ma.Multiaddr{ma.StringCast(listen)}
		c.Security = sec
	}
	a = newNode(t, nil, true, mod)
	a.SetHandler(echoProto, h) // before connecting: no push changes b's view later
	b = newNode(t, nil, false, func(c *Config) { c.Security = sec })
	c = connect(t, ctx, b, a)
	if got := b.Peerstore().SupportsProtocol(a.ID(), echoProto); !got {
		t.Fatalf("identify did not list %s", echoProto)
	}
	if !known {
		b.Peerstore().SetProtocols(a.ID(), nil)
	}
	return a, b, c
}

// echoOnce writes msg and closes the write side at once on one
// goroutine while reading the echo on another, as an echo client does.
func echoOnce(ctx context.Context, b *Node, c *Conn, msg []byte) error {
	s, err := b.NewStreamOn(ctx, c, echoProto)
	if err != nil {
		return fmt.Errorf("new stream: %w", err)
	}
	defer s.Close()
	dl, _ := ctx.Deadline()
	s.SetDeadline(dl)
	werr := make(chan error, 1)
	go func() {
		if len(msg) > 0 {
			if _, err := s.Write(msg); err != nil {
				werr <- fmt.Errorf("write: %w", err)
				return
			}
		}
		if err := s.CloseWrite(); err != nil {
			werr <- fmt.Errorf("close write: %w", err)
			return
		}
		werr <- nil
	}()
	got, err := io.ReadAll(s)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if err := <-werr; err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo of %d bytes came back as %d bytes", len(msg), len(got))
	}
	return nil
}

// TestLazyEchoMany: thousands of short echo exchanges, each closing its
// write side right after its first write (or without writing at all), so
// that closes race the peer's answer to the optimistic proposal.
func TestLazyEchoMany(t *testing.T) {
	const streams, workers = 2000, 64
	for _, tr := range lazyTransports {
		for _, known := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/known=%v", tr.name, known), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				_, b, c := echoPair(t, ctx, tr.listen, tr.sec, known, echoHandler)
				jobs := make(chan int)
				errs := make(chan error, streams)
				var wg sync.WaitGroup
				for range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range jobs {
							msg := bytes.Repeat([]byte{byte(i)}, i%97) // 0 bytes every 97th
							if err := echoOnce(ctx, b, c, msg); err != nil {
								errs <- fmt.Errorf("stream %d: %w", i, err)
							}
						}
					}()
				}
				for i := range streams {
					jobs <- i
				}
				close(jobs)
				wg.Wait()
				close(errs)
				failed := 0
				for err := range errs {
					if failed < 5 {
						t.Error(err)
					}
					failed++
				}
				if failed > 0 {
					t.Fatalf("%d of %d echo exchanges failed", failed, streams)
				}
			})
		}
	}
}

// TestLazyLargeFirstWrite: a first write of up to 8 MiB made before any
// read, with the echo read on another goroutine that starts only once
// the peer has data. The read must not wait for the write, which cannot
// finish before the echo is read.
func TestLazyLargeFirstWrite(t *testing.T) {
	for _, tr := range lazyTransports {
		for _, known := range []bool{true, false} {
			for _, size := range []int{64 << 10, 1 << 20, 8 << 20} {
				t.Run(fmt.Sprintf("%s/known=%v/%dKiB", tr.name, known, size>>10), func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					arrived := make(chan struct{})
					var once sync.Once
					_, b, c := echoPair(t, ctx, tr.listen, tr.sec, known, func(s *Stream) {
						buf := make([]byte, 32<<10)
						for {
							n, err := s.Read(buf)
							if n > 0 {
								once.Do(func() { close(arrived) })
								if _, err := s.Write(buf[:n]); err != nil {
									s.Reset()
									return
								}
							}
							if err == io.EOF {
								s.Close()
								return
							}
							if err != nil {
								s.Reset()
								return
							}
						}
					})
					msg := make([]byte, size)
					rand.NewChaCha8([32]byte{byte(size)}).Read(msg)
					s, err := b.NewStreamOn(ctx, c, echoProto)
					if err != nil {
						t.Fatal(err)
					}
					defer s.Close()
					s.SetDeadline(time.Now().Add(20 * time.Second))
					werr := make(chan error, 1)
					go func() {
						_, err := s.Write(msg)
						if err == nil {
							err = s.CloseWrite()
						}
						werr <- err
					}()
					select {
					case <-arrived:
					case <-ctx.Done():
						t.Fatal("the peer got no data")
					}
					got, err := io.ReadAll(s)
					if err != nil {
						t.Fatalf("read after %d of %d bytes: %v", len(got), size, err)
					}
					if err := <-werr; err != nil {
						t.Fatalf("write: %v", err)
					}
					if !bytes.Equal(got, msg) {
						t.Fatalf("echo of %d bytes came back as %d different bytes", size, len(got))
					}
				})
			}
		}
	}
}

// TestLazyRefused: a peer that the peerstore wrongly says speaks a
// protocol refuses the optimistic proposal. The refusal reaches the
// caller on its next read or close, writes end, and nothing hangs,
// whether the caller writes a little, a lot, or nothing.
func TestLazyRefused(t *testing.T) {
	const proto = "/test/absent/1.0.0"
	for _, tr := range lazyTransports {
		for _, size := range []int{0, 100, 8 << 20} {
			t.Run(fmt.Sprintf("%s/%dB", tr.name, size), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				a, b, c := echoPair(t, ctx, tr.listen, tr.sec, true, echoHandler)
				b.Peerstore().SetProtocols(a.ID(), []string{proto})
				s, err := b.NewStreamOn(ctx, c, proto)
				if err != nil {
					t.Fatalf("NewStream refused a protocol the peerstore lists: %v", err)
				}
				s.SetDeadline(time.Now().Add(20 * time.Second))
				werr := make(chan error, 1)
				go func() {
					msg := bytes.Repeat([]byte{0xff}, size) // never a valid proposal
					_, err := s.Write(msg)
					if err == nil {
						err = s.CloseWrite()
					}
					werr <- err
				}()
				// A mote or go-libp2p listener resets the stream when bytes
				// that are no proposal follow the refused one, and a reset
				// drops the buffered "na": then the read sees the reset.
				_, rerr := s.Read(make([]byte, 1))
				if rerr == nil || (size == 0 && !errors.Is(rerr, wire.ErrNotSupported)) {
					t.Fatalf("read: %v, want the refusal", rerr)
				}
				err = <-werr
				if size > 1<<20 && err == nil {
					t.Fatal("a write of 8 MiB to a refused stream succeeded")
				}
				if _, err := s.Write([]byte("x")); err == nil {
					t.Fatal("write after the refusal succeeded")
				}
			})
		}
	}
}

// TestLazyRefusedWriteOnly: an opener that only writes and closes (as an
// identify push does) learns of the refusal from Close.
func TestLazyRefusedWriteOnly(t *testing.T) {
	const proto = "/test/absent/1.0.0"
	for _, tr := range lazyTransports {
		t.Run(tr.name, func(t *testing.T) {
			ctx := testCtx(t)
			a, b, c := echoPair(t, ctx, tr.listen, tr.sec, true, echoHandler)
			b.Peerstore().SetProtocols(a.ID(), []string{proto})
			s, err := b.NewStreamOn(ctx, c, proto)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write([]byte("hello")); err != nil {
				t.Fatalf("first write: %v", err)
			}
			if err := s.Close(); !errors.Is(err, wire.ErrNotSupported) {
				t.Fatalf("close: %v, want the refusal", err)
			}
		})
	}
}
