package multiaddr_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mote-p2p/mote/wire/multiaddr"
	mt "github.com/mote-p2p/mote/wire/multiaddr/multiaddrtest"
)

func TestRoundTrip(t *testing.T) {
	for _, s := range mt.Canonical {
		m, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			t.Errorf("NewMultiaddr(%q): %v", s, err)
			continue
		}
		if got := m.String(); got != s {
			t.Errorf("NewMultiaddr(%q).String() = %q", s, got)
		}
		b := m.Bytes()
		m2, err := multiaddr.NewMultiaddrBytes(b)
		if err != nil {
			t.Errorf("NewMultiaddrBytes(%x) from %q: %v", b, s, err)
			continue
		}
		if !m2.Equal(m) || m2.String() != s || !bytes.Equal(m2.Bytes(), b) {
			t.Errorf("%q: binary round trip gave %q", s, m2)
		}
		// Components rebuilt from their text values must be the same.
		for _, c := range m {
			c2, err := multiaddr.NewComponent(c.Protocol().Name, c.Value())
			if err != nil || !c2.Equal(c) {
				t.Errorf("NewComponent(%q, %q) = %v, %v; want %v", c.Protocol().Name, c.Value(), c2, err, c)
			}
		}
	}
}

// TestNonCanonical covers accepted text that prints differently.
func TestNonCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/ipfs/" + mt.PeerQm, "/p2p/" + mt.PeerQm},
		{"/ip4/1.2.3.4/tcp/4001/ipfs/" + mt.Peer12D3, "/ip4/1.2.3.4/tcp/4001/p2p/" + mt.Peer12D3},
		{"/ip4/1.2.3.4/tcp/1/", "/ip4/1.2.3.4/tcp/1"},
		{"/ip4/1.2.3.4///", "/ip4/1.2.3.4"},
		{"/ip4/1.2.3.4/tcp/0080", "/ip4/1.2.3.4/tcp/80"},
		{"/ip6/0:0:0:0:0:0:0:1", "/ip6/::1"},
		{"/ip6/2001:DB8::1", "/ip6/2001:db8::1"},
		{"/ip6/::ffff:0102:0304", "/ip6/::ffff:1.2.3.4"},
		{"/unix/tmp/a.sock/", "/unix/tmp/a.sock"},
		{"/http-path/a%2fb%20c", "/http-path/a%2Fb+c"},
		{"/http-path/a~b.c-d_e", "/http-path/a~b.c-d_e"},
		{"/onion3/" + strings.ToUpper(mt.Onion) + ":1234", "/onion3/" + mt.Onion + ":1234"},
		// A peer ID as a CIDv1 in several bases, and a certhash in several.
		{"/p2p/bafzaajaiaejcal72gwuz2or47oyxxn6b3rkwdmmkrxgkjxzy3rqt5kczyn7lcm3l", "/p2p/" + mt.Peer12D3},
		{"/p2p/BAFZAAJAIAEJCAL72GWUZ2OR47OYXXN6B3RKWDMMKRXGKJXZY3RQT5KCZYN7LCM3L", "/p2p/" + mt.Peer12D3},
		{"/p2p/z5AanNVJCxnJ4fhdT9DsSUYvwjgHpsJ4pn4bueg8bvDe6b1tDj9rmdk", "/p2p/" + mt.Peer12D3},
		{"/p2p/bafzbeigvf25ytwc3akrijfecaotc74udrhcxzh2cx3we5qqnw5vgrei4bm", "/p2p/" + mt.PeerQm},
		{"/p2p/f01721220d52ebb89d85b02a284948203a62ff28389c57c9f42beec4ec20db76a68911c0b", "/p2p/" + mt.PeerQm},
		{"/certhash/mEiDKl4ESyhu9yvrCMbOaI9xNp4bv+BR8TnK5gHeFr+5Iuw", "/certhash/" + mt.CertA},
		{"/certhash/bciqmvf4bclfbxpok7lbddm42epoe3j4g574bi7cook4ya54fv7xeroy", "/certhash/" + mt.CertA},
		{"/certhash/BCIQMVF4BCLFBXPOK7LBDDM42EPOE3J4G574BI7COOK4YA54FV7XEROY", "/certhash/" + mt.CertA},
		{"/certhash/f1220ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb", "/certhash/" + mt.CertA},
		{"/certhash/zQmbyV4BASLJCFiCfKz37eNwFX8y6hefQ7LGpzvEwJQzNft", "/certhash/" + mt.CertA},
		{"/certhash/UEiDKl4ESyhu9yvrCMbOaI9xNp4bv-BR8TnK5gHeFr-5Iuw==", "/certhash/" + mt.CertA},
	}
	for _, tt := range tests {
		m, err := multiaddr.NewMultiaddr(tt.in)
		if err != nil {
			t.Errorf("NewMultiaddr(%q): %v", tt.in, err)
			continue
		}
		if got := m.String(); got != tt.want {
			t.Errorf("NewMultiaddr(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestBinaryVectors pins encodings byte for byte.
func TestBinaryVectors(t *testing.T) {
	tests := []struct{ text, hex string }{
		{"/ip4/127.0.0.1/tcp/4001", "04 7f000001 06 0fa1"},
		{"/ip4/127.0.0.1/udp/4001/quic-v1", "04 7f000001 9102 0fa1 cd03"},
		{"/ip6/::1/tcp/80", "29 00000000000000000000000000000001 06 0050"},
		{"/ip6zone/eth0/ip6/fe80::1", "2a 04 65746830 29 fe800000000000000000000000000001"},
		{"/dns4/a.io/tcp/443/wss", "36 04 612e696f 06 01bb de03"},
		{"/p2p/" + mt.PeerQm, "a503 22 1220d52ebb89d85b02a284948203a62ff28389c57c9f42beec4ec20db76a68911c0b"},
		{"/p2p/" + mt.Peer12D3, "a503 26 0024080112202ffa35a99d3a3cfbb17bb7c1dc5561b18a8dcca4df38dc613ea859c37eb1336b"},
		{"/certhash/" + mt.CertA, "d203 22 1220ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"},
		{"/p2p-circuit/webrtc-direct/webrtc/webtransport", "a202 9802 9902 d103"},
		{"/unix/a/b", "9003 04 2f612f62"},
		{"/memory/1234", "8906 00000000000004d2"},
		{"/ip4/10.0.0.0/ipcidr/8", "04 0a000000 2b 08"},
		{"/http-path/a%2Fb", "e103 03 612f62"},
		{"/plaintextv2", "e1d8c103"},
	}
	for _, tt := range tests {
		want, err := hex.DecodeString(strings.ReplaceAll(tt.hex, " ", ""))
		if err != nil {
			t.Fatalf("bad hex %q", tt.hex)
		}
		m, err := multiaddr.NewMultiaddr(tt.text)
		if err != nil {
			t.Errorf("NewMultiaddr(%q): %v", tt.text, err)
			continue
		}
		if got := m.Bytes(); !bytes.Equal(got, want) {
			t.Errorf("%q: Bytes() = %x, want %x", tt.text, got, want)
		}
		m2, err := multiaddr.NewMultiaddrBytes(want)
		if err != nil || m2.String() != tt.text {
			t.Errorf("NewMultiaddrBytes(%x) = %q, %v; want %q", want, m2, err, tt.text)
		}
	}
}

func TestTextRejected(t *testing.T) {
	long := "/dns4/" + strings.Repeat("a", multiaddr.MaxAddrLen)
	tests := []struct {
		in      string
		unknown bool // wraps ErrUnknownProtocol
	}{
		{in: ""},
		{in: "/"},
		{in: "//"},
		{in: "ip4/1.2.3.4"},
		{in: "/ip4"},
		{in: "/ip4/"},
		{in: "/ip4/1.2.3"},
		{in: "/ip4/1.2.3.256"},
		{in: "/ip4/01.2.3.4"},
		{in: "/ip4/::1"},
		{in: "/ip4/::ffff:1.2.3.4"},
		{in: "/ip6/1.2.3.4"},
		{in: "/ip6/fe80::1%eth0"},
		{in: "/ip6/::1/tcp"},
		{in: "/tcp/65536"},
		{in: "/tcp/-1"},
		{in: "/tcp/+1"},
		{in: "/tcp/0x10"},
		{in: "/tcp/"},
		{in: "/ipcidr/256"},
		{in: "/memory/18446744073709551616"},
		{in: "/memory/-1"},
		{in: "/foo", unknown: true},
		{in: "/ip4/1.2.3.4//tcp/1", unknown: true},
		{in: "/onion/aaimaq4ygg2iegci:80", unknown: true},
		{in: "/tcp/1/quic-v1/x", unknown: true},
		{in: "/dns4//tcp/1"},
		{in: "/ip6zone//ip6/::1"},
		{in: "/sni/"},
		{in: "/unix"},
		{in: "/unix/"},
		{in: "/http-path/%zz"},
		{in: "/http-path/%2"},
		{in: "/http-path/"},
		{in: "/p2p/"},
		{in: "/p2p/QmInvalid0"},
		{in: "/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNK"}, // digest one byte short
		{in: "/p2p/1"}, // a lone zero byte
		{in: "/p2p/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"}, // dag-pb CID
		{in: "/p2p/zQmbyV4BASLJCFiCfKz37eNwFX8y6hefQ7LGpzvEwJQzNft"},             // a multihash, not a CID
		{in: "/certhash/"},
		{in: "/certhash/u"},
		{in: "/certhash/uAA"},
		{in: "/certhash/xEiDK"},
		{in: "/certhash/uEiDKl4ESyhu9yvrCMbOaI9xNp4bv-BR8TnK5gHeFr-5I"},
		{in: "/onion3/" + mt.Onion + ":0"},
		{in: "/onion3/" + mt.Onion + ":65536"},
		{in: "/onion3/" + mt.Onion},
		{in: "/onion3/" + mt.Onion + ":1:2"},
		{in: "/onion3/" + mt.Onion[:55] + ":1"},
		{in: long},
		{in: "/" + strings.Repeat("p2p-circuit/", 2000)}, // over both limits
	}
	for _, tt := range tests {
		m, err := multiaddr.NewMultiaddr(tt.in)
		if err == nil {
			t.Errorf("NewMultiaddr(%.80q) = %q, want error", tt.in, m)
			continue
		}
		if got := errors.Is(err, multiaddr.ErrUnknownProtocol); got != tt.unknown {
			t.Errorf("NewMultiaddr(%.80q): error %q, wraps ErrUnknownProtocol = %v", tt.in, err, got)
		}
	}
}

func TestBinaryRejected(t *testing.T) {
	tests := []struct {
		name    string
		hex     string
		unknown bool
	}{
		{name: "empty", hex: ""},
		{name: "truncated code", hex: "80"},
		{name: "code over 9 bytes", hex: "ffffffffffffffffff01"},
		{name: "non-minimal code", hex: "8400 7f000001"},
		{name: "unknown code", hex: "07", unknown: true},
		{name: "unknown two-byte code", hex: "bc03 00", unknown: true}, // onion (v2)
		{name: "huge code", hex: "ffffffffffffffff7f", unknown: true},
		{name: "short ip4", hex: "04 7f0000"},
		{name: "short port", hex: "04 7f000001 06 0f"},
		{name: "length beyond input", hex: "36 05 612e696f"},
		{name: "length varint truncated", hex: "36 80"},
		{name: "length non-minimal", hex: "36 8400 612e696f"},
		{name: "huge length", hex: "36 ffffffffffffffff7f 61"},
		{name: "empty dns", hex: "36 00"},
		{name: "dns with slash", hex: "36 03 612f62"},
		{name: "ip6zone with slash", hex: "2a 01 2f"},
		{name: "relative unix path", hex: "9003 03 612f62"},
		{name: "unix root", hex: "9003 01 2f"},
		{name: "unix trailing slash", hex: "9003 03 2f612f"},
		{name: "component after unix", hex: "9003 02 2f61 06 0001"},
		{name: "p2p sha256 short digest", hex: "a503 05 1203 000000"},
		{name: "p2p sha1", hex: "a503 16 1114 0000000000000000000000000000000000000000"},
		{name: "p2p length mismatch", hex: "a503 03 0002 00"},
		{name: "certhash one byte", hex: "d203 01 00"},
		{name: "certhash trailing byte", hex: "d203 03 0000 00"},
		{name: "onion3 port 0", hex: "bd03" + strings.Repeat("00", 37)},
		{name: "trailing garbage", hex: "04 7f000001 ff"},
	}
	for _, tt := range tests {
		b, err := hex.DecodeString(strings.ReplaceAll(tt.hex, " ", ""))
		if err != nil {
			t.Fatalf("%s: bad hex", tt.name)
		}
		m, err := multiaddr.NewMultiaddrBytes(b)
		if err == nil {
			t.Errorf("%s: NewMultiaddrBytes(%x) = %q, want error", tt.name, b, m)
			continue
		}
		if got := errors.Is(err, multiaddr.ErrUnknownProtocol); got != tt.unknown {
			t.Errorf("%s: error %q, wraps ErrUnknownProtocol = %v", tt.name, err, got)
		}
	}

	// The length limit: one dns component filling MaxAddrLen (code, a
	// two-byte length, the name).
	ok := append([]byte{0x35, 0xfd, 0x07}, bytes.Repeat([]byte{'a'}, multiaddr.MaxAddrLen-3)...)
	if _, err := multiaddr.NewMultiaddrBytes(ok); err != nil {
		t.Errorf("%d-byte address: %v", len(ok), err)
	}
	if _, err := multiaddr.NewMultiaddrBytes(append(ok, 0xcd, 0x03)); err == nil {
		t.Errorf("%d-byte address accepted", len(ok)+2)
	}
}

// TestComponentLimit checks that MaxComponents components parse, in both
// forms, and one more does not, even when far shorter than MaxAddrLen.
func TestComponentLimit(t *testing.T) {
	circuit := []byte{0xa2, 0x02}
	ok := bytes.Repeat(circuit, multiaddr.MaxComponents)
	if m, err := multiaddr.NewMultiaddrBytes(ok); err != nil || len(m) != multiaddr.MaxComponents {
		t.Errorf("%d components: %v, %v", multiaddr.MaxComponents, m, err)
	}
	over := append(ok, circuit...)
	if _, err := multiaddr.NewMultiaddrBytes(over); err == nil || !strings.Contains(err.Error(), "components") {
		t.Errorf("%d components in binary: error %v, want the component limit", multiaddr.MaxComponents+1, err)
	}
	text := strings.Repeat("/p2p-circuit", multiaddr.MaxComponents)
	if _, err := multiaddr.NewMultiaddr(text); err != nil {
		t.Errorf("%d components in text: %v", multiaddr.MaxComponents, err)
	}
	if _, err := multiaddr.NewMultiaddr(text + "/p2p-circuit"); err == nil || !strings.Contains(err.Error(), "components") {
		t.Errorf("%d components in text: error %v, want the component limit", multiaddr.MaxComponents+1, err)
	}
	// 512 /ipcidr components fit MaxAddrLen; the component limit refuses
	// them (each would cost a 32-byte Component to hold).
	cidrs := bytes.Repeat([]byte{0x2b, 0x08}, multiaddr.MaxAddrLen/2)
	if _, err := multiaddr.NewMultiaddrBytes(cidrs); err == nil {
		t.Errorf("%d ipcidr components accepted", len(cidrs)/2)
	}
}

// TestLongTextRoundTrip checks that an address at the binary and
// component limits, with about the longest text per byte, prints to text
// that parses: p2p-webrtc-direct components (18 characters for 2 bytes) and
// an http-path whose every byte is escaped (3 characters).
func TestLongTextRoundTrip(t *testing.T) {
	b := bytes.Repeat([]byte{0x94, 0x02}, multiaddr.MaxComponents-1) // p2p-webrtc-direct
	path := multiaddr.MaxAddrLen - len(b) - 4                        // two-byte code and length
	b = append(b, 0xe1, 0x03, byte(path|0x80), byte(path>>7))        // http-path
	b = append(b, bytes.Repeat([]byte{0xff}, path)...)
	if len(b) != multiaddr.MaxAddrLen {
		t.Fatalf("built %d bytes", len(b))
	}
	m, err := multiaddr.NewMultiaddrBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := multiaddr.NewMultiaddr(m.String())
	if err != nil || !m2.Equal(m) {
		t.Fatalf("text round trip of a %d-character address: %v", len(m.String()), err)
	}
}

func TestNoAliasing(t *testing.T) {
	b := multiaddr.StringCast("/dns4/example.com/tcp/1").Bytes()
	m, err := multiaddr.NewMultiaddrBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if got := m.String(); got != "/dns4/example.com/tcp/1" {
		t.Fatalf("changing the input changed the address to %q", got)
	}
	raw := m[0].RawValue()
	raw[0] = 'X'
	out := m.Bytes()
	out[2] = 'Y'
	if got := m.String(); got != "/dns4/example.com/tcp/1" {
		t.Fatalf("changing RawValue or Bytes changed the address to %q", got)
	}
}

func TestComponent(t *testing.T) {
	m := multiaddr.StringCast("/ip4/1.2.3.4/tcp/4001/p2p/" + mt.PeerQm)
	tests := []struct {
		c     multiaddr.Component
		code  int
		name  string
		value string
		raw   string
	}{
		{m[0], multiaddr.P_IP4, "ip4", "1.2.3.4", "\x01\x02\x03\x04"},
		{m[1], multiaddr.P_TCP, "tcp", "4001", "\x0f\xa1"},
		{m[2], multiaddr.P_P2P, "p2p", mt.PeerQm, ""},
	}
	for _, tt := range tests {
		if tt.c.Code() != tt.code || tt.c.Protocol().Name != tt.name || tt.c.Value() != tt.value {
			t.Errorf("%v: code %d name %q value %q", tt.c, tt.c.Code(), tt.c.Protocol().Name, tt.c.Value())
		}
		if tt.raw != "" && string(tt.c.RawValue()) != tt.raw {
			t.Errorf("%v: RawValue %x", tt.c, tt.c.RawValue())
		}
		if tt.c.String() != "/"+tt.name+"/"+tt.value {
			t.Errorf("String() = %q", tt.c.String())
		}
	}
	if got := m[0].Bytes(); !bytes.Equal(got, []byte{4, 1, 2, 3, 4}) {
		t.Errorf("Bytes() = %x", got)
	}

	u, err := multiaddr.NewComponent("unix", "/tmp/a.sock")
	if err != nil || u.String() != "/unix/tmp/a.sock" || u.Value() != "/tmp/a.sock" {
		t.Errorf("unix component: %v %q %v", u, u.Value(), err)
	}
	q, err := multiaddr.NewComponent("quic-v1", "")
	if err != nil || q.String() != "/quic-v1" || q.Value() != "" || len(q.RawValue()) != 0 {
		t.Errorf("quic-v1 component: %v %v", q, err)
	}
	p, err := multiaddr.NewComponent("ipfs", mt.PeerQm)
	if err != nil || p.String() != "/p2p/"+mt.PeerQm {
		t.Errorf("ipfs component: %v %v", p, err)
	}
	for _, bad := range [][2]string{{"quic-v1", "x"}, {"tcp", ""}, {"unix", "tmp"}, {"ip4", "::1"}, {"nope", ""}, {"", ""}} {
		if c, err := multiaddr.NewComponent(bad[0], bad[1]); err == nil {
			t.Errorf("NewComponent(%q, %q) = %v, want error", bad[0], bad[1], c)
		}
	}
	if _, err := multiaddr.NewComponent("nope", ""); !errors.Is(err, multiaddr.ErrUnknownProtocol) {
		t.Errorf("unknown name: %v", err)
	}

	var zero multiaddr.Component
	if zero.Code() != 0 || zero.String() != "" || zero.Value() != "" || len(zero.Bytes()) != 0 || !zero.Equal(multiaddr.Component{}) || zero.Equal(m[0]) {
		t.Errorf("zero Component misbehaves")
	}
}

func TestProtocols(t *testing.T) {
	for _, tt := range []struct {
		name string
		code int
		size int
		path bool
	}{
		{"ip4", 0x04, 32, false},
		{"tcp", 0x06, 16, false},
		{"dccp", 0x21, 16, false},
		{"ip6", 0x29, 128, false},
		{"ip6zone", 0x2a, -1, false},
		{"ipcidr", 0x2b, 8, false},
		{"dns", 0x35, -1, false},
		{"dns4", 0x36, -1, false},
		{"dns6", 0x37, -1, false},
		{"dnsaddr", 0x38, -1, false},
		{"sctp", 0x84, 16, false},
		{"udp", 0x0111, 16, false},
		{"p2p-webrtc-direct", 0x0114, 0, false},
		{"webrtc-direct", 0x0118, 0, false},
		{"webrtc", 0x0119, 0, false},
		{"p2p-circuit", 0x0122, 0, false},
		{"udt", 0x012d, 0, false},
		{"utp", 0x012e, 0, false},
		{"unix", 0x0190, -1, true},
		{"p2p", 0x01a5, -1, false},
		{"https", 0x01bb, 0, false},
		{"onion3", 0x01bd, 296, false},
		{"tls", 0x01c0, 0, false},
		{"sni", 0x01c1, -1, false},
		{"noise", 0x01c6, 0, false},
		{"quic", 0x01cc, 0, false},
		{"quic-v1", 0x01cd, 0, false},
		{"webtransport", 0x01d1, 0, false},
		{"certhash", 0x01d2, -1, false},
		{"ws", 0x01dd, 0, false},
		{"wss", 0x01de, 0, false},
		{"http", 0x01e0, 0, false},
		{"http-path", 0x01e1, -1, false},
		{"memory", 0x0309, 64, false},
		{"plaintextv2", 0x706c61, 0, false},
	} {
		p, ok := multiaddr.ProtocolWithName(tt.name)
		if !ok || p.Name != tt.name || p.Code != tt.code || p.Size != tt.size || p.Path != tt.path {
			t.Errorf("ProtocolWithName(%q) = %+v, %v", tt.name, p, ok)
		}
		if p2, ok := multiaddr.ProtocolWithCode(tt.code); !ok || p2 != p {
			t.Errorf("ProtocolWithCode(%#x) = %+v, %v", tt.code, p2, ok)
		}
	}
	if p, ok := multiaddr.ProtocolWithName("ipfs"); !ok || p.Code != multiaddr.P_P2P || p.Name != "p2p" {
		t.Errorf("ProtocolWithName(ipfs) = %+v, %v", p, ok)
	}
	for _, code := range []int{-1, 0, 7, 444, 446, 447, 1 << 30} {
		if p, ok := multiaddr.ProtocolWithCode(code); ok {
			t.Errorf("ProtocolWithCode(%d) = %+v", code, p)
		}
	}
	if _, ok := multiaddr.ProtocolWithName("onion"); ok {
		t.Errorf("onion (v2) is known")
	}
	m := multiaddr.StringCast("/ip4/1.2.3.4/udp/1/quic-v1")
	var names []string
	for _, p := range m.Protocols() {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "ip4,udp,quic-v1" {
		t.Errorf("Protocols() = %s", got)
	}
}

func TestOperations(t *testing.T) {
	a := multiaddr.StringCast("/ip4/1.2.3.4/tcp/1")
	p := multiaddr.StringCast("/p2p/" + mt.PeerQm)
	ap := a.Encapsulate(p)
	if ap.String() != "/ip4/1.2.3.4/tcp/1/p2p/"+mt.PeerQm {
		t.Errorf("Encapsulate = %s", ap)
	}
	// Encapsulating must not write into a's spare capacity.
	roomy := append(make(multiaddr.Multiaddr, 0, 8), a...)
	x := roomy.Encapsulate(p)
	y := roomy.Encapsulate(multiaddr.StringCast("/ws"))
	if !x.Equal(ap) || y.String() != "/ip4/1.2.3.4/tcp/1/ws" {
		t.Errorf("Encapsulate aliased its receiver: %s %s", x, y)
	}

	relay := multiaddr.StringCast("/ip4/1.2.3.4/tcp/1/p2p/" + mt.PeerQm + "/p2p-circuit/p2p/" + mt.Peer12D3)
	for _, tt := range []struct{ in, cut, want string }{
		{relay.String(), "/p2p-circuit", "/ip4/1.2.3.4/tcp/1/p2p/" + mt.PeerQm},
		{relay.String(), "/tcp/1", "/ip4/1.2.3.4"},
		{relay.String(), "/ip4/1.2.3.4", ""},
		{relay.String(), "/udp/1", relay.String()},
		{"/ip4/1.2.3.4/tcp/1/tcp/1", "/tcp/1", "/ip4/1.2.3.4/tcp/1"}, // the last occurrence
		{"/ip4/1.2.3.4/tcp/1", "/tcp/1/ws", "/ip4/1.2.3.4/tcp/1"},
	} {
		got := multiaddr.StringCast(tt.in).Decapsulate(multiaddr.StringCast(tt.cut))
		if got.String() != tt.want {
			t.Errorf("%s.Decapsulate(%s) = %s, want %s", tt.in, tt.cut, got, tt.want)
		}
		if tt.want == "" && got != nil {
			t.Errorf("Decapsulate to nothing returned non-nil %#v", got)
		}
	}
	if got := relay.Decapsulate(nil); !got.Equal(relay) {
		t.Errorf("Decapsulate(nil) = %s", got)
	}
	cut := relay.Decapsulate(multiaddr.StringCast("/p2p-circuit"))
	_ = append(cut, multiaddr.StringCast("/ws")...)
	if !relay.Equal(multiaddr.StringCast(relay.String())) {
		t.Errorf("appending to a Decapsulate result changed the original")
	}

	first, rest := multiaddr.SplitFirst(ap)
	if first.String() != "/ip4/1.2.3.4" || rest.String() != "/tcp/1/p2p/"+mt.PeerQm {
		t.Errorf("SplitFirst = %v, %v", first, rest)
	}
	init, last := multiaddr.SplitLast(ap)
	if init.String() != "/ip4/1.2.3.4/tcp/1" || last.String() != "/p2p/"+mt.PeerQm {
		t.Errorf("SplitLast = %v, %v", init, last)
	}
	if f, r := multiaddr.SplitFirst(p); f == nil || r != nil {
		t.Errorf("SplitFirst of one component = %v, %#v", f, r)
	}
	if f, r := multiaddr.SplitFirst(nil); f != nil || r != nil {
		t.Errorf("SplitFirst(nil) = %v, %v", f, r)
	}
	if r, l := multiaddr.SplitLast(nil); l != nil || r != nil {
		t.Errorf("SplitLast(nil) = %v, %v", r, l)
	}

	if j := multiaddr.Join(); j != nil {
		t.Errorf("Join() = %#v", j)
	}
	if j := multiaddr.Join(a, nil, p); !j.Equal(ap) {
		t.Errorf("Join = %s", j)
	}

	if v, err := ap.ValueForProtocol(multiaddr.P_TCP); err != nil || v != "1" {
		t.Errorf("ValueForProtocol(tcp) = %q, %v", v, err)
	}
	if _, err := ap.ValueForProtocol(multiaddr.P_UDP); !errors.Is(err, multiaddr.ErrProtocolNotFound) {
		t.Errorf("ValueForProtocol(udp) err = %v", err)
	}
}

func TestCompare(t *testing.T) {
	addrs := []string{
		"/ip4/1.2.3.4",
		"/ip4/1.2.3.4/tcp/1",
		"/ip4/1.2.3.4/tcp/2",
		"/ip4/1.2.3.5",
		"/ip6/::1",
		"/dns4/a",
		"/dns4/a/tcp/1",
		"/dns4/ab",
		"/udp/1",
		"/p2p/" + mt.PeerQm,
		"/p2p/" + mt.Peer12D3,
	}
	for _, x := range addrs {
		for _, y := range addrs {
			a, b := multiaddr.StringCast(x), multiaddr.StringCast(y)
			want := bytes.Compare(a.Bytes(), b.Bytes())
			if got := a.Compare(b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", x, y, got, want)
			}
			if a.Equal(b) != (x == y) {
				t.Errorf("Equal(%s, %s) = %v", x, y, a.Equal(b))
			}
		}
	}
	var empty multiaddr.Multiaddr
	if empty.Compare(nil) != 0 || empty.Compare(multiaddr.StringCast("/ws")) != -1 || !empty.Equal(multiaddr.Multiaddr{}) {
		t.Errorf("empty address compares wrongly")
	}
}

func TestMarshal(t *testing.T) {
	m := multiaddr.StringCast("/ip4/1.2.3.4/tcp/1/p2p/" + mt.PeerQm)

	type doc struct {
		A multiaddr.Multiaddr
		B multiaddr.Multiaddr
	}
	j, err := json.Marshal(doc{A: m})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"A":"/ip4/1.2.3.4/tcp/1/p2p/` + mt.PeerQm + `","B":""}`; string(j) != want {
		t.Errorf("json = %s, want %s", j, want)
	}
	var d doc
	if err := json.Unmarshal(j, &d); err != nil || !d.A.Equal(m) || d.B != nil {
		t.Errorf("json round trip: %v %v %v", d.A, d.B, err)
	}
	d.A = m
	if err := json.Unmarshal([]byte(`{"A":null}`), &d); err != nil || !d.A.Equal(m) {
		t.Errorf("null: %v %v", d.A, err)
	}
	for _, bad := range []string{`{"A":"/ip4"}`, `{"A":5}`} {
		d.A = m
		if err := json.Unmarshal([]byte(bad), &d); err == nil || !d.A.Equal(m) {
			t.Errorf("json %s: err %v, A %v", bad, err, d.A)
		}
	}

	var got multiaddr.Multiaddr
	text, _ := m.MarshalText()
	if err := got.UnmarshalText(text); err != nil || !got.Equal(m) {
		t.Errorf("text round trip: %v %v", got, err)
	}
	bin, _ := m.MarshalBinary()
	got = nil
	if err := got.UnmarshalBinary(bin); err != nil || !got.Equal(m) {
		t.Errorf("binary round trip: %v %v", got, err)
	}
	if err := got.UnmarshalBinary([]byte{0x07}); err == nil || !got.Equal(m) {
		t.Errorf("bad binary: %v %v", got, err)
	}
	if err := got.UnmarshalBinary(nil); err != nil || got != nil {
		t.Errorf("empty binary: %v %v", got, err)
	}
}

func TestStringCastPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("StringCast of a bad address did not panic")
		}
	}()
	multiaddr.StringCast("/ip4/nope")
}

func TestAllocs(t *testing.T) {
	text := "/ip4/1.2.3.4/udp/4001/quic-v1/p2p/" + mt.Peer12D3
	b := multiaddr.StringCast(text).Bytes()
	m := multiaddr.StringCast(text)
	for _, tt := range []struct {
		name string
		max  float64
		f    func()
	}{
		// The value storage and the component slice.
		{"NewMultiaddrBytes", 2, func() { _, _ = multiaddr.NewMultiaddrBytes(b) }},
		// Plus base58 decoding of the peer ID.
		{"NewMultiaddr", 5, func() { _, _ = multiaddr.NewMultiaddr(text) }},
		{"String", 1, func() { _ = m.String() }},
		{"Bytes", 1, func() { _ = m.Bytes() }},
		{"Equal", 0, func() { _ = m.Equal(m) }},
		{"IsIPLoopback", 0, func() { _ = multiaddr.IsIPLoopback(m) }},
	} {
		if got := testing.AllocsPerRun(100, tt.f); got > tt.max {
			t.Errorf("%s: %v allocations, want at most %v", tt.name, got, tt.max)
		}
	}
}

func BenchmarkNewMultiaddr(b *testing.B) {
	s := "/ip4/1.2.3.4/udp/4001/quic-v1/webtransport/certhash/" + mt.CertA + "/p2p/" + mt.Peer12D3
	b.ReportAllocs()
	for b.Loop() {
		if _, err := multiaddr.NewMultiaddr(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewMultiaddrBytes(b *testing.B) {
	in := multiaddr.StringCast("/ip4/1.2.3.4/udp/4001/quic-v1/webtransport/certhash/" + mt.CertA + "/p2p/" + mt.Peer12D3).Bytes()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := multiaddr.NewMultiaddrBytes(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkString(b *testing.B) {
	m := multiaddr.StringCast("/ip4/1.2.3.4/udp/4001/quic-v1/webtransport/certhash/" + mt.CertA + "/p2p/" + mt.Peer12D3)
	b.ReportAllocs()
	for b.Loop() {
		_ = m.String()
	}
}
