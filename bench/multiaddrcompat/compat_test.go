package multiaddrcompat_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"testing"

	gma "github.com/multiformats/go-multiaddr"
	gmanet "github.com/multiformats/go-multiaddr/net"

	"github.com/mote-p2p/mote/wire/multiaddr"
	mt "github.com/mote-p2p/mote/wire/multiaddr/multiaddrtest"
)

// compatText is valid text beyond mt.Canonical: forms that print differently.
var compatText = []string{
	"/ipfs/" + mt.PeerQm,
	"/ip4/1.2.3.4/tcp/0080/",
	"/ip6/0:0:0:0:0:0:0:1",
	"/ip6/::ffff:0102:0304/udp/1",
	"/http-path/a%2fb%20c+d",
	"/onion3/" + strings.ToUpper(mt.Onion) + ":1",
	"/p2p/bafzaajaiaejcal72gwuz2or47oyxxn6b3rkwdmmkrxgkjxzy3rqt5kczyn7lcm3l",
	"/p2p/z5AanNVJCxnJ4fhdT9DsSUYvwjgHpsJ4pn4bueg8bvDe6b1tDj9rmdk",
	"/p2p/f01721220d52ebb89d85b02a284948203a62ff28389c57c9f42beec4ec20db76a68911c0b",
	"/p2p/k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8",
	"/certhash/mEiDKl4ESyhu9yvrCMbOaI9xNp4bv+BR8TnK5gHeFr+5Iuw",
	"/certhash/bciqmvf4bclfbxpok7lbddm42epoe3j4g574bi7cook4ya54fv7xeroy",
	"/certhash/BCIQMVF4BCLFBXPOK7LBDDM42EPOE3J4G574BI7COOK4YA54FV7XEROY",
	"/certhash/f1220CA978112CA1BBDCAFAC231B39A23DC4DA786EFF8147C4E72B9807785AFEE48BB",
	"/certhash/zQmbyV4BASLJCFiCfKz37eNwFX8y6hefQ7LGpzvEwJQzNft",
	"/certhash/UEiDKl4ESyhu9yvrCMbOaI9xNp4bv-BR8TnK5gHeFr-5Iuw==",
	"/certhash/uAAA",
	"/dns4/ex%20ample.com",
	"/unix//a b",
	"/sni/x",
}

// deviations are text that go-multiaddr accepts and we refuse on purpose:
// IPv6 text for ip4 and IPv4 text for ip6 (which go-multiaddr silently
// maps), and the protocols we leave out.
var deviations = []string{
	"/ip4/::ffff:1.2.3.4",
	"/ip6/1.2.3.4",
	"/onion/aaimaq4ygg2iegci:80",
	"/garlic32/566niximlxdzpanmn4qouucvua3k7neniwss47li5r6ugoertzuq",
}

func TestCompatText(t *testing.T) {
	all := append(append([]string{}, mt.Canonical...), compatText...)
	for _, s := range all {
		ours, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		theirs, err := gma.NewMultiaddr(s)
		if err != nil {
			t.Errorf("%q: go-multiaddr: %v", s, err)
			continue
		}
		if ours.String() != theirs.String() {
			t.Errorf("%q: String() = %q, go-multiaddr %q", s, ours, theirs)
		}
		if !bytes.Equal(ours.Bytes(), theirs.Bytes()) {
			t.Errorf("%q: Bytes() = %x, go-multiaddr %x", s, ours.Bytes(), theirs.Bytes())
		}
		for i, c := range ours {
			tc := theirs[i]
			if c.Code() != tc.Code() || c.Value() != tc.Value() || !bytes.Equal(c.RawValue(), tc.RawValue()) ||
				c.Protocol().Name != tc.Protocol().Name || c.Protocol().Size != tc.Protocol().Size || c.Protocol().Path != tc.Protocol().Path {
				t.Errorf("%q: component %d = %v, go-multiaddr %v", s, i, c, &tc)
			}
		}
	}
	for _, s := range deviations {
		if _, err := multiaddr.NewMultiaddr(s); err == nil {
			t.Errorf("%q accepted", s)
		}
		if _, err := gma.NewMultiaddr(s); err != nil {
			t.Errorf("%q: go-multiaddr now refuses it too: %v", s, err)
		}
	}
}

