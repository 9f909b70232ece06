package multiaddr_test

import (
	"net"
	"testing"

	"github.com/mote-p2p/mote/wire/multiaddr"
)

func TestToNetAddr(t *testing.T) {
	tests := []struct {
		in, network, addr string
	}{
		{"/ip4/1.2.3.4/tcp/80", "tcp", "1.2.3.4:80"},
		{"/ip4/1.2.3.4/udp/443", "udp", "1.2.3.4:443"},
		{"/ip6/::1/tcp/1", "tcp", "[::1]:1"},
		{"/ip6zone/eth0/ip6/fe80::1/udp/2", "udp", "[fe80::1%eth0]:2"},
		{"/ip4/1.2.3.4", "ip", "1.2.3.4"},
		{"/unix/tmp/a.sock", "unix", "/tmp/a.sock"},
	}
	for _, tt := range tests {
		a, err := multiaddr.ToNetAddr(multiaddr.StringCast(tt.in))
		if err != nil || a.Network() != tt.network || a.String() != tt.addr {
			t.Errorf("ToNetAddr(%s) = %v, %v; want %s %s", tt.in, a, err, tt.network, tt.addr)
		}
	}
	// A QUIC address converts once cut to its IP and UDP part.
	q := multiaddr.StringCast("/ip4/1.2.3.4/udp/1/quic-v1")
	if a, err := multiaddr.ToNetAddr(q[:2]); err != nil || a.(*net.UDPAddr).Port != 1 {
		t.Errorf("ToNetAddr(%s) = %v, %v", q[:2], a, err)
	}
	for _, m := range []multiaddr.Multiaddr{
		multiaddr.StringCast("/dns4/localhost/tcp/1"),
		multiaddr.StringCast("/ip4/1.2.3.4/udp/1/quic-v1"),
		multiaddr.StringCast("/ip4/1.2.3.4/tcp/1/tcp/2"),
		multiaddr.StringCast("/ip6zone/a"),
		multiaddr.StringCast("/ip6zone/a/ip4/1.2.3.4/tcp/1"),
		multiaddr.StringCast("/tcp/1"),
		multiaddr.Join(multiaddr.StringCast("/ip4/1.2.3.4"), multiaddr.StringCast("/unix/a")),
	} {
		if a, err := multiaddr.ToNetAddr(m); err == nil {
			t.Errorf("ToNetAddr(%s) = %v, want error", m, a)
		}
	}
	if a, err := multiaddr.ToNetAddr(nil); err == nil {
		t.Errorf("ToNetAddr(nil) = %v", a)
	}
}

func TestNetRoundTrip(t *testing.T) {
	for _, s := range []string{
		"/ip4/1.2.3.4/tcp/80", "/ip6/2001:db8::1/udp/443", "/ip6zone/eth0/ip6/fe80::1/tcp/1",
		"/ip4/127.0.0.1", "/unix/tmp/a.sock",
	} {
		m := multiaddr.StringCast(s)
		a, err := multiaddr.ToNetAddr(m)
		if err != nil {
			t.Fatalf("ToNetAddr(%s): %v", s, err)
		}
		back, err := multiaddr.FromNetAddr(a)
		if err != nil || !back.Equal(m) {
			t.Errorf("FromNetAddr(ToNetAddr(%s)) = %s, %v", s, back, err)
		}
	}
}

func TestListen(t *testing.T) {
	l, err := multiaddr.Listen(multiaddr.StringCast("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	nl := multiaddr.NetListener(l)
	defer nl.Close()
	if !multiaddr.IsIPLoopback(l.Multiaddr()) {
		t.Errorf("listening on %s", l.Multiaddr())
	}
	a, err := multiaddr.ToNetAddr(l.Multiaddr())
	if err != nil || a.String() != nl.Addr().String() {
		t.Fatalf("Multiaddr() %s does not match Addr() %s: %v", l.Multiaddr(), nl.Addr(), err)
	}
	done := make(chan error, 1)
	go func() {
		c, err := nl.Accept()
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	c, err := net.Dial(a.Network(), a.String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := multiaddr.Listen(multiaddr.StringCast("/dnsaddr/x")); err == nil {
		t.Errorf("Listen on /dnsaddr succeeded")
	}
}

func TestInterfaceMultiaddrs(t *testing.T) {
	addrs, err := multiaddr.InterfaceMultiaddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if len(a) == 0 || (a[0].Code() != multiaddr.P_IP4 && a[0].Code() != multiaddr.P_IP6) {
			t.Errorf("interface address %s", a)
		}
	}
}

func TestResolveUnspecified(t *testing.T) {
	ifaces := []multiaddr.Multiaddr{
		multiaddr.StringCast("/ip4/127.0.0.1"),
		multiaddr.StringCast("/ip6/::1"),
		multiaddr.StringCast("/ip4/10.0.0.2"),
	}
	got, err := multiaddr.ResolveUnspecifiedAddress(multiaddr.StringCast("/ip4/0.0.0.0/udp/1/quic-v1"), ifaces)
	if err != nil || len(got) != 2 || got[0].String() != "/ip4/127.0.0.1/udp/1/quic-v1" || got[1].String() != "/ip4/10.0.0.2/udp/1/quic-v1" {
		t.Errorf("resolved to %v, %v", got, err)
	}
	specific := multiaddr.StringCast("/ip4/1.2.3.4/tcp/1")
	if got, err := multiaddr.ResolveUnspecifiedAddress(specific, ifaces); err != nil || len(got) != 1 || !got[0].Equal(specific) {
		t.Errorf("specific address resolved to %v, %v", got, err)
	}
	if got, err := multiaddr.ResolveUnspecifiedAddress(multiaddr.StringCast("/ip6/::/tcp/1"), ifaces[:1]); err == nil {
		t.Errorf("resolved without a matching interface: %v", got)
	}
}
