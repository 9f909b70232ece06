package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/ping"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// echoProto is the protocol of echo streams through Kubo's stream
// mounting (`ipfs p2p`), both ways.
const echoProto = "/x/echo"

// tcpEcho serves a loopback TCP echo for Kubo's `ipfs p2p listen` to
// forward streams to, and returns its port.
func tcpEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				io.Copy(c, c)
			}()
		}
	}()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// echoCheck writes msg (on one goroutine, then a half-close when
// closeWrite is not nil) while reading the echo on another, to EOF or,
// without closeWrite, for len(msg) bytes, and compares.
func echoCheck(rw io.ReadWriter, closeWrite func() error, msg []byte) error {
	werr := make(chan error, 1)
	go func() {
		if len(msg) > 0 {
			if _, err := rw.Write(msg); err != nil {
				werr <- fmt.Errorf("write: %w", err)
				return
			}
		}
		if closeWrite != nil {
			if err := closeWrite(); err != nil {
				werr <- fmt.Errorf("close write: %w", err)
				return
			}
		}
		werr <- nil
	}()
	var got []byte
	var err error
	if closeWrite != nil {
		got, err = io.ReadAll(rw)
	} else {
		got = make([]byte, len(msg))
		var n int
		n, err = io.ReadFull(rw, got)
		got = got[:n]
	}
	if err != nil {
		return fmt.Errorf("read after %d of %d bytes: %w", len(got), len(msg), err)
	}
	if err := <-werr; err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo of %d bytes came back as %d different bytes", len(msg), len(got))
	}
	return nil
}

// echoSizes are the exchanges each direction runs: many short ones that
// close at once, and first writes of up to 8 MiB made before any read.
// All are whole pings (32 bytes), which Kubo's ping handler echoes.
func echoSizes() []int {
	sizes := []int{64 << 10, 1 << 20, 8 << 20}
	for i := range 300 {
		sizes = append(sizes, i%9*32)
	}
	return sizes
}

// runEchoes runs one exchange per size, workers at a time, and reports
// the failures (at most 5 of them in full).
func runEchoes(t *testing.T, what string, workers int, one func(i, size int) error) {
	t.Helper()
	sizes := echoSizes()
	sem := make(chan struct{}, workers)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i, size := range sizes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := one(i, size); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s %d (%d bytes): %w", what, i, size, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs[:min(len(errs), 5)] {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.Fatalf("%d of %d %s exchanges failed", len(errs), len(sizes), what)
	}
}

