// Package multiaddrtest holds multiaddr test vectors shared by the
// multiaddr package's tests and the bench module's cross-check against
// go-multiaddr (which the main module does not require).
package multiaddrtest

// Real values: a bootstrap node's RSA peer ID, an Ed25519 peer ID, and the
// SHA-256 multihashes of "a" and "b" as certhashes.
const (
	PeerQm   = "QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC"
	PeerQm2  = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
	Peer12D3 = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	CertA    = "uEiDKl4ESyhu9yvrCMbOaI9xNp4bv-BR8TnK5gHeFr-5Iuw"
	CertB    = "uEiA-I-gWADlZSjOJT2Vk4bE0i716AIjULErLc-6u1ZwAnQ"
	Onion    = "vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd"
)

// Canonical are addresses whose text form is the one String prints.
var Canonical = []string{
	"/ip4/127.0.0.1/tcp/4001",
	"/ip4/1.2.3.4/tcp/4001/p2p/" + Peer12D3,
	"/ip4/1.2.3.4/udp/4001/quic-v1",
	"/ip4/1.2.3.4/udp/4001/quic-v1/webtransport/certhash/" + CertA + "/certhash/" + CertB + "/p2p/" + Peer12D3,
	"/ip6/::1/udp/4001/webrtc-direct/certhash/" + CertA,
	"/ip6/::1/udp/4001/webrtc-direct/certhash/" + CertA + "/p2p/" + Peer12D3 + "/p2p-circuit/webrtc/p2p/" + PeerQm,
	"/dns4/example.com/tcp/443/wss/p2p/" + PeerQm,
	"/dns6/example.com/tcp/443/tls/sni/example.com/ws",
	"/dns/example.com/udp/443/quic",
	"/dnsaddr/bootstrap.libp2p.io/p2p/" + PeerQm2,
	"/ip4/1.2.3.4/tcp/4001/p2p/" + PeerQm + "/p2p-circuit/p2p/" + Peer12D3,
	"/p2p/" + PeerQm,
	"/unix/tmp/a.sock",
	"/unix/tmp//odd dir/a.sock",
	"/memory/1234",
	"/memory/18446744073709551615",
	"/ip6/2001:db8::1/tcp/0",
	"/ip6/::ffff:1.2.3.4/tcp/65535",
	"/ip6/::",
	"/ip6zone/eth0/ip6/fe80::1/udp/1",
	"/ip4/10.0.0.0/ipcidr/8",
	"/ip4/1.2.3.4/tcp/80/http/http-path/a%2Fb+c%25",
	"/ip4/1.2.3.4/tcp/443/https",
	"/ip4/1.2.3.4/tcp/1/noise",
	"/ip4/1.2.3.4/dccp/1",
	"/ip4/1.2.3.4/sctp/2",
	"/ip4/1.2.3.4/udp/5/utp",
	"/ip4/1.2.3.4/udp/5/udt",
	"/ip4/1.2.3.4/tcp/5/p2p-webrtc-direct",
	"/ip4/1.2.3.4/tcp/5/plaintextv2",
	"/onion3/" + Onion + ":1234",
	"/p2p-circuit",
}
