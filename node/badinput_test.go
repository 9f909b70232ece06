package node

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mote-p2p/mote/identify"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/wire"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// logBuf collects a node's log lines for assertions.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// rawDial opens a plain TCP connection to n's first address.
func rawDial(t *testing.T, n *Node) net.Conn {
	t.Helper()
	na, err := ma.ToNetAddr(n.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", na.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectClosed reads from c until the node closes it, failing after 10 s.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("node did not close the connection")
	}
}

// TestBadInputClosesConnection feeds broken bytes to a listening node on
// a raw socket: each connection is closed with a logged reason, the node
// keeps serving a well-behaved peer, and no goroutine is left behind.
func TestBadInputClosesConnection(t *testing.T) {
	header := wire.AppendMessage(nil, wire.ProtocolID)
	cases := []struct {
		name string
		send []byte
		log  string // expected in the node's log
	}{
		{"garbage instead of multistream", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "inbound connection refused"},
		{"over-long varint", bytes.Repeat([]byte{0xff}, 12), "inbound connection refused"},
		{"non-minimal varint", []byte{0x93, 0x00}, "inbound connection refused"},
		{"message above limit", append(wire.AppendUvarint(nil, 5000), bytes.Repeat([]byte{'a'}, 5000)...), "inbound connection refused"},
		{"handshake never finishes", wire.AppendSelect(nil, "/noise"), "inbound connection refused"},
		{"silent peer", nil, "inbound connection refused"},
		{"noise frame of garbage", append(wire.AppendSelect(nil, "/noise"), 0, 32, 1, 2, 3), "inbound connection refused"},
	}
	var logs logBuf
	lg := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a := newNode(t, nil, true, func(c *Config) {
		c.HandshakeTimeout = 500 * time.Millisecond
		c.Logger = lg
	})
	ctx := testCtx(t)
	base := runtime.NumGoroutine()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := strings.Count(logs.String(), tc.log)
			c := rawDial(t, a)
			if _, err := c.Write(append(header[:len(header):len(header)], tc.send...)); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c)
			waitFor(t, func() bool { return strings.Count(logs.String(), tc.log) > before })
			// The node still serves others.
			b := newNode(t, nil, false)
			connect(t, ctx, b, a)
			if _, err := b.Ping(ctx, a.ID()); err != nil {
				t.Fatalf("ping after bad input: %v", err)
			}
			b.Close()
		})
	}
	waitGoroutines(t, base)
	if t.Failed() {
		t.Log(logs.String())
	}
}

// liar is a node whose identify answer is rewritten by f.
func liar(t *testing.T, mn *transport.MemNetwork, f func(m *identify.Message)) *Node {
	t.Helper()
	n := newNode(t, mn, true)
	n.SetHandler(identify.ID, func(s *Stream) {
		m := identify.Build(n.info.Load(), s.Conn().RemoteMultiaddr())
		f(m)
		// Written raw, bypassing WriteMessage's own size limit.
		wire.WriteLP(s, m.Append(nil))
		s.Close()
	})
	return n
}

// TestIdentifyLiesCloseConnection: a peer whose identify carries another
// peer's key, a forged peer record, or an oversized message is cut off.
func TestIdentifyLiesCloseConnection(t *testing.T) {
	other, err := peer.GenerateEd25519(nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		lie  func(m *identify.Message)
		want error
	}{
		{"key of another peer", func(m *identify.Message) {
			m.PublicKey = peer.MarshalPublicKey(other.Public())
		}, identify.ErrPeerMismatch},
		{"forged signed record", func(m *identify.Message) {
			m.SignedPeerRecord = bytes.Clone(m.SignedPeerRecord)
			m.SignedPeerRecord[len(m.SignedPeerRecord)-1] ^= 1
		}, identify.ErrBadRecord},
		{"record of another peer", func(m *identify.Message) {
			rec, err := peer.SealPeerRecord(other, &peer.PeerRecord{ID: peer.IDFromPublicKey(other.Public()), Seq: 1})
			if err != nil {
				panic(err)
			}
			m.SignedPeerRecord = rec
		}, identify.ErrBadRecord},
		{"message above limit", func(m *identify.Message) {
			m.AgentVersion = strings.Repeat("x", 9000)
		}, wire.ErrMessageTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mn := transport.NewMemNetwork()
			ctx := testCtx(t)
			bad := liar(t, mn, tc.lie)
			b := newNode(t, mn, false)
			c, err := b.Connect(ctx, bad.ID(), bad.Addrs()...)
			if err != nil {
				t.Fatal(err)
			}
			<-c.Identified()
			if c.IdentifyErr() == nil {
				t.Fatal("identify accepted the lie")
			}
			if tc.want != nil && !errors.Is(c.IdentifyErr(), tc.want) {
				t.Errorf("identify error = %v, want %v", c.IdentifyErr(), tc.want)
			}
			select {
			case <-c.Done():
			case <-ctx.Done():
				t.Fatal("connection to a lying peer stayed open")
			}
			if b.Peerstore().Agent(bad.ID()) != "" {
				t.Errorf("lie stored in the peerstore")
			}
		})
	}
}