// TestCompatRejected checks that text we refuse, go-multiaddr refuses too
// (apart from the deliberate deviations).
func TestCompatRejected(t *testing.T) {
	for _, s := range []string{
		"", "/", "ip4/1.2.3.4", "/ip4", "/ip4/1.2.3", "/ip4/1.2.3.256", "/ip4/01.2.3.4",
		"/ip6/fe80::1%eth0", "/tcp/65536", "/tcp/-1", "/tcp/+1", "/tcp/0x10",
		"/ipcidr/256", "/memory/-1", "/foo", "/ip4/1.2.3.4//tcp/1", "/dns4//tcp/1",
		"/ip6zone//ip6/::1", "/unix", "/http-path/%zz", "/http-path/%2", "/p2p/QmInvalid0",
		"/p2p/1", "/p2p/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
		"/p2p/zQmbyV4BASLJCFiCfKz37eNwFX8y6hefQ7LGpzvEwJQzNft", "/certhash/u", "/certhash/uAA",
		"/certhash/xEiDK", "/onion3/" + mt.Onion + ":0", "/onion3/" + mt.Onion,
		"/onion3/" + mt.Onion + ":1:2", "/onion3/" + mt.Onion[:55] + ":1",
	} {
		if _, err := multiaddr.NewMultiaddr(s); err == nil {
			t.Errorf("%q accepted", s)
		}
		if m, err := gma.NewMultiaddr(s); err == nil {
			t.Errorf("%q: go-multiaddr accepts it as %s", s, m)
		}
	}
}

// TestCompatBinary mutates valid binary addresses at random and checks
// that both implementations accept the same ones and print them alike.
func TestCompatBinary(t *testing.T) {
	var seeds [][]byte
	for _, s := range append(append([]string{}, mt.Canonical...), compatText...) {
		seeds = append(seeds, multiaddr.StringCast(s).Bytes())
	}
	rng := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	for range 100000 {
		b := bytes.Clone(seeds[rng.IntN(len(seeds))])
		for range 1 + rng.IntN(3) {
			switch i := rng.IntN(len(b) + 1); rng.IntN(4) {
			case 0:
				if i < len(b) {
					b[i] = byte(rng.Uint32())
				}
			case 1:
				b = b[:i]
			case 2:
				b = append(b[:i:i], append([]byte{byte(rng.Uint32())}, b[i:]...)...)
			case 3:
				b = append(b, seeds[rng.IntN(len(seeds))]...)
			}
		}
		ours, err := multiaddr.NewMultiaddrBytes(b)
		theirs, theirErr := gma.NewMultiaddrBytes(b)
		if err != nil {
			// go-multiaddr knows a few protocols we leave out.
			if theirErr == nil && !errors.Is(err, multiaddr.ErrUnknownProtocol) && len(b) <= multiaddr.MaxAddrLen {
				t.Errorf("%x: %v, go-multiaddr accepts it as %s", b, err, theirs)
			}
			continue
		}
		accepted++
		if theirErr != nil {
			t.Errorf("%x: accepted as %s, go-multiaddr: %v", b, ours, theirErr)
			continue
		}
		if ours.String() != theirs.String() {
			t.Errorf("%x: String() = %q, go-multiaddr %q", b, ours, theirs)
		}
	}
	t.Logf("%d of 100000 mutated addresses were valid", accepted)
	if accepted < 1000 {
		t.Errorf("only %d mutated addresses were valid; the test is too weak", accepted)
	}
}

