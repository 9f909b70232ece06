package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// tcpNode is a TCP transport that records the local address of each raw
// dial attempt (nil: an ephemeral port).
type tcpNode struct {
	tr *TCP
	up *Upgrader

	mu    sync.Mutex
	dials []*net.TCPAddr
}

func newTCPNode(t *testing.T, cfg TCPConfig) *tcpNode {
	t.Helper()
	n := &tcpNode{up: newUpgrader(t)}
	n.tr = NewTCPWithConfig(n.up, cfg)
	n.tr.attempt = func(laddr *net.TCPAddr) {
		n.mu.Lock()
		n.dials = append(n.dials, laddr)
		n.mu.Unlock()
	}
	return n
}

// attempts returns and forgets the local addresses of the dials so far, as
// ports: 0 for an ephemeral one.
func (n *tcpNode) attempts() []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ports []int
	for _, a := range n.dials {
		p := 0
		if a != nil {
			p = a.Port
		}
		ports = append(ports, p)
	}
	n.dials = nil
	return ports
}

// tcpListening is an open listener and the connections it accepts.
type tcpListening struct {
	l     Listener
	port  int
	conns chan Conn
}

// listen listens on addr and accepts in the background until the test
// ends (or the listener is closed).
func (n *tcpNode) listen(t *testing.T, addr string) *tcpListening {
	t.Helper()
	l, err := n.tr.Listen(ma.StringCast(addr))
	if err != nil {
		t.Fatal(err)
	}
	tl := &tcpListening{l: l, port: tcpPortOf(t, l.Multiaddr()), conns: make(chan Conn, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			tl.conns <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		close(tl.conns)
		for c := range tl.conns {
			c.Close()
		}
	})
	return tl
}

// accepted waits for the next connection the listener accepted.
func (tl *tcpListening) accepted(t *testing.T, ctx context.Context) Conn {
	t.Helper()
	select {
	case c := <-tl.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-ctx.Done():
		t.Fatal("no connection accepted")
		return nil
	}
}

// dial connects n to tl's listener (of peer to) and checks that both ends
// see the same local port of n's, which it returns.
func (n *tcpNode) dial(t *testing.T, ctx context.Context, to *tcpNode, tl *tcpListening) int {
	t.Helper()
	c, err := n.tr.Dial(ctx, tl.l.Multiaddr(), to.up.LocalPeer())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	in := tl.accepted(t, ctx)
	local, seen := tcpPortOf(t, c.LocalMultiaddr()), tcpPortOf(t, in.RemoteMultiaddr())
	if local != seen {
		t.Fatalf("dialer's local port %d, listener sees %d", local, seen)
	}
	tcpRoundTrip(t, ctx, c, in)
	return local
}

// tcpRoundTrip checks that a stream opened on c reaches in.
func tcpRoundTrip(t *testing.T, ctx context.Context, c, in Conn) {
	t.Helper()
	s, err := c.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	r, err := in.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := make([]byte, 1)
	if _, err := io.ReadFull(r, b); err != nil || b[0] != 'x' {
		t.Fatalf("read %q, %v", b, err)
	}
}

func tcpPortOf(t *testing.T, m ma.Multiaddr) int {
	t.Helper()
	_, host, err := ma.DialArgs(m)
	if err != nil {
		t.Fatal(err)
	}
	_, p, err := net.SplitHostPort(host)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func tcpTestCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func tcpNeedReusePort(t *testing.T) {
	if !reusePortSupported {
		t.Skip("no port reuse on this system")
	}
}

// tcpHasIPv6Loopback reports whether ::1 can be listened on.
func tcpHasIPv6Loopback() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// TestTCPDialFromListenPort: a dial leaves from the listen port, as both
// ends see.
func TestTCPDialFromListenPort(t *testing.T) {
	tcpNeedReusePort(t)
	for _, tc := range []struct {
		name   string
		listen string
		ip6    bool
	}{
		{"ip4", "/ip4/127.0.0.1/tcp/0", false},
		{"ip6", "/ip6/::1/tcp/0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ip6 && !tcpHasIPv6Loopback() {
				t.Skip("no IPv6 loopback")
			}
			ctx := tcpTestCtx(t)
			a, b := newTCPNode(t, TCPConfig{}), newTCPNode(t, TCPConfig{})
			la, lb := a.listen(t, tc.listen), b.listen(t, tc.listen)
			if got := a.dial(t, ctx, b, lb); got != la.port {
				t.Fatalf("dial left from port %d, want the listen port %d", got, la.port)
			}
			if got, want := a.attempts(), []int{la.port}; !slices.Equal(got, want) {
				t.Fatalf("dial attempts from ports %v, want %v", got, want)
			}
		})
	}
}

