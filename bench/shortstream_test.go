//go:build linux

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/mote-p2p/mote/bench/internal/benchproto"
)

// shortStream is what one iteration of BenchmarkShortStream does on an
// open stream: a 32-byte request, a half-close right behind it (before
// the peer's answer to the optimistic proposal can have arrived), and
// the echo read to EOF. mote holds the FIN until the answer is in
// (docs/INTEROP.md); go-libp2p sends it at once.
func shortStream(s interface {
	io.ReadWriter
	CloseWrite() error
}, msg []byte) error {
	if _, err := s.Write(msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo of %d bytes came back as %d", len(msg), len(got))
	}
	return nil
}

// BenchmarkShortStream measures a short request–response stream, opened
// optimistically on an identified connection, per stack and transport:
// mote to mote against go-libp2p v0.51.0 to go-libp2p.
func BenchmarkShortStream(b *testing.B) {
	msg := bytes.Repeat([]byte{0x5a}, 32)
	for _, tr := range transports[:2] {
		b.Run("mote-"+tr.name, func(b *testing.B) {
			a := newListener(b, tr, 0, nil)
			d := newNode(b, tr.config())
			s := openStream(b, tr, d, a, benchproto.Echo) // connects and identifies
			s.Close()
			c := s.Conn()
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				s, err := d.NewStreamOn(ctx, c, benchproto.Echo)
				if err != nil {
					b.Fatal(err)
				}
				if err := shortStream(s, msg); err != nil {
					b.Fatal(err)
				}
				s.Close()
				lat = append(lat, time.Since(t0))
			}
			b.ReportMetric(us(percentile(lat, 50)), "p50-µs")
		})
		b.Run("golibp2p-"+tr.name, func(b *testing.B) {
			listen, opt := "/ip4/127.0.0.1/tcp/0", libp2p.ChainOptions(libp2p.Transport(tcp.NewTCPTransport), libp2p.Security(noise.ID, noise.New))
			if tr.name == "quic" {
				listen, opt = "/ip4/127.0.0.1/udp/0/quic-v1", libp2p.Transport(libp2pquic.NewTransport)
			}
			newHost := func(addrs ...string) host.Host {
				h, err := libp2p.New(libp2p.ListenAddrStrings(addrs...), opt)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { h.Close() })
				return h
			}
			a := newHost(listen)
			a.SetStreamHandler(protocol.ID(benchproto.Echo), func(s network.Stream) {
				if _, err := io.Copy(s, s); err != nil {
					s.Reset()
					return
				}
				s.Close()
			})
			d := newHost()
			ctx := context.Background()
			if err := d.Connect(ctx, lpeer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				s, err := d.NewStream(ctx, a.ID(), protocol.ID(benchproto.Echo))
				if err != nil {
					b.Fatal(err)
				}
				if err := shortStream(s, msg); err != nil {
					b.Fatal(err)
				}
				s.Close()
				lat = append(lat, time.Since(t0))
			}
			b.ReportMetric(us(percentile(lat, 50)), "p50-µs")
		})
	}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