func TestCompatDialArgs(t *testing.T) {
	for _, s := range []string{
		"/ip4/1.2.3.4", "/ip4/1.2.3.4/tcp/80", "/ip4/1.2.3.4/udp/80/quic-v1", "/ip4/1.2.3.4/tcp/80/ws/p2p/" + mt.PeerQm,
		"/ip6/::1", "/ip6/::1/tcp/80", "/ip6/::1/udp/80", "/ip6/::ffff:1.2.3.4/tcp/1",
		"/ip6zone/eth0/ip6/fe80::1", "/ip6zone/eth0/ip6/fe80::1/tcp/80", "/ip6zone/eth0/ip6/fe80::1/udp/80",
		"/ip6zone/a/ip6zone/b/ip6/fe80::1", "/ip6zone/a/ip4/1.2.3.4", "/ip6zone/a", "/ip6zone/a/tcp/1",
		"/ip6zone/a/dns6/example.com/tcp/1",
		"/dns/example.com", "/dns/example.com/tcp/443", "/dns4/example.com/udp/443/quic-v1",
		"/dns6/example.com/tcp/443", "/dnsaddr/example.com", "/dnsaddr/example.com/tcp/1",
		"/unix/tmp/a.sock", "/ip4/1.2.3.4/unix/a", "/tcp/1", "/p2p/" + mt.PeerQm, "/memory/1",
		"/ip4/1.2.3.4/ws", "/ip4/1.2.3.4/tcp/1/tcp/2",
	} {
		n, h, err := multiaddr.DialArgs(multiaddr.StringCast(s))
		gn, gh, gerr := gmanet.DialArgs(gma.StringCast(s))
		if n != gn || h != gh || (err == nil) != (gerr == nil) {
			t.Errorf("DialArgs(%s) = %q, %q, %v; go-multiaddr %q, %q, %v", s, n, h, err, gn, gh, gerr)
		}
	}
	if _, _, err := multiaddr.DialArgs(nil); err == nil {
		t.Errorf("DialArgs(nil) succeeded")
	}
}

func TestCompatToNetAddr(t *testing.T) {
	for _, s := range []string{
		"/ip4/1.2.3.4", "/ip4/1.2.3.4/tcp/80", "/ip4/1.2.3.4/udp/80",
		"/ip6/::1", "/ip6/::1/tcp/80", "/ip6/2001:db8::1/udp/443",
		"/ip6zone/eth0/ip6/fe80::1", "/ip6zone/eth0/ip6/fe80::1/tcp/80", "/ip6zone/eth0/ip6/fe80::1/udp/80",
		"/unix/tmp/a.sock",
		// Refused by both.
		"/ip4/1.2.3.4/udp/80/quic-v1", "/ip4/1.2.3.4/tcp/80/p2p/" + mt.PeerQm, "/p2p/" + mt.PeerQm,
		"/ip6zone/a/ip4/1.2.3.4", "/memory/1", "/tcp/1",
	} {
		a, err := multiaddr.ToNetAddr(multiaddr.StringCast(s))
		ga, gerr := gmanet.ToNetAddr(gma.StringCast(s))
		if (err == nil) != (gerr == nil) {
			t.Errorf("ToNetAddr(%s): err %v, go-multiaddr %v", s, err, gerr)
			continue
		}
		if err == nil && (a.Network() != ga.Network() || a.String() != ga.String()) {
			t.Errorf("ToNetAddr(%s) = %s %s, go-multiaddr %s %s", s, a.Network(), a, ga.Network(), ga)
		}
	}
}