// TestTCPDialFamilies: a listener serves only dials to its own address
// family.
func TestTCPDialFamilies(t *testing.T) {
	tcpNeedReusePort(t)
	if !tcpHasIPv6Loopback() {
		t.Skip("no IPv6 loopback")
	}
	ctx := tcpTestCtx(t)
	a, b := newTCPNode(t, TCPConfig{}), newTCPNode(t, TCPConfig{})
	a4 := a.listen(t, "/ip4/127.0.0.1/tcp/0")
	b6 := b.listen(t, "/ip6/::1/tcp/0")
	if got := a.dial(t, ctx, b, b6); got == a4.port {
		t.Fatalf("dial to IPv6 left from the IPv4 listen port %d", got)
	}
	if got, want := a.attempts(), []int{0}; !slices.Equal(got, want) {
		t.Fatalf("dial attempts from ports %v, want %v", got, want)
	}
}

// TestTCPDialBothWays: two listening transports dial each other both ways;
// a dial whose reused port would repeat an existing connection's four
// addresses and ports falls back to an ephemeral port.
func TestTCPDialBothWays(t *testing.T) {
	tcpNeedReusePort(t)
	ctx := tcpTestCtx(t)
	a, b := newTCPNode(t, TCPConfig{}), newTCPNode(t, TCPConfig{})
	la, lb := a.listen(t, "/ip4/127.0.0.1/tcp/0"), b.listen(t, "/ip4/127.0.0.1/tcp/0")

	if got := a.dial(t, ctx, b, lb); got != la.port {
		t.Fatalf("a→b left from port %d, want %d", got, la.port)
	}
	if got, want := a.attempts(), []int{la.port}; !slices.Equal(got, want) {
		t.Fatalf("a→b attempts from ports %v, want %v", got, want)
	}
	// b:P_b → a:P_a is the connection a dialed, seen from the other end.
	if got := b.dial(t, ctx, a, la); got == lb.port {
		t.Fatalf("b→a left from port %d, which a→b uses already", got)
	}
	if got, want := b.attempts(), []int{lb.port, 0}; !slices.Equal(got, want) {
		t.Fatalf("b→a attempts from ports %v, want %v", got, want)
	}
	// And a second a→b repeats the first.
	if got := a.dial(t, ctx, b, lb); got == la.port {
		t.Fatalf("second a→b left from port %d, which the first uses", got)
	}
	if got, want := a.attempts(), []int{la.port, 0}; !slices.Equal(got, want) {
		t.Fatalf("second a→b attempts from ports %v, want %v", got, want)
	}
}

// TestTCPDialAfterListenerClose: dials leave from the port of a listener
// still open, and from an ephemeral port once none is.
func TestTCPDialAfterListenerClose(t *testing.T) {
	tcpNeedReusePort(t)
	ctx := tcpTestCtx(t)
	a, b := newTCPNode(t, TCPConfig{}), newTCPNode(t, TCPConfig{})
	l1, l2 := a.listen(t, "/ip4/127.0.0.1/tcp/0"), a.listen(t, "/ip4/127.0.0.1/tcp/0")
	lb := b.listen(t, "/ip4/127.0.0.1/tcp/0")

	if got := a.dial(t, ctx, b, lb); got != l1.port {
		t.Fatalf("dial left from port %d, want the first listener's %d", got, l1.port)
	}
	if err := l1.l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := a.dial(t, ctx, b, lb); got != l2.port {
		t.Fatalf("dial left from port %d, want the open listener's %d", got, l2.port)
	}
	if err := l2.l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := a.dial(t, ctx, b, lb); got == l1.port || got == l2.port {
		t.Fatalf("dial left from the closed listeners' port %d", got)
	}
	if got, want := a.attempts(), []int{l1.port, l2.port, 0}; !slices.Equal(got, want) {
		t.Fatalf("dial attempts from ports %v, want %v", got, want)
	}
	a.tr.mu.Lock()
	n := len(a.tr.lns)
	a.tr.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d listeners remembered after all closed", n)
	}
}