func randomBytes(seed, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

// TestLazySelectKubo: streams negotiated optimistically carry every byte
// and their close both ways with Kubo, over TCP (Noise and TLS) and QUIC.
// mote opens streams to Kubo's ping handler, which echoes whole pings
// until EOF and then closes, with the protocol known from identify (the
// proposal travels with the first write, and the close follows at once)
// and unknown (negotiated first). Kubo opens streams to mote's echo
// handler through `ipfs p2p forward`, proposing optimistically since
// mote's identify lists the protocol; Kubo's stream mounting closes both
// ways as soon as either side ends, so those exchanges read the whole
// echo before closing.
func TestLazySelectKubo(t *testing.T) {
	for _, tc := range []struct {
		name, transport, kuboSec string
	}{
		{"tcp-noise", "tcp", "noise"},
		{"tcp-tls", "tcp", "tls"},
		{"quic", "quic-v1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			k := startKuboT(t, ctx, KuboOptions{
				Security: tc.kuboSec,
				Config:   map[string]any{"Experimental.Libp2pStreamMounting": true},
			})
			kid, err := peer.Decode(k.ID())
			if err != nil {
				t.Fatal(err)
			}
			n := startMote(t)
			n.SetHandler(echoProto, func(s *node.Stream) {
				if _, err := io.Copy(s, s); err != nil {
					s.Reset()
					return
				}
				s.Close()
			})
			kaddr := k.TCPAddr()
			if tc.transport == "quic-v1" {
				kaddr = k.QUICAddr()
			}
			_, addr := splitAddr(t, kaddr)
			c, err := n.Connect(ctx, kid, addr)
			if err != nil {
				t.Fatal(err)
			}
			waitIdentified(t, ctx, c)
			if !n.Peerstore().SupportsProtocol(kid, ping.ID) {
				t.Fatalf("kubo's identify lacks %s", ping.ID)
			}
			kuboProtos := n.Peerstore().Protocols(kid)

			for _, known := range []bool{true, false} {
				t.Run(fmt.Sprintf("mote-opens/known=%v", known), func(t *testing.T) {
					protos := kuboProtos
					if !known {
						protos = slices.DeleteFunc(slices.Clone(protos), func(p string) bool { return p == ping.ID })
					}
					n.Peerstore().SetProtocols(kid, protos)
					// Kubo's resource manager takes at most 2 inbound
					// ping streams per peer at a time, and frees one a
					// little after it ends.
					runEchoes(t, "mote→kubo", 1, func(i, size int) error {
						s, err := n.NewStreamOn(ctx, c, ping.ID)
						if err != nil {
							return err
						}
						defer s.Close()
						s.SetDeadline(time.Now().Add(time.Minute))
						return echoCheck(s, s.CloseWrite, randomBytes(i, size))
					})
				})
			}

			// A first write larger than everything Kubo's stream mounting
			// can buffer (its yamux window grows to 16 MiB, then socket
			// buffers to and from the TCP echo) stalls unless the echo is
			// read while the write is still under way.
			t.Run("mote-opens/64MiB", func(t *testing.T) {
				if _, err := k.Run(ctx, "p2p", "listen", echoProto, "/ip4/127.0.0.1/tcp/"+tcpEcho(t)); err != nil {
					t.Fatal(err)
				}
				n.Peerstore().SetProtocols(kid, append(slices.Clone(kuboProtos), echoProto))
				s, err := n.NewStreamOn(ctx, c, echoProto)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				s.SetDeadline(time.Now().Add(time.Minute))
				if err := echoCheck(s, nil, randomBytes(64, 64<<20)); err != nil {
					t.Fatal(err)
				}
			})

			t.Run("kubo-opens", func(t *testing.T) {
				if _, err := k.Run(ctx, "p2p", "forward", echoProto, "/ip4/127.0.0.1/tcp/0", "/p2p/"+n.ID().String()); err != nil {
					t.Fatal(err)
				}
				local := forwardAddr(t, ctx, k)
				if err := k.SwarmConnect(ctx, moteAddr(t, n, tc.transport)); err != nil {
					t.Fatal(err)
				}
				runEchoes(t, "kubo→mote", 16, func(i, size int) error {
					if size == 0 {
						return nil // Kubo opens the stream on the first byte
					}
					tc, err := net.DialTimeout("tcp", local, 10*time.Second)
					if err != nil {
						return err
					}
					defer tc.Close()
					tc.SetDeadline(time.Now().Add(time.Minute))
					return echoCheck(tc, nil, randomBytes(i, size))
				})
			})
		})
	}
}

// forwardAddr is the local TCP address of Kubo's one `ipfs p2p forward`.
func forwardAddr(t *testing.T, ctx context.Context, k *Kubo) string {
	t.Helper()
	out, err := k.Run(ctx, "p2p", "ls", "--enc=json")
	if err != nil {
		t.Fatal(err)
	}
	var ls struct {
		Listeners []struct {
			Protocol, ListenAddress, TargetAddress string
		}
	}
	if err := json.Unmarshal(out, &ls); err != nil {
		t.Fatalf("ipfs p2p ls: %v: %s", err, out)
	}
	for _, l := range ls.Listeners {
		if l.Protocol != echoProto {
			continue
		}
		if m, err := ma.NewMultiaddr(l.ListenAddress); err == nil {
			if network, hostport, err := ma.DialArgs(m); err == nil && network == "tcp4" {
				return hostport
			}
		}
	}
	t.Fatalf("ipfs p2p ls has no TCP forward for %s: %s", echoProto, out)
	return ""
}