func TestCompatFromNetAddr(t *testing.T) {
	ip4 := net.IPv4(1, 2, 3, 4) // 16 bytes, mapped
	for _, a := range []net.Addr{
		&net.TCPAddr{IP: ip4, Port: 80},
		&net.TCPAddr{IP: ip4.To4(), Port: 65535},
		&net.TCPAddr{IP: ip4, Port: 80, Zone: "eth0"},
		&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 80, Zone: "eth0"},
		&net.TCPAddr{IP: net.ParseIP("::1"), Port: 0},
		&net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443},
		&net.UDPAddr{IP: ip4, Port: 1},
		&net.IPAddr{IP: net.ParseIP("fe80::1"), Zone: "en0"},
		&net.IPNet{IP: ip4, Mask: net.CIDRMask(8, 32)},
		&net.UnixAddr{Net: "unix", Name: "/tmp/a.sock"},
		&net.UnixAddr{Net: "unix", Name: "rel.sock"},
		// Refused by both.
		&net.TCPAddr{IP: ip4, Port: 65536},
		&net.TCPAddr{IP: ip4, Port: -1},
		&net.TCPAddr{Port: 1},
		&net.TCPAddr{IP: net.IP{1, 2, 3}, Port: 1},
		&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 80, Zone: "a/b"},
		&net.UnixAddr{Net: "unixgram", Name: "/tmp/a.sock"},
		&net.UnixAddr{Net: "unix", Name: ""},
		&net.UnixAddr{Net: "unix", Name: "/tmp/"},
	} {
		m, err := multiaddr.FromNetAddr(a)
		gm, gerr := gmanet.FromNetAddr(a)
		if (err == nil) != (gerr == nil) || !bytes.Equal(m.Bytes(), gm.Bytes()) {
			t.Errorf("FromNetAddr(%#v) = %s, %v; go-multiaddr %s, %v", a, m, err, gm, gerr)
		}
	}
	if _, err := multiaddr.FromNetAddr(nil); err == nil {
		t.Errorf("FromNetAddr(nil) succeeded")
	}
	if _, err := multiaddr.FromNetAddr((*net.TCPAddr)(nil)); err == nil {
		t.Errorf("FromNetAddr(nil *TCPAddr) succeeded")
	}
	for _, ip := range []net.IP{ip4, ip4.To4(), net.ParseIP("::1"), nil, {1}} {
		m, err := multiaddr.FromIP(ip)
		gm, gerr := gmanet.FromIP(ip)
		if (err == nil) != (gerr == nil) || !bytes.Equal(m.Bytes(), gm.Bytes()) {
			t.Errorf("FromIP(%v) = %s, %v; go-multiaddr %s, %v", ip, m, err, gm, gerr)
		}
	}
}

func TestCompatPredicates(t *testing.T) {
	for _, s := range []string{
		"/ip4/127.0.0.1", "/ip4/127.9.9.9/tcp/1", "/ip4/128.0.0.1", "/ip4/0.0.0.0/tcp/1", "/ip4/169.254.1.1",
		"/ip6/::1", "/ip6/::", "/ip6/::ffff:127.0.0.1", "/ip6/::ffff:0.0.0.0", "/ip6/::ffff:169.254.1.1",
		"/ip6/::ffff:224.0.0.1", "/ip6/fe80::1", "/ip6/febf::1", "/ip6/fec0::1", "/ip6/ff02::1", "/ip6/ff12::1", "/ip6/ff05::1",
		"/ip6zone/eth0/ip6/fe80::1/tcp/1", "/ip6zone/eth0/ip6/::1", "/ip6zone/eth0/ip6/::", "/ip6zone/eth0",
		"/ip6zone/eth0/ip4/127.0.0.1", "/dns4/localhost", "/tcp/0", "/unix/tmp/a", "/p2p-circuit",
	} {
		m, gm := multiaddr.StringCast(s), gma.StringCast(s)
		if got, want := multiaddr.IsIPLoopback(m), gmanet.IsIPLoopback(gm); got != want {
			t.Errorf("IsIPLoopback(%s) = %v, go-multiaddr %v", s, got, want)
		}
		if got, want := multiaddr.IsIPUnspecified(m), gmanet.IsIPUnspecified(gm); got != want {
			t.Errorf("IsIPUnspecified(%s) = %v, go-multiaddr %v", s, got, want)
		}
		if got, want := multiaddr.IsIP6LinkLocal(m), gmanet.IsIP6LinkLocal(gm); got != want {
			t.Errorf("IsIP6LinkLocal(%s) = %v, go-multiaddr %v", s, got, want)
		}
	}
}

