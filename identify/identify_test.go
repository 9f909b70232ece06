package identify

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/wire"
	"github.com/mote-p2p/mote/wire/multiaddr"
	"github.com/mote-p2p/mote/wire/pb"
)

// fixedKey is a PrivateKey whose public half is a given key, so Build can
// be fed the spec's public-key test vector (whose private key is unknown).
type fixedKey struct{ pub peer.PublicKey }

func (k fixedKey) Type() peer.KeyType          { return k.pub.Type() }
func (k fixedKey) Public() peer.PublicKey      { return k.pub }
func (k fixedKey) Sign([]byte) ([]byte, error) { return nil, errors.New("cannot sign") }

// testKey derives a deterministic Ed25519 key from name.
func testKey(t *testing.T, name string) peer.PrivateKey {
	t.Helper()
	seed := sha256.Sum256([]byte(name))
	k, err := peer.GenerateEd25519(bytes.NewReader(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func addr(t testing.TB, s string) multiaddr.Multiaddr {
	t.Helper()
	a, err := multiaddr.NewMultiaddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func sealRecord(t *testing.T, key peer.PrivateKey, addrs ...string) []byte {
	t.Helper()
	rec := &peer.PeerRecord{ID: peer.IDFromPublicKey(key.Public()), Seq: 7}
	for _, s := range addrs {
		rec.Addrs = append(rec.Addrs, addr(t, s))
	}
	env, err := peer.SealPeerRecord(key, rec)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestWireFactsExample reproduces WIRE-FACTS §26 "Identify response".
func TestWireFactsExample(t *testing.T) {
	pub, err := peer.UnmarshalPublicKey(mustHex("080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"))
	if err != nil {
		t.Fatal(err)
	}
	info := &Info{
		Key:          fixedKey{pub},
		ListenAddrs:  []multiaddr.Multiaddr{addr(t, "/ip4/192.0.2.1/tcp/4001")},
		Protocols:    []string{"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"},
		AgentVersion: "my-agent/0.1",
	}
	var buf bytes.Buffer
	if err := WriteMessage(&buf, Build(info, addr(t, "/ip4/198.51.100.1/tcp/4001"))); err != nil {
		t.Fatal(err)
	}
	want := mustHex("6a" +
		"0a24 080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e" +
		"1208 04c0000201060fa1" +
		"1a0e 2f697066732f69642f312e302e30" +
		"1a10 2f697066732f70696e672f312e302e30" +
		"2208 04c6336401060fa1" +
		"320c 6d792d6167656e742f302e31")
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("encoded\n %x\nwant\n %x", buf.Bytes(), want)
	}
	if buf.Bytes()[0] != 0x6a {
		t.Fatalf("length byte %#x, want 0x6a", buf.Bytes()[0])
	}

	res, err := Request(bytes.NewReader(want), peer.IDFromPublicKey(pub))
	if err != nil {
		t.Fatal(err)
	}
	if res.AgentVersion != "my-agent/0.1" || len(res.ListenAddrs) != 1 || res.ListenAddrs[0].String() != "/ip4/192.0.2.1/tcp/4001" ||
		res.ObservedAddr.String() != "/ip4/198.51.100.1/tcp/4001" || len(res.Protocols) != 2 || res.PublicKey == nil {
		t.Fatalf("parsed result: %+v", res)
	}
}

func TestBuild(t *testing.T) {
	key := testKey(t, "a")
	tests := []struct {
		name      string
		listen    []string
		observed  string
		wantAddrs int
	}{
		{"public connection drops loopback", []string{"/ip4/127.0.0.1/tcp/1", "/ip6/::1/tcp/1", "/ip4/192.0.2.1/tcp/1"}, "/ip4/198.51.100.1/tcp/9", 1},
		{"loopback connection keeps loopback", []string{"/ip4/127.0.0.1/tcp/1", "/ip4/192.0.2.1/tcp/1"}, "/ip4/127.0.0.1/tcp/9", 2},
		{"unknown observed keeps all", []string{"/ip4/127.0.0.1/tcp/1", "/ip4/192.0.2.1/tcp/1"}, "", 2},
		{"dns is not loopback", []string{"/dns4/localhost/tcp/1"}, "/ip4/198.51.100.1/tcp/9", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info := &Info{Key: key, Protocols: []string{ID}}
			for _, s := range tc.listen {
				info.ListenAddrs = append(info.ListenAddrs, addr(t, s))
			}
			var obs multiaddr.Multiaddr
			if tc.observed != "" {
				obs = addr(t, tc.observed)
			}
			m := Build(info, obs)
			if len(m.ListenAddrs) != tc.wantAddrs {
				t.Fatalf("%d listen addrs, want %d", len(m.ListenAddrs), tc.wantAddrs)
			}
			if (tc.observed == "") != (m.ObservedAddr == nil) {
				t.Fatalf("observed = %x", m.ObservedAddr)
			}
			if !bytes.Equal(m.PublicKey, peer.MarshalPublicKey(key.Public())) {
				t.Fatal("public key not set")
			}
			if m.SignedPeerRecord != nil {
				t.Fatal("record set without one in Info")
			}
		})
	}
	if m := Build(nil, nil); m == nil || m.size() != 0 {
		t.Fatalf("Build(nil) = %+v", m)
	}
}

func TestBuildTrimsToOwnBudget(t *testing.T) {
	info := &Info{Key: testKey(t, "a"), Protocols: []string{ID, PushID}, SignedRecord: bytes.Repeat([]byte{1}, 1000)}
	for i := range 1000 {
		info.ListenAddrs = append(info.ListenAddrs, addr(t, fmt.Sprintf("/ip4/10.0.%d.%d/tcp/4001", i/256, i%256)))
	}
	m := Build(info, addr(t, "/ip4/198.51.100.1/tcp/9"))
	m.SignedPeerRecord = nil
	if n := m.size(); n > maxOwnMessageSize || n < maxOwnMessageSize-50 {
		t.Fatalf("message without record is %d bytes; want just under %d", n, maxOwnMessageSize)
	}
	if !bytes.Equal(m.ListenAddrs[0], info.ListenAddrs[0].Bytes()) {
		t.Fatal("trimming did not keep the first addresses")
	}
}

func TestVerify(t *testing.T) {
	keyA, keyB := testKey(t, "a"), testKey(t, "b")
	idA, idB := peer.IDFromPublicKey(keyA.Public()), peer.IDFromPublicKey(keyB.Public())
	pubA := peer.MarshalPublicKey(keyA.Public())
	recA := sealRecord(t, keyA, "/ip4/203.0.113.7/tcp/4001", "/ip4/203.0.113.7/udp/4001/quic-v1")
	forged := bytes.Clone(recA)
	forged[len(forged)-1] ^= 1 // the signature is the envelope's last field
	unsigned := [][]byte{addr(t, "/ip4/192.0.2.1/tcp/1").Bytes()}

	tests := []struct {
		name      string
		m         *Message
		wantErr   error
		errNames  []string // peer IDs the error must name
		wantAddrs []string
	}{
		{"key matches", &Message{PublicKey: pubA, ListenAddrs: unsigned}, nil, nil, []string{"/ip4/192.0.2.1/tcp/1"}},
		{"no key", &Message{ListenAddrs: unsigned}, nil, nil, []string{"/ip4/192.0.2.1/tcp/1"}},
		{"key of another peer", &Message{PublicKey: peer.MarshalPublicKey(keyB.Public())}, ErrPeerMismatch, []string{idA.String(), idB.String()}, nil},
		{"unparsable key", &Message{PublicKey: []byte{0x08, 0x01}}, nil, []string{idA.String()}, nil},
		{"signed addresses win", &Message{PublicKey: pubA, ListenAddrs: unsigned, SignedPeerRecord: recA}, nil, nil,
			[]string{"/ip4/203.0.113.7/tcp/4001", "/ip4/203.0.113.7/udp/4001/quic-v1"}},
		{"forged record", &Message{PublicKey: pubA, SignedPeerRecord: forged}, ErrBadRecord, []string{idA.String()}, nil},
		{"record of another peer", &Message{SignedPeerRecord: sealRecord(t, keyB, "/ip4/1.2.3.4/tcp/1")}, ErrBadRecord, []string{idA.String(), idB.String()}, nil},
		{"garbage record", &Message{SignedPeerRecord: []byte{0xff, 0xff}}, ErrBadRecord, nil, nil},
		{"bad and duplicate unsigned addresses", &Message{ListenAddrs: [][]byte{{0xff, 0xff}, unsigned[0], {}, unsigned[0]}}, nil, nil,
			[]string{"/ip4/192.0.2.1/tcp/1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Verify(tc.m, idA)
			if tc.wantErr != nil || tc.errNames != nil {
				if err == nil {
					t.Fatal("no error")
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				for _, n := range tc.errNames {
					if !strings.Contains(err.Error(), n) {
						t.Errorf("error %q does not name %s", err, n)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range res.ListenAddrs {
				got = append(got, a.String())
			}
			if strings.Join(got, " ") != strings.Join(tc.wantAddrs, " ") {
				t.Fatalf("addrs = %v, want %v", got, tc.wantAddrs)
			}
			if res.Peer != idA {
				t.Fatal("Peer not set")
			}
			if (tc.m.SignedPeerRecord != nil) != (res.SignedRecord != nil) || !bytes.Equal(res.SignedEnvelope, tc.m.SignedPeerRecord) {
				t.Fatal("signed record not reported")
			}
			if (tc.m.PublicKey != nil) != (res.PublicKey != nil) {
				t.Fatal("public key not reported")
			}
		})
	}
	if _, err := Verify(nil, idA); err == nil {
		t.Fatal("Verify(nil) succeeded")
	}
}

func TestVerifyCleansFields(t *testing.T) {
	long := strings.Repeat("é", MaxVersionLen) // 2 bytes per rune
	m := &Message{
		Protocols:    []string{"/a", "", "/a", strings.Repeat("p", MaxProtocolLen+1), "/b", strings.Repeat("q", MaxProtocolLen)},
		AgentVersion: "x" + long, ProtocolVersion: "short",
		ObservedAddr: []byte{0xff},
	}
	res, err := Verify(m, testID(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Protocols) != 3 || res.Protocols[0] != "/a" || res.Protocols[1] != "/b" {
		t.Fatalf("protocols = %q", res.Protocols)
	}
	if len(res.AgentVersion) > MaxVersionLen || len(res.AgentVersion) < MaxVersionLen-4 || !strings.HasPrefix(res.AgentVersion, "xé") {
		t.Fatalf("agent version of %d bytes", len(res.AgentVersion))
	}
	if !strings.HasSuffix(res.AgentVersion, "é") {
		t.Fatal("truncation split a rune")
	}
	if res.ProtocolVersion != "short" || res.ObservedAddr != nil {
		t.Fatalf("result %+v", res)
	}
}

func testID(t *testing.T) peer.ID {
	return peer.IDFromPublicKey(testKey(t, "id").Public())
}

func TestServeRequestOverPipe(t *testing.T) {
	keyA := testKey(t, "a")
	idA := peer.IDFromPublicKey(keyA.Public())
	info := &Info{
		Key:          keyA,
		ListenAddrs:  []multiaddr.Multiaddr{addr(t, "/ip4/192.0.2.1/tcp/4001")},
		Protocols:    []string{ID, PushID, "/ipfs/ping/1.0.0"},
		AgentVersion: "mote/test",
		SignedRecord: sealRecord(t, keyA, "/ip4/203.0.113.7/tcp/4001"),
	}
	// Pad the record past 2 KiB so the split path runs end to end.
	big := make([]string, 0, 100)
	for i := range 100 {
		big = append(big, fmt.Sprintf("/ip6/2001:db8::%x/tcp/%d", i+1, 4001+i))
	}
	for _, tc := range []struct {
		name   string
		record []byte
		split  bool
	}{
		{"small record", info.SignedRecord, false},
		{"record over 2 KiB", sealRecord(t, keyA, big...), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if split := len(tc.record) > legacyMessageSize; split != tc.split {
				t.Fatalf("record of %d bytes: test does not exercise the intended path", len(tc.record))
			}
			info := *info
			info.SignedRecord = tc.record
			client, server := net.Pipe()
			defer client.Close()
			served := make(chan error, 1)
			go func() { served <- Serve(server, &info, addr(t, "/ip4/198.51.100.1/tcp/5")) }()
			res, err := Request(client, idA)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-served; err != nil {
				t.Fatal(err)
			}
			if res.SignedRecord == nil || len(res.ListenAddrs) != len(res.SignedRecord.Addrs) {
				t.Fatalf("signed record not used: %+v", res)
			}
			if res.AgentVersion != "mote/test" || len(res.Protocols) != 3 || res.ObservedAddr.String() != "/ip4/198.51.100.1/tcp/5" {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

func TestRequestOversized(t *testing.T) {
	in := wire.AppendLP(nil, pb.AppendBytes(nil, 9, make([]byte, MaxMessageSize+1)))
	if _, err := Request(bytes.NewReader(in), testID(t)); !errors.Is(err, wire.ErrMessageTooLarge) {
		t.Fatalf("err = %v, want wire.ErrMessageTooLarge", err)
	}
}