// TestTCPRelisten: a listener may be opened again on the port it had while
// connections dialed from that port are open, and dials use it again.
func TestTCPRelisten(t *testing.T) {
	tcpNeedReusePort(t)
	ctx := tcpTestCtx(t)
	a, b := newTCPNode(t, TCPConfig{}), newTCPNode(t, TCPConfig{})
	la := a.listen(t, "/ip4/127.0.0.1/tcp/0")
	lb1, lb2 := b.listen(t, "/ip4/127.0.0.1/tcp/0"), b.listen(t, "/ip4/127.0.0.1/tcp/0")
	if got := a.dial(t, ctx, b, lb1); got != la.port {
		t.Fatalf("dial left from port %d, want %d", got, la.port)
	}
	if err := la.l.Close(); err != nil {
		t.Fatal(err)
	}
	la2 := a.listen(t, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", la.port))
	if got := a.dial(t, ctx, b, lb2); got != la2.port {
		t.Fatalf("dial left from port %d, want %d", got, la2.port)
	}
	if got, want := a.attempts(), []int{la.port, la.port}; !slices.Equal(got, want) {
		t.Fatalf("dial attempts from ports %v, want %v", got, want)
	}
}

// TestTCPReuseDisabled: with reuse off, by config or environment, dials
// leave from ephemeral ports.
func TestTCPReuseDisabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  TCPConfig
		env  string
	}{
		{"config", TCPConfig{DisableReusePort: true}, ""},
		{"env false", TCPConfig{}, "false"},
		{"env F", TCPConfig{}, "F"},
		{"env 0", TCPConfig{}, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(EnvReusePort, tc.env)
			}
			ctx := tcpTestCtx(t)
			a, b := newTCPNode(t, tc.cfg), newTCPNode(t, TCPConfig{})
			la, lb := a.listen(t, "/ip4/127.0.0.1/tcp/0"), b.listen(t, "/ip4/127.0.0.1/tcp/0")
			if got := a.dial(t, ctx, b, lb); got == la.port {
				t.Fatalf("dial left from the listen port %d", got)
			}
			if got, want := a.attempts(), []int{0}; !slices.Equal(got, want) {
				t.Fatalf("dial attempts from ports %v, want %v", got, want)
			}
			// Nor is the port open to another SO_REUSEPORT socket.
			lc := net.ListenConfig{Control: reusePortControl}
			if ln, err := lc.Listen(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", la.port)); err == nil {
				ln.Close()
				t.Fatal("a second listener could bind the port")
			}
		})
	}
	t.Run("env true", func(t *testing.T) {
		tcpNeedReusePort(t)
		t.Setenv(EnvReusePort, "true")
		if !NewTCP(newUpgrader(t)).reuse {
			t.Fatal("reuse off")
		}
	})
}

// TestTCPDialRefused: a dial from the listen port to a closed port fails
// with its one refused attempt; it is not made again from an ephemeral
// port.
func TestTCPDialRefused(t *testing.T) {
	tcpNeedReusePort(t)
	ctx := tcpTestCtx(t)
	a := newTCPNode(t, TCPConfig{})
	la := a.listen(t, "/ip4/127.0.0.1/tcp/0")
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	_, err = a.tr.Dial(ctx, ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)), "")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial of a closed port: %v, want connection refused", err)
	}
	if got, want := a.attempts(), []int{la.port}; !slices.Equal(got, want) {
		t.Fatalf("dial attempts from ports %v, want %v", got, want)
	}
}

// TestTCPDialOwnListener: dialing our own listen address from its port
// would connect the socket to itself; the dial reaches the listener from
// an ephemeral port instead.
func TestTCPDialOwnListener(t *testing.T) {
	tcpNeedReusePort(t)
	ctx := tcpTestCtx(t)
	a := newTCPNode(t, TCPConfig{})
	la := a.listen(t, "/ip4/127.0.0.1/tcp/0")
	c, err := a.tr.Dial(ctx, la.l.Multiaddr(), a.up.LocalPeer())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	in := la.accepted(t, ctx)
	if got := tcpPortOf(t, c.LocalMultiaddr()); got == la.port {
		t.Fatalf("dial left from the listen port %d", got)
	}
	tcpRoundTrip(t, ctx, c, in)
	if got, want := a.attempts(), []int{la.port, 0}; !slices.Equal(got, want) {
		t.Fatalf("dial attempts from ports %v, want %v", got, want)
	}
}