func TestCompatResolveUnspecified(t *testing.T) {
	ifaces := []string{"/ip4/127.0.0.1", "/ip4/10.0.0.2", "/ip6/::1", "/ip6/fe80::1", "/ip4/192.168.1.1/tcp/9"}
	var ours []multiaddr.Multiaddr
	var theirs []gma.Multiaddr
	for _, s := range ifaces {
		ours = append(ours, multiaddr.StringCast(s))
		theirs = append(theirs, gma.StringCast(s))
	}
	for _, s := range []string{
		"/ip4/0.0.0.0/tcp/4001", "/ip6/::/udp/4001/quic-v1", "/ip4/0.0.0.0", "/ip4/1.2.3.4/tcp/1",
		"/ip6zone/eth0/ip6/::/tcp/1", "/dns4/example.com/tcp/1",
	} {
		got, err := multiaddr.ResolveUnspecifiedAddress(multiaddr.StringCast(s), ours)
		want, gerr := gmanet.ResolveUnspecifiedAddress(gma.StringCast(s), theirs)
		if (err == nil) != (gerr == nil) || len(got) != len(want) {
			t.Errorf("ResolveUnspecifiedAddress(%s) = %v, %v; go-multiaddr %v, %v", s, got, err, want, gerr)
			continue
		}
		for i := range got {
			if got[i].String() != want[i].String() {
				t.Errorf("ResolveUnspecifiedAddress(%s)[%d] = %s, go-multiaddr %s", s, i, got[i], want[i])
			}
		}
	}
	if _, err := multiaddr.ResolveUnspecifiedAddress(multiaddr.StringCast("/ip6/::/tcp/1"), ours[:2]); err == nil {
		t.Errorf("resolving with no matching interface succeeded")
	}
}

func TestCompatCodes(t *testing.T) {
	for _, c := range [][2]int{
		{multiaddr.P_IP4, gma.P_IP4}, {multiaddr.P_TCP, gma.P_TCP}, {multiaddr.P_DCCP, gma.P_DCCP},
		{multiaddr.P_IP6, gma.P_IP6}, {multiaddr.P_IP6ZONE, gma.P_IP6ZONE}, {multiaddr.P_IPCIDR, gma.P_IPCIDR},
		{multiaddr.P_DNS, gma.P_DNS}, {multiaddr.P_DNS4, gma.P_DNS4}, {multiaddr.P_DNS6, gma.P_DNS6},
		{multiaddr.P_DNSADDR, gma.P_DNSADDR}, {multiaddr.P_SCTP, gma.P_SCTP}, {multiaddr.P_UDP, gma.P_UDP},
		{multiaddr.P_P2P_WEBRTC_DIRECT, gma.P_P2P_WEBRTC_DIRECT}, {multiaddr.P_WEBRTC_DIRECT, gma.P_WEBRTC_DIRECT},
		{multiaddr.P_WEBRTC, gma.P_WEBRTC}, {multiaddr.P_CIRCUIT, gma.P_CIRCUIT}, {multiaddr.P_UDT, gma.P_UDT},
		{multiaddr.P_UTP, gma.P_UTP}, {multiaddr.P_UNIX, gma.P_UNIX}, {multiaddr.P_P2P, gma.P_P2P},
		{multiaddr.P_IPFS, gma.P_IPFS}, {multiaddr.P_HTTPS, gma.P_HTTPS}, {multiaddr.P_ONION3, gma.P_ONION3},
		{multiaddr.P_TLS, gma.P_TLS}, {multiaddr.P_SNI, gma.P_SNI}, {multiaddr.P_NOISE, gma.P_NOISE},
		{multiaddr.P_QUIC, gma.P_QUIC}, {multiaddr.P_QUIC_V1, gma.P_QUIC_V1}, {multiaddr.P_WEBTRANSPORT, gma.P_WEBTRANSPORT},
		{multiaddr.P_CERTHASH, gma.P_CERTHASH}, {multiaddr.P_WS, gma.P_WS}, {multiaddr.P_WSS, gma.P_WSS},
		{multiaddr.P_HTTP, gma.P_HTTP}, {multiaddr.P_HTTP_PATH, gma.P_HTTP_PATH}, {multiaddr.P_MEMORY, gma.P_MEMORY},
		{multiaddr.P_PLAINTEXTV2, gma.P_PLAINTEXTV2},
	} {
		if c[0] != c[1] {
			t.Errorf("code %#x, go-multiaddr %#x", c[0], c[1])
			continue
		}
		p, ok := multiaddr.ProtocolWithCode(c[0])
		gp := gma.ProtocolWithCode(c[1])
		if !ok || p.Name != gp.Name || p.Size != gp.Size || p.Path != gp.Path {
			t.Errorf("%#x: %+v, go-multiaddr %+v", c[0], p, gp)
		}
	}
}
