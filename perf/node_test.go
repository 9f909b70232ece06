// Tests of perf between real mote nodes. They live in package perf_test
// so that node may import perf without an import cycle.

package perf_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/perf"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

const testTimeout = 20 * time.Second

// pair starts a perf server node and a client node connected to it. cfg
// gives the transport (Memory or DisableQUIC) and listen is the
// server's address. Serve's results arrive on the returned channel.
func pair(tb testing.TB, cfg node.Config, listen string) (*node.Node, *node.Conn, <-chan error) {
	tb.Helper()
	scfg := cfg
	scfg.ListenAddrs = []ma.Multiaddr{ma.StringCast(listen)}
	srv, err := node.New(scfg)
	if err != nil {
		tb.Fatalf("server node: %v", err)
	}
	tb.Cleanup(func() { srv.Close() })
	served := make(chan error, 16)
	srv.SetHandler(perf.ID, func(s *node.Stream) { served <- perf.Serve(s) })

	cli, err := node.New(cfg)
	if err != nil {
		tb.Fatalf("client node: %v", err)
	}
	tb.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := cli.Connect(ctx, srv.ID(), srv.Addrs()...)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	return cli, c, served
}

func memConfig() node.Config {
	return node.Config{Transports: []node.TransportMaker{node.Memory(transport.NewMemNetwork())}}
}

func waitServed(tb testing.TB, served <-chan error) error {
	tb.Helper()
	select {
	case err := <-served:
		return err
	case <-time.After(testTimeout):
		tb.Fatalf("server handler still running after %v", testTimeout)
		return nil
	}
}

func TestOverMemNetwork(t *testing.T) {
	cli, c, served := pair(t, memConfig(), "/memory/0")
	for _, size := range []uint64{0, 1000, 1 << 20} {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		s, err := cli.NewStreamOn(ctx, c, perf.ID)
		if err != nil {
			cancel()
			t.Fatalf("new stream: %v", err)
		}
		res, err := perf.Run(ctx, s, size, size)
		cancel()
		if err != nil {
			t.Fatalf("Run %d bytes: %v", size, err)
		}
		if res.Upload != size || res.Download != size {
			t.Errorf("Run %d bytes: %+v", size, res)
		}
		if err := waitServed(t, served); err != nil {
			t.Errorf("Serve of %d bytes: %v", size, err)
		}
	}
}

// startEndless opens a perf stream asking for 2^64−1 bytes and reads the
// first MiB of the answer.
func startEndless(t *testing.T, cli *node.Node, c *node.Conn) *node.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := cli.NewStreamOn(ctx, c, perf.ID)
	if err != nil {
		t.Fatalf("new stream: %v", err)
	}
	if _, err := s.Write(binary.BigEndian.AppendUint64(nil, math.MaxUint64)); err != nil {
		t.Fatalf("write request: %v", err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatalf("close write: %v", err)
	}
	if n, err := io.CopyN(io.Discard, s, 1<<20); err != nil {
		t.Fatalf("read %d bytes of the answer: %v", n, err)
	}
	return s
}

// TestServerStopsWhenClientResets: over QUIC a reset reaches the server at
// once. (Yamux, as mote has it, cannot send a reset; there the server
// stops when the connection closes, below, or when StallTimeout passes.)
func TestServerStopsWhenClientResets(t *testing.T) {
	cli, c, served := pair(t, node.Config{}, "/ip4/127.0.0.1/udp/0/quic-v1")
	if tr := c.State().Transport; tr != "quic-v1" {
		t.Fatalf("connection over %q, want quic-v1", tr)
	}
	s := startEndless(t, cli, c)
	s.Reset()
	if err := waitServed(t, served); err == nil {
		t.Error("Serve returned nil after the client reset")
	}
}

func TestServerStopsWhenConnectionCloses(t *testing.T) {
	cli, c, served := pair(t, memConfig(), "/memory/0")
	startEndless(t, cli, c)
	c.Close()
	if err := waitServed(t, served); err == nil {
		t.Error("Serve returned nil after the connection closed")
	}
}

func TestNotSupported(t *testing.T) {
	mn := transport.NewMemNetwork()
	srv, err := node.New(node.Config{Transports: []node.TransportMaker{node.Memory(mn)}, ListenAddrs: []ma.Multiaddr{ma.StringCast("/memory/0")}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := node.New(node.Config{Transports: []node.TransportMaker{node.Memory(mn)}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := cli.Connect(ctx, srv.ID(), srv.Addrs()...); err != nil {
		t.Fatal(err)
	}
	_, err = cli.NewStream(ctx, srv.ID(), perf.ID)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("perf stream to a node without perf: %v, want a refusal", err)
	}
}

// BenchmarkDownload64MiB measures a 64 MiB perf download between two mote
// nodes over loopback TCP (Noise and yamux), one stream per iteration.
func BenchmarkDownload64MiB(b *testing.B) {
	const size = 64 << 20
	cli, c, served := pair(b, node.Config{DisableQUIC: true}, "/ip4/127.0.0.1/tcp/0")
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		s, err := cli.NewStreamOn(ctx, c, perf.ID)
		if err != nil {
			cancel()
			b.Fatalf("new stream: %v", err)
		}
		_, err = perf.Run(ctx, s, 0, size)
		cancel()
		if err != nil {
			b.Fatalf("Run: %v", err)
		}
		if err := waitServed(b, served); err != nil {
			b.Fatalf("Serve: %v", err)
		}
	}
}