// TestReuseFailed: which dial errors are blamed on the reused port.
func TestReuseFailed(t *testing.T) {
	tcpNeedReusePort(t)
	dialErr := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp4", Err: err} }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"bind in use", dialErr(os.NewSyscallError("bind", syscall.EADDRINUSE)), true},
		{"bind other", dialErr(os.NewSyscallError("bind", syscall.EACCES)), true},
		{"connect four-tuple taken", dialErr(os.NewSyscallError("connect", syscall.EADDRNOTAVAIL)), true},
		{"connect in use", dialErr(os.NewSyscallError("connect", syscall.EADDRINUSE)), true},
		{"setsockopt", dialErr(&reuseOptError{syscall.ENOPROTOOPT}), true},
		{"refused", dialErr(os.NewSyscallError("connect", syscall.ECONNREFUSED)), false},
		{"timed out", dialErr(os.NewSyscallError("connect", syscall.ETIMEDOUT)), false},
		{"unreachable", dialErr(os.NewSyscallError("connect", syscall.ENETUNREACH)), false},
		{"context", dialErr(context.DeadlineExceeded), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reuseFailed(tc.err); got != tc.want {
				t.Fatalf("reuseFailed(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestTCPLocalAddr: which listener a dial reuses, by destination.
func TestTCPLocalAddr(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bound  []string // listeners' bound addresses
		route  string   // source IP the kernel would pick ("" for an error)
		dst    string
		want   string // "" for an ephemeral port
		noReus bool
	}{
		{name: "none", dst: "127.0.0.1:1", want: ""},
		{name: "loopback to loopback", bound: []string{"127.0.0.1:4001"}, dst: "127.0.0.1:1", want: "127.0.0.1:4001"},
		{name: "loopback to other loopback", bound: []string{"127.0.0.1:4001"}, dst: "127.0.0.2:1", want: "127.0.0.1:4001"},
		{name: "loopback to remote", bound: []string{"127.0.0.1:4001"}, dst: "192.0.2.1:1", want: ""},
		{name: "unspecified to remote", bound: []string{"0.0.0.0:4001"}, dst: "192.0.2.1:1", want: "0.0.0.0:4001"},
		{name: "unspecified to loopback", bound: []string{"0.0.0.0:4001"}, dst: "127.0.0.1:1", want: "0.0.0.0:4001"},
		{name: "loopback first for loopback", bound: []string{"0.0.0.0:4002", "127.0.0.1:4001"}, dst: "127.0.0.1:1", want: "127.0.0.1:4001"},
		{name: "unspecified for remote", bound: []string{"127.0.0.1:4001", "0.0.0.0:4002"}, dst: "192.0.2.1:1", want: "0.0.0.0:4002"},
		{name: "oldest of a kind", bound: []string{"0.0.0.0:4001", "0.0.0.0:4002"}, dst: "192.0.2.1:1", want: "0.0.0.0:4001"},
		{name: "ip6 unspecified", bound: []string{"[::]:4001"}, dst: "[2001:db8::1]:1", want: "[::]:4001"},
		{name: "ip6 loopback", bound: []string{"[::1]:4001"}, dst: "[::1]:1", want: "[::1]:4001"},
		{name: "ip6 listener, ip4 destination", bound: []string{"[::]:4001"}, dst: "192.0.2.1:1", want: ""},
		{name: "ip4 listener, ip6 destination", bound: []string{"0.0.0.0:4001", "127.0.0.1:4002"}, dst: "[::1]:1", want: ""},
		{name: "ip4-mapped destination", bound: []string{"[::]:4001"}, dst: "[::ffff:192.0.2.1]:1", want: ""},
		{name: "specific routed", bound: []string{"192.0.2.5:4001"}, route: "192.0.2.5", dst: "198.51.100.1:1", want: "192.0.2.5:4001"},
		{name: "specific first", bound: []string{"0.0.0.0:4002", "192.0.2.5:4001"}, route: "192.0.2.5", dst: "198.51.100.1:1", want: "192.0.2.5:4001"},
		{name: "specific not routed", bound: []string{"192.0.2.5:4001"}, route: "10.0.0.1", dst: "10.0.0.2:1", want: ""},
		{name: "specific not routed, unspecified", bound: []string{"192.0.2.5:4001", "0.0.0.0:4002"}, route: "10.0.0.1", dst: "10.0.0.2:1", want: "0.0.0.0:4002"},
		{name: "specific, no route", bound: []string{"192.0.2.5:4001"}, route: "", dst: "10.0.0.2:1", want: ""},
		{name: "specific to loopback", bound: []string{"192.0.2.5:4001"}, route: "192.0.2.5", dst: "127.0.0.1:1", want: ""},
		{name: "ip6 specific routed", bound: []string{"[2001:db8::5]:4001"}, route: "2001:db8::5", dst: "[2001:db8:1::1]:1", want: "[2001:db8::5]:4001"},
		{name: "disabled", bound: []string{"0.0.0.0:4001"}, dst: "192.0.2.1:1", want: "", noReus: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &TCP{reuse: !tc.noReus}
			for _, b := range tc.bound {
				tr.lns = append(tr.lns, &tcpListener{t: tr, bound: netip.MustParseAddrPort(b)})
			}
			tr.route = func(netip.Addr) (netip.Addr, error) {
				if tc.route == "" {
					return netip.Addr{}, errors.New("no route")
				}
				return netip.MustParseAddr(tc.route), nil
			}
			got := ""
			if a := tr.localAddr(tc.dst); a != nil {
				got = a.String()
			}
			if got != tc.want {
				t.Fatalf("local address %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRouteSource: the kernel's source for a loopback destination is
// loopback.
func TestRouteSource(t *testing.T) {
	src, err := routeSource(netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if !src.IsLoopback() {
		t.Fatalf("source %s for 127.0.0.1", src)
	}
}
