package fuzz

import (
	"bytes"
	"testing"

	"github.com/mote-p2p/mote/wire/multiaddr"
)

// multiaddrSeeds are real addresses of every shape mote and Kubo advertise.
var multiaddrSeeds = []string{
	"/ip4/127.0.0.1/tcp/4001",
	"/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
	"/ip4/1.2.3.4/udp/4001/quic-v1/webtransport/certhash/uEiDKl4ESyhu9yvrCMbOaI9xNp4bv-BR8TnK5gHeFr-5Iuw/certhash/uEiA-I-gWADlZSjOJT2Vk4bE0i716AIjULErLc-6u1ZwAnQ/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
	"/ip6/::1/udp/4001/webrtc-direct/certhash/uEiDKl4ESyhu9yvrCMbOaI9xNp4bv-BR8TnK5gHeFr-5Iuw",
	"/dns4/example.com/tcp/443/wss/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC",
	"/ip4/1.2.3.4/tcp/4001/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN/p2p-circuit/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
	"/ip6zone/eth0/ip6/fe80::1/tcp/80/tls/sni/example.com/http/http-path/a%2Fb+c",
	"/ip6/::ffff:1.2.3.4/udp/1/quic",
	"/ip4/10.0.0.0/ipcidr/8",
	"/dnsaddr/bootstrap.libp2p.io/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC",
	"/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd:1234",
	"/memory/1234",
	"/unix/tmp/a.sock",
}

// multiaddrFuzzMaxLen bounds the inputs whose round trips are checked.
// Longer addresses only repeat the same code paths, and the fuzzer's
// minimizer, quadratic in input length, would spend whole runs on them.
const multiaddrFuzzMaxLen = 256

func FuzzMultiaddrBytes(f *testing.F) {
	for _, s := range multiaddrSeeds {
		f.Add(multiaddr.StringCast(s).Bytes())
	}
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Add([]byte{0x36, 0x05, 'a'})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		m, err := multiaddr.NewMultiaddrBytes(data)
		if !bytes.Equal(in, data) {
			t.Fatalf("NewMultiaddrBytes changed its input")
		}
		if err != nil {
			return
		}
		if len(m) == 0 {
			t.Fatalf("NewMultiaddrBytes(%x) returned an empty address", data)
		}
		if len(data) > multiaddrFuzzMaxLen {
			return
		}
		if b := m.Bytes(); !bytes.Equal(b, data) {
			t.Fatalf("NewMultiaddrBytes(%x).Bytes() = %x", data, b)
		}
		s := m.String()
		m2, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			t.Fatalf("%x prints as %q, which does not parse: %v", data, s, err)
		}
		if !m2.Equal(m) || m2.String() != s {
			t.Fatalf("%x prints as %q, which parses to %x", data, s, m2.Bytes())
		}
		for _, c := range m {
			c2, err := multiaddr.NewComponent(c.Protocol().Name, c.Value())
			if err != nil || !c2.Equal(c) {
				t.Fatalf("NewComponent(%q, %q) = %x, %v; want %x", c.Protocol().Name, c.Value(), c2.Bytes(), err, c.Bytes())
			}
		}
	})
}

func FuzzMultiaddrString(f *testing.F) {
	for _, s := range multiaddrSeeds {
		f.Add(s)
	}
	f.Add("")
	f.Add("/ipfs/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/")
	f.Add("/p2p/bafzaajaiaejcal72gwuz2or47oyxxn6b3rkwdmmkrxgkjxzy3rqt5kczyn7lcm3l")
	f.Add("/certhash/bciqmvf4bclfbxpok7lbddm42epoe3j4g574bi7cook4ya54fv7xeroy")
	f.Add("/tcp/0080")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := multiaddr.NewMultiaddr(s)
		if err != nil || len(s) > multiaddrFuzzMaxLen {
			return
		}
		b := m.Bytes()
		if len(b) == 0 || len(b) > multiaddr.MaxAddrLen {
			t.Fatalf("NewMultiaddr(%q) gave %d bytes", s, len(b))
		}
		mb, err := multiaddr.NewMultiaddrBytes(b)
		if err != nil || !mb.Equal(m) {
			t.Fatalf("NewMultiaddr(%q).Bytes() = %x, which parses to %v, %v", s, b, mb, err)
		}
		// The printed form is canonical: it parses to the same address and
		// prints the same again.
		out := m.String()
		m2, err := multiaddr.NewMultiaddr(out)
		if err != nil || !m2.Equal(m) || m2.String() != out {
			t.Fatalf("NewMultiaddr(%q) prints as %q, which parses to %v, %v", s, out, m2, err)
		}
	})
}
