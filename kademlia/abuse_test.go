// The simulations here run thousands of goroutines inside
// testing/synctest bubbles, which crash the race detector itself
// ("ThreadSanitizer: CHECK failed", golang/go#78156, open in Go 1.26):
// they run in the plain test run only. The race run covers the DHT's
// concurrency on real sockets (dual_test.go) and its stores.

//go:build !race

package kademlia

// Bad input and abuse (issue 11): hostile bytes sent to a DHT server on a
// raw stream, and hostile answers given to a DHT client by a plain node
// that speaks the protocol, both on a simulated network in fake time.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mote-p2p/mote/ipns"
	"github.com/mote-p2p/mote/mux"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/wire"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
	"github.com/mote-p2p/mote/wire/pb"
)

// abuseLink is the link of the abuse simulations: a few milliseconds, so
// that a reset or an answer takes a round trip of fake time, far below
// every timeout under test.
var abuseLink = transport.Link{Latency: 5 * time.Millisecond}

// abusePrompt is how long a server may take to reset a stream it should
// reset at once: many round trips of abuseLink, far below
// StreamIdleTimeout, which is when a server that ignored the problem
// would reset the stream anyway.
const abusePrompt = time.Second

// abusePlainNode starts a node without a DHT on mn, listening, for the
// attacker's side. Its key is key, or a fresh one if nil.
func abusePlainNode(t *testing.T, mn *transport.MemNetwork, key peer.PrivateKey) *node.Node {
	t.Helper()
	h := mn.NewHost()
	n, err := node.New(node.Config{
		Key:         key,
		Transports:  []node.TransportMaker{node.Memory(h.Network())},
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/memory/0")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// abuseStream connects from to to and opens a DHT stream.
func abuseStream(t *testing.T, from, to *node.Node) *node.Stream {
	t.Helper()
	ctx := context.Background()
	if _, err := from.Connect(ctx, to.ID(), to.ListenAddrs()...); err != nil {
		t.Fatal(err)
	}
	s, err := from.NewStream(ctx, to.ID(), ID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// frame is m as WriteMessage puts it on a stream.
func frame(t *testing.T, m *Message) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteMessage(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// frameRaw frames body with a length prefix, whatever body holds.
func frameRaw(body []byte) []byte {
	return append(wire.AppendUvarint(nil, uint64(len(body))), body...)
}

// selfEntry is the Peer entry n gives for itself in ADD_PROVIDER.
func selfEntry(n *node.Node) Peer {
	e := Peer{ID: []byte(n.ID())}
	for _, a := range n.ListenAddrs() {
		e.Addrs = append(e.Addrs, a.Bytes())
	}
	return e
}

// expectReset reads s until it fails, which must be a reset within
// within: a server must answer nothing to a request it refuses.
func expectReset(t *testing.T, s *node.Stream, within time.Duration) {
	t.Helper()
	start := time.Now()
	s.SetReadDeadline(start.Add(within))
	var buf [512]byte
	answered := 0
	for {
		n, err := s.Read(buf[:])
		answered += n
		if err == nil {
			continue
		}
		switch {
		case answered > 0:
			t.Errorf("the server answered %d bytes, then %v; want a reset and no answer", answered, err)
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.Errorf("the server did not reset the stream within %v", within)
		case !errors.Is(err, mux.ErrReset):
			t.Errorf("read after %v: %v, want a reset", time.Since(start), err)
		}
		return
	}
}

// badSignature is a valid IPNS record of key, with sequence number seq,
// with one byte of its signatureV2 flipped.
func badSignature(t *testing.T, key peer.PrivateKey, seq uint64, eol time.Time) []byte {
	t.Helper()
	rec, err := ipns.Create(key, []byte("/ipfs/bafkqaaa"), seq, eol, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rec = bytes.Clone(rec)
	r := pb.NewReader(rec, pb.NoLimit, pb.NoLimit)
	for {
		f, ok, err := r.Next()
		if err != nil || !ok {
			t.Fatalf("no signatureV2 in the record (%v)", err)
		}
		if f.Num == 8 && f.Type == pb.BytesType && len(f.Bytes) > 0 {
			f.Bytes[0] ^= 0xff // aliases rec
			break
		}
	}
	if _, err := ipns.Validate(peer.IDFromPublicKey(key.Public()), rec, time.Now()); !errors.Is(err, ipns.ErrSignature) {
		t.Fatalf("the corrupted record validates with %v, want ipns.ErrSignature", err)
	}
	return rec
}

// badInputEnv is what the rows of TestServerRefusesBadInput build their
// bytes from, inside their bubble (IPNS records need its clock).
type badInputEnv struct {
	t     *testing.T
	a     *node.Node // the attacker, a plain node
	other *node.Node // another DHT server
}

func (e badInputEnv) put(key string, value []byte) []byte {
	return frame(e.t, &Message{Type: PutValue, Key: []byte(key), Record: &Record{Key: []byte(key), Value: value}})
}

func (e badInputEnv) pk() string { return "/pk/" + string(e.a.ID()) }

// TestServerRefusesBadInput writes hostile bytes to a DHT server on a raw
// stream. Each must make the server reset the stream at once (no answer,
// no wait for more bytes, nothing stored), and the server must go on
// serving.
func TestServerRefusesBadInput(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name       string
		in         func(e badInputEnv) []byte
		closeWrite bool // end our side after in
	}{
		{name: "length prefix one over MaxMessageSize", in: func(badInputEnv) []byte { return wire.AppendUvarint(nil, MaxMessageSize+1) }},
		{name: "length prefix of 1 TiB", in: func(badInputEnv) []byte { return wire.AppendUvarint(nil, 1<<40) }},
		{name: "length prefix overflowing 64 bits", in: func(badInputEnv) []byte { return append(bytes.Repeat([]byte{0xff}, 10), 0x01) }},
		{name: "non-minimal length prefix", in: func(badInputEnv) []byte { return []byte{0x81, 0x00, 0x08} }},
		{name: "body shorter than its prefix", in: func(badInputEnv) []byte { return []byte{10, 0x08, 0x04} }, closeWrite: true},
		{name: "field longer than the message", in: func(badInputEnv) []byte { return frameRaw([]byte{0x12, 0x05, 'a'}) }},
		{name: "invalid wire type", in: func(badInputEnv) []byte { return frameRaw([]byte{0x0f, 0x00}) }},
		{name: "unterminated varint", in: func(badInputEnv) []byte { return frameRaw([]byte{0x08, 0xff, 0xff}) }},
		{name: "key over MaxKeySize", in: func(e badInputEnv) []byte {
			return frame(e.t, &Message{Type: FindNode, Key: make([]byte, DefaultMaxKeySize+1)})
		}},
		{name: "closer peers over MaxPeers", in: func(e badInputEnv) []byte {
			return frame(e.t, &Message{Type: FindNode, Key: []byte("k"), CloserPeers: make([]Peer, DefaultMaxPeers+1)})
		}},
		{name: "unknown message type", in: func(e badInputEnv) []byte { return frame(e.t, &Message{Type: 99, Key: []byte("k")}) }},
		{name: "negative message type", in: func(e badInputEnv) []byte { return frame(e.t, &Message{Type: -1, Key: []byte("k")}) }},
		{name: "GET_VALUE without a key", in: func(e badInputEnv) []byte { return frame(e.t, &Message{Type: GetValue}) }},
		{name: "GET_PROVIDERS key over 80 bytes", in: func(e badInputEnv) []byte {
			return frame(e.t, &Message{Type: GetProviders, Key: make([]byte, MaxProviderKeyLen+1)})
		}},
		{name: "GET_PROVIDERS without a key", in: func(e badInputEnv) []byte { return frame(e.t, &Message{Type: GetProviders}) }},
		{name: "PUT_VALUE without a record", in: func(e badInputEnv) []byte { return frame(e.t, &Message{Type: PutValue, Key: []byte(e.pk())}) }},
		{name: "PUT_VALUE record of another key", in: func(e badInputEnv) []byte {
			return frame(e.t, &Message{Type: PutValue, Key: []byte(e.pk()),
				Record: &Record{Key: []byte("/pk/" + string(e.other.ID())), Value: peer.MarshalPublicKey(e.a.Key().Public())}})
		}},
		{name: "PUT_VALUE /pk/ of another peer's key", in: func(e badInputEnv) []byte {
			return e.put("/pk/"+string(e.other.ID()), peer.MarshalPublicKey(e.a.Key().Public()))
		}},
		{name: "PUT_VALUE /pk/ that is not a key", in: func(e badInputEnv) []byte { return e.put(e.pk(), []byte("not a key")) }},
		{name: "PUT_VALUE unknown namespace", in: func(e badInputEnv) []byte { return e.put("/other/"+string(e.a.ID()), []byte("v")) }},
		{name: "PUT_VALUE without a namespace", in: func(e badInputEnv) []byte {
			return e.put(string(e.a.ID()), peer.MarshalPublicKey(e.a.Key().Public()))
		}},
		{name: "PUT_VALUE /ipns/ with a bad signature", in: func(e badInputEnv) []byte {
			return e.put(string(ipns.Key(e.a.ID())), badSignature(e.t, e.a.Key(), 1, time.Now().Add(day)))
		}},
		{name: "PUT_VALUE /ipns/ under another name", in: func(e badInputEnv) []byte {
			return e.put(string(ipns.Key(e.other.ID())), abuseIPNS(e.t, e.a.Key(), 1, time.Now().Add(day)))
		}},
		{name: "PUT_VALUE /ipns/ expired", in: func(e badInputEnv) []byte {
			return e.put(string(ipns.Key(e.a.ID())), abuseIPNS(e.t, e.a.Key(), 1, time.Now().Add(-time.Second)))
		}},
		{name: "PUT_VALUE /ipns/ that is not a record", in: func(e badInputEnv) []byte { return e.put(string(ipns.Key(e.a.ID())), []byte("garbage")) }},
		{name: "ADD_PROVIDER key over 80 bytes", in: func(e badInputEnv) []byte {
			return frame(e.t, &Message{Type: AddProvider, Key: make([]byte, MaxProviderKeyLen+1), ProviderPeers: []Peer{selfEntry(e.a)}})
		}},
		{name: "ADD_PROVIDER naming another peer", in: func(e badInputEnv) []byte {
			return frame(e.t, &Message{Type: AddProvider, Key: multihash("c"), ProviderPeers: []Peer{selfEntry(e.other)}})
		}},
		{name: "ADD_PROVIDER without addresses", in: func(e badInputEnv) []byte {
			return frame(e.t, &Message{Type: AddProvider, Key: multihash("c"), ProviderPeers: []Peer{{ID: []byte(e.a.ID())}}})
		}},
		{name: "ADD_PROVIDER with unparsable addresses", in: func(e badInputEnv) []byte {
			return frame(e.t, &Message{Type: AddProvider, Key: multihash("c"),
				ProviderPeers: []Peer{{ID: []byte(e.a.ID()), Addrs: [][]byte{{0xff, 0xff}, {0x04, 1}}}}})
		}},
		{name: "ADD_PROVIDER without a provider", in: func(e badInputEnv) []byte {
			return frame(e.t, &Message{Type: AddProvider, Key: multihash("c")})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mn, nodes := newSim(t, 3, abuseLink, nil)
				srv, other := nodes[0], nodes[1]
				a := abusePlainNode(t, mn, nil)
				in := tt.in(badInputEnv{t: t, a: a, other: other.n})
				s := abuseStream(t, a, srv.n)
				defer s.Reset()
				// The write may fail once the server has reset the
				// stream: only the reset matters.
				s.Write(in)
				if tt.closeWrite {
					s.CloseWrite()
				}
				expectReset(t, s, abusePrompt)
				st := srv.d.Stats()
				if st.Values != 0 || st.Providers.Records != 0 {
					t.Errorf("the server stored %d values and %d provider records", st.Values, st.Providers.Records)
				}

				// A well-formed request on a new stream of the same
				// peer is still answered, and so is another peer's.
				s2 := abuseStream(t, a, srv.n)
				defer s2.Close()
				if _, err := s2.Write(frame(t, &Message{Type: FindNode, Key: []byte(a.ID())})); err != nil {
					t.Fatal(err)
				}
				if resp, err := ReadMessage(s2, Limits{}); err != nil || resp.Type != FindNode || len(resp.CloserPeers) == 0 {
					t.Errorf("FIND_NODE after the bad input: %v, %v", resp, err)
				}
				if _, err := other.d.request(context.Background(), srv.n.ID(), &Message{Type: FindNode, Key: []byte("x")}); err != nil {
					t.Errorf("the server no longer answers a well-behaved peer: %v", err)
				}
			})
		})
	}
}

// TestServerOversizedBodyNotAllocated: a length prefix over
// MaxMessageSize followed by that many bytes. The server must refuse the
// prefix before it reads (and so allocates) the body: what the whole
// process allocates meanwhile stays far below the message's size.
func TestServerOversizedBodyNotAllocated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// No latency: a write blocked on a full pipe with bytes due
		// later holds the muxer's write lock while it waits for fake
		// time, and another goroutine waiting for that lock (a
		// sync.Mutex, not durably blocking) stops the bubble's clock.
		mn, nodes := newSim(t, 2, transport.Link{}, nil)
		a := abusePlainNode(t, mn, nil)
		const size = 4 * MaxMessageSize
		in := append(wire.AppendUvarint(nil, size), make([]byte, size)...)
		s := abuseStream(t, a, nodes[0].n)
		defer s.Reset()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		done := make(chan error, 1)
		go func() {
			_, err := s.Write(in)
			done <- err
		}()
		expectReset(t, s, abusePrompt)
		if err := <-done; err == nil {
			t.Error("all of the oversized message was written: the server read it")
		}
		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; got > MaxMessageSize {
			t.Errorf("%d bytes allocated while refusing a %d-byte message, want at most %d", got, size, MaxMessageSize)
		}
	})
}

// TestServerProviderEntries: the server stores only the sender as a
// provider, only with addresses, and at most DefaultMaxProviderAddrs of
// them, whatever the entries of an ADD_PROVIDER say.
func TestServerProviderEntries(t *testing.T) {
	tests := []struct {
		name      string
		entries   func(a, other *node.Node) []Peer
		wantAddrs int // of the stored record
	}{
		{name: "another peer, then the sender", wantAddrs: 1, entries: func(a, other *node.Node) []Peer {
			return []Peer{selfEntry(other), selfEntry(a)}
		}},
		{name: "the sender without addresses, then with", wantAddrs: 1, entries: func(a, _ *node.Node) []Peer {
			return []Peer{{ID: []byte(a.ID())}, selfEntry(a)}
		}},
		{name: "the sender with 256 addresses", wantAddrs: DefaultMaxProviderAddrs, entries: func(a, _ *node.Node) []Peer {
			many := Peer{ID: []byte(a.ID())}
			for i := range DefaultMaxAddrs {
				many.Addrs = append(many.Addrs, ma.StringCast(fmt.Sprintf("/memory/%d", 1000+i)).Bytes())
			}
			return []Peer{many}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mn, nodes := newSim(t, 3, abuseLink, nil)
				srv, other := nodes[0], nodes[1]
				a := abusePlainNode(t, mn, nil)
				key := multihash("entries")
				s := abuseStream(t, a, srv.n)
				defer s.Close()
				in := frame(t, &Message{Type: AddProvider, Key: key, ProviderPeers: tt.entries(a, other.n)})
				// A FIND_NODE behind it: its answer says the
				// ADD_PROVIDER was handled.
				in = append(in, frame(t, &Message{Type: FindNode, Key: key})...)
				if _, err := s.Write(in); err != nil {
					t.Fatal(err)
				}
				if _, err := ReadMessage(s, Limits{}); err != nil {
					t.Fatalf("FIND_NODE behind the ADD_PROVIDER: %v", err)
				}
				got := srv.d.providers.Get(key, time.Now(), 0)
				if len(got) != 1 || got[0].ID != a.ID() || len(got[0].Addrs) != tt.wantAddrs {
					t.Errorf("stored %v, want the sender alone with %d addresses", got, tt.wantAddrs)
				}
			})
		})
	}
}

// TestServerWriteRateLimit: 2,000 ADD_PROVIDERs in one burst from one
// peer. Those past WriteBurst are dropped and counted, quietly (the
// stream lives on); the peer's PUT_VALUE is then refused until its rate
// has refilled the bucket; other peers' writes are not limited.
func TestServerWriteRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn, nodes := newSim(t, 3, transport.Link{}, nil)
		srv, other := nodes[0], nodes[1]
		a := abusePlainNode(t, mn, nil)
		const flood = 2000
		burst := srv.d.cfg.WriteBurst
		rate := srv.d.cfg.WriteRate
		if burst != 1000 || rate != 50 {
			t.Fatalf("write limits %d a burst, %v a second: want the documented defaults", burst, rate)
		}
		self := selfEntry(a)
		var in []byte
		for i := range flood {
			in = append(in, frame(t, &Message{Type: AddProvider, Key: multihash(fmt.Sprint("flood", i)), ProviderPeers: []Peer{self}})...)
		}
		in = append(in, frame(t, &Message{Type: FindNode, Key: []byte("after the flood")})...)
		s := abuseStream(t, a, srv.n)
		defer s.Close()
		start := time.Now()
		if _, err := s.Write(in); err != nil {
			t.Fatal(err)
		}
		if resp, err := ReadMessage(s, Limits{}); err != nil || resp.Type != FindNode {
			t.Fatalf("FIND_NODE behind the flood: %v, %v (the stream must survive dropped records)", resp, err)
		}
		// The bucket refills at rate while the flood goes through: none
		// of the fake time passes on a link without latency, but allow
		// for what does.
		refill := int(rate*time.Since(start).Seconds()) + 1
		st := srv.d.Stats()
		dropped := int(st.Counters[LimitWrites])
		if dropped < flood-burst-refill || dropped > flood-burst {
			t.Errorf("%s counts %d, want %d (%d over a burst of %d)", LimitWrites, dropped, flood-burst, flood, burst)
		}
		if st.Providers.Records != flood-dropped {
			t.Errorf("%d records stored and %d dropped of %d", st.Providers.Records, dropped, flood)
		}

		// Its PUT_VALUE is refused now, and accepted once the bucket
		// has refilled.
		pk := "/pk/" + string(a.ID())
		putPK := frame(t, &Message{Type: PutValue, Key: []byte(pk), Record: &Record{Key: []byte(pk), Value: peer.MarshalPublicKey(a.Key().Public())}})
		s2 := abuseStream(t, a, srv.n)
		defer s2.Reset()
		s2.Write(putPK)
		expectReset(t, s2, abusePrompt)
		if srv.d.Stats().Values != 0 {
			t.Error("a PUT_VALUE over the write rate was stored")
		}
		if got := srv.d.Stats().Counters[LimitWrites]; got != uint64(dropped)+1 {
			t.Errorf("%s counts %d after the refused PUT_VALUE, want %d", LimitWrites, got, dropped+1)
		}
		time.Sleep(time.Second) // the fake clock: the bucket refills
		s3 := abuseStream(t, a, srv.n)
		defer s3.Close()
		if _, err := s3.Write(putPK); err != nil {
			t.Fatal(err)
		}
		if resp, err := ReadMessage(s3, Limits{}); err != nil || resp.Type != PutValue {
			t.Errorf("PUT_VALUE a second after the flood: %v, %v", resp, err)
		}

		// Another peer is not limited by the flood.
		before := srv.d.Stats().Counters[LimitWrites]
		key := multihash("other peer")
		if err := other.d.send(context.Background(), srv.n.ID(), &Message{Type: AddProvider, Key: key, ProviderPeers: []Peer{selfEntry(other.n)}}); err != nil {
			t.Fatal(err)
		}
		if _, err := other.d.request(context.Background(), srv.n.ID(), &Message{Type: FindNode, Key: key}); err != nil {
			t.Fatal(err)
		}
		if got := srv.d.providers.Get(key, time.Now(), 0); len(got) != 1 || got[0].ID != other.n.ID() {
			t.Errorf("another peer's record after the flood: %v", got)
		}
		if got := srv.d.Stats().Counters[LimitWrites]; got != before {
			t.Errorf("another peer's write was counted against the limit (%d, was %d)", got, before)
		}
	})
}

// TestServerStreamIdleTimeout: a peer that goes silent, between requests
// or in the middle of one, has its stream reset after StreamIdleTimeout
// of fake time, not before and not much after.
func TestServerStreamIdleTimeout(t *testing.T) {
	req := frame(t, &Message{Type: FindNode, Key: []byte("idle")})
	tests := []struct {
		name   string
		in     []byte
		answer bool // the server answers in before it goes idle
	}{
		{name: "after an answered request", in: req, answer: true},
		{name: "after a length prefix", in: req[:1]},
		{name: "in the middle of a message", in: req[:len(req)/2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mn, nodes := newSim(t, 2, abuseLink, nil)
				srv := nodes[0]
				a := abusePlainNode(t, mn, nil)
				idle := srv.d.cfg.StreamIdleTimeout
				if idle != DefaultStreamIdleTimeout {
					t.Fatalf("StreamIdleTimeout %v, want the default", idle)
				}
				s := abuseStream(t, a, srv.n)
				defer s.Reset()
				if _, err := s.Write(tt.in); err != nil {
					t.Fatal(err)
				}
				if tt.answer {
					if _, err := ReadMessage(s, Limits{}); err != nil {
						t.Fatal(err)
					}
				}
				start := time.Now()
				expectReset(t, s, 3*idle)
				if took := time.Since(start); took < idle-abusePrompt || took > idle+abusePrompt {
					t.Errorf("reset after %v of silence, want %v", took, idle)
				}
			})
		})
	}
}

// TestServerPipelinedRequests: requests written back to back on one
// stream are each handled, in order: an ADD_PROVIDER among them (which
// has no answer) is stored before the GET_PROVIDERS after it is answered.
func TestServerPipelinedRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn, nodes := newSim(t, 4, abuseLink, nil)
		srv := nodes[0]
		a := abusePlainNode(t, mn, nil)
		content := multihash("pipelined")
		pk := "/pk/" + string(nodes[1].n.ID())
		// Each answer tells which request it is for: the FIND_NODEs
		// are for two known peers, which come first in their answers.
		reqs := []*Message{
			{Type: FindNode, Key: []byte(nodes[2].n.ID())},
			{Type: GetValue, Key: []byte(pk)},
			{Type: AddProvider, Key: content, ProviderPeers: []Peer{selfEntry(a)}},
			{Type: GetProviders, Key: content},
			{Type: Ping},
			{Type: FindNode, Key: []byte(nodes[3].n.ID())},
		}
		var in []byte
		for _, m := range reqs {
			in = append(in, frame(t, m)...)
		}
		s := abuseStream(t, a, srv.n)
		defer s.Reset()
		if _, err := s.Write(in); err != nil {
			t.Fatal(err)
		}
		if err := s.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		for _, req := range reqs {
			if req.Type == AddProvider {
				continue
			}
			resp, err := ReadMessage(s, Limits{})
			if err != nil {
				t.Fatalf("answer to %s: %v", req.Type, err)
			}
			if resp.Type != req.Type {
				t.Fatalf("answer of type %s to %s: out of order", resp.Type, req.Type)
			}
			switch req.Type {
			case FindNode:
				if len(resp.CloserPeers) == 0 || !bytes.Equal(resp.CloserPeers[0].ID, req.Key) {
					t.Errorf("FIND_NODE of %s: the answer does not give it first", peer.ID(req.Key).ShortString())
				}
			case GetValue:
				if !bytes.Equal(resp.Key, req.Key) || resp.Record != nil {
					t.Errorf("GET_VALUE answer %+v for %q", resp, req.Key)
				}
			case GetProviders:
				if !bytes.Equal(resp.Key, content) || len(resp.ProviderPeers) != 1 || peer.ID(resp.ProviderPeers[0].ID) != a.ID() {
					t.Errorf("GET_PROVIDERS after the ADD_PROVIDER gave providers %v", resp.ProviderPeers)
				}
			}
		}
		// Our end of the stream ends the server's, cleanly.
		s.SetReadDeadline(time.Now().Add(abusePrompt))
		if _, err := ReadMessage(s, Limits{}); err != io.EOF {
			t.Errorf("after the last answer: %v, want io.EOF", err)
		}
	})
}

// hostilePeer is a plain node that serves the DHT protocol itself, to
// attack honest clients: it answers honestly (the K closest peers of the
// honest network it is given) until the test sets an answer.
type hostilePeer struct {
	n      *node.Node
	honest []peer.AddrInfo
	victim peer.ID // whose requests answer serves and asked counts

	answer atomic.Pointer[hostileAnswer]
	asked  atomic.Int32 // the victim's requests answered by answer
	resets atomic.Int32 // stalled streams the victim reset
}

// hostileAnswer gives the bytes to write in answer to req, framing
// included; nil stalls: the peer reads on and never answers.
type hostileAnswer func(req *Message) []byte

func newHostilePeer(t *testing.T, mn *transport.MemNetwork, honest []simDHT, key peer.PrivateKey) *hostilePeer {
	t.Helper()
	h := &hostilePeer{n: abusePlainNode(t, mn, key)}
	for _, s := range honest {
		h.honest = append(h.honest, s.info())
	}
	h.n.SetHandler(ID, h.serve)
	return h
}

// meetHostilePeer starts a hostile peer and connects the victim to it,
// which takes it into its routing table after the admission check, which
// the peer passes by answering honestly: it is the victim's until the
// test sets its answer.
func meetHostilePeer(t *testing.T, mn *transport.MemNetwork, honest []simDHT, victim simDHT, key peer.PrivateKey) *hostilePeer {
	t.Helper()
	h := newHostilePeer(t, mn, honest, key)
	h.victim = victim.n.ID()
	if _, err := victim.n.Connect(context.Background(), h.n.ID(), h.n.ListenAddrs()...); err != nil {
		t.Fatal(err)
	}
	settle()
	if !victim.d.RoutingTable().Contains(h.n.ID()) {
		t.Fatal("the hostile peer did not enter the victim's routing table")
	}
	return h
}

// leave ends the hostile peer and drops it from the victim's table, so
// that the next one meets the victim alone.
func (h *hostilePeer) leave(victim simDHT) {
	h.n.Close()
	victim.d.RoutingTable().Remove(h.n.ID())
	synctest.Wait()
}

// closest are the Peer entries of the K honest peers closest to key.
func (h *hostilePeer) closest(key []byte) []Peer {
	ids := make([]peer.ID, 0, len(h.honest))
	addrs := make(map[peer.ID][]ma.Multiaddr)
	for _, ai := range h.honest {
		ids = append(ids, ai.ID)
		addrs[ai.ID] = ai.Addrs
	}
	SortByDistance(KeyOf(key), ids)
	var out []Peer
	for _, id := range ids[:min(K, len(ids))] {
		e := Peer{ID: []byte(id)}
		for _, a := range addrs[id] {
			e.Addrs = append(e.Addrs, a.Bytes())
		}
		out = append(out, e)
	}
	return out
}

func (h *hostilePeer) serve(s *node.Stream) {
	from := s.Conn().RemotePeer()
	for {
		req, err := ReadMessage(s, Limits{})
		if err != nil {
			s.Reset()
			return
		}
		var out []byte
		if answer := h.answer.Load(); answer != nil && from == h.victim {
			h.asked.Add(1)
			out = (*answer)(req)
			if out == nil {
				_, err := io.Copy(io.Discard, s)
				if errors.Is(err, mux.ErrReset) {
					h.resets.Add(1)
				}
				s.Reset()
				return
			}
		} else {
			if req.Type == AddProvider {
				continue
			}
			var b bytes.Buffer
			WriteMessage(&b, &Message{Type: req.Type, Key: req.Key, CloserPeers: h.closest(req.Key)})
			out = b.Bytes()
		}
		if _, err := s.Write(out); err != nil {
			s.Reset()
			return
		}
	}
}

// fakeID is the i-th of 65,536 short peer IDs (identity multihashes of
// two bytes): valid, unreachable, and cheap to send by the thousand.
func fakeID(i int) []byte { return []byte{0x00, 0x02, byte(i >> 8), byte(i)} }

// TestClientHostileAnswers puts a hostile peer in an honest node's
// routing table as the peer closest to the key, then looks the key up.
// Whatever the hostile peer answers, the lookup must end within its time
// limits, find the true closest honest peers, keep its state to what K
// peers per answer make, and drop the peer if its answer was unusable.
func TestClientHostileAnswers(t *testing.T) {
	// 4,000 entries of 200 three-byte addresses (/tcp/<port>): within
	// DefaultMaxPeers, DefaultMaxAddrs and MaxMessageSize.
	huge := &Message{Type: FindNode, CloserPeers: make([]Peer, 4000)}
	for i := range huge.CloserPeers {
		e := &huge.CloserPeers[i]
		e.ID = fakeID(i)
		for port := range 200 {
			e.Addrs = append(e.Addrs, []byte{0x06, 0, byte(port + 1)})
		}
	}
	var hugeFrame bytes.Buffer
	if err := WriteMessage(&hugeFrame, huge); err != nil {
		t.Fatalf("the 4,000-peer answer does not fit the codec's limits: %v", err)
	}
	// What reading and decoding the answer costs: the lookup that gets
	// it may cost about as much again, not the 800,000 addresses parsed.
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	if _, err := ReadMessage(bytes.NewReader(hugeFrame.Bytes()), Limits{}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&m1)
	hugeCost := m1.TotalAlloc - m0.TotalAlloc
	tooMany := &Message{Type: FindNode, CloserPeers: make([]Peer, DefaultMaxPeers+1)}
	for i := range tooMany.CloserPeers {
		tooMany.CloserPeers[i].ID = fakeID(i)
	}
	var tooManyFrame bytes.Buffer
	WriteMessage(&tooManyFrame, tooMany)

	// At most K-1 peers besides itself: the victim's table always has
	// room for the hostile peer.
	const honestCount = K
	// What the answers are made of.
	type env struct {
		far   []Peer // the honest peers farthest from the key, and fakes
		self  Peer   // the hostile peer's own entry
		qSelf Peer   // the victim's own entry
	}
	tests := []struct {
		name   string
		answer func(e *env) hostileAnswer
		// keep: the answer was usable, the peer stays in the table and
		// counts among the closest; else it is dropped and excluded.
		keep bool
		// asked bounds the requests the lookup sends it.
		asked int32
		// slow is the least a lookup takes: it waits for the closest
		// peer, which stalls; otherwise it ends in under a second.
		slow time.Duration
		// tries bounds the request timeouts the lookup waits for.
		tries  int
		reqErr error // of a direct request
		// maxAlloc bounds the bytes the lookup allocates (0: unchecked).
		maxAlloc uint64
	}{
		{
			name:   "4,000 closer peers of 200 addresses each",
			answer: func(*env) hostileAnswer { return func(*Message) []byte { return hugeFrame.Bytes() } },
			keep:   true, asked: 1, maxAlloc: hugeCost + 8*MaxMessageSize,
		},
		{
			name: "itself, over and over",
			answer: func(e *env) hostileAnswer {
				return func(*Message) []byte {
					return hostileFrame(&Message{Type: FindNode, CloserPeers: slices.Repeat([]Peer{e.self}, 2000)})
				}
			},
			keep: true, asked: 1,
		},
		{
			name: "the requester, over and over",
			answer: func(e *env) hostileAnswer {
				return func(*Message) []byte {
					return hostileFrame(&Message{Type: FindNode, CloserPeers: slices.Repeat([]Peer{e.qSelf}, 2000)})
				}
			},
			keep: true, asked: 1,
		},
		{
			name: "peers far from the key",
			answer: func(e *env) hostileAnswer {
				return func(*Message) []byte { return hostileFrame(&Message{Type: FindNode, CloserPeers: e.far}) }
			},
			keep: true, asked: 1,
		},
		{
			name:   "nothing: it stalls",
			answer: func(*env) hostileAnswer { return func(*Message) []byte { return nil } },
			// The first request goes on the stream the admission check
			// left, so it is retried once on a new stream, as go does.
			asked: 2, slow: DefaultRequestTimeout, tries: 2,
			reqErr: os.ErrDeadlineExceeded,
		},
		{
			name: "an answer of another type",
			answer: func(e *env) hostileAnswer {
				return func(*Message) []byte { return hostileFrame(&Message{Type: GetValue, CloserPeers: e.far}) }
			},
			asked: 1, reqErr: ErrUnexpectedResponse,
		},
		{
			name: "a length prefix over MaxMessageSize",
			answer: func(*env) hostileAnswer {
				return func(*Message) []byte { return wire.AppendUvarint(nil, MaxMessageSize+1) }
			},
			asked: 1, reqErr: ErrTooLarge,
		},
		{
			name:   "more closer peers than MaxPeers",
			answer: func(*env) hostileAnswer { return func(*Message) []byte { return tooManyFrame.Bytes() } },
			asked:  1, reqErr: ErrTooLarge,
		},
		{
			name: "a malformed message",
			answer: func(*env) hostileAnswer {
				return func(*Message) []byte { return frameRaw([]byte{0x08, 0x04, 0x42, 0x10}) }
			},
			asked: 1, reqErr: ErrMalformed,
		},
	}
	// One network for all rows (t.Run cannot run in a bubble); each row
	// has a hostile peer of its own, which leaves with the row.
	synctest.Test(t, func(t *testing.T) {
		// No latency, for the 4 MiB answer: see
		// TestServerOversizedBodyNotAllocated.
		mn, honest := newSim(t, honestCount, transport.Link{}, nil)
		q := honest[1] // the victim
		for _, tt := range tests {
			fail := func(format string, args ...any) {
				t.Helper()
				t.Errorf("%s: %s", tt.name, fmt.Sprintf(format, args...))
			}
			h := meetHostilePeer(t, mn, honest, q, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*DefaultRequestTimeout)
			key := []byte(h.n.ID()) // the hostile peer is the closest
			var want []peer.ID      // honest, closest first
			for _, s := range honest {
				if s.n.ID() != q.n.ID() {
					want = append(want, s.n.ID())
				}
			}
			SortByDistance(KeyOf(key), want)
			e := &env{self: selfEntry(h.n), qSelf: selfEntry(q.n)}
			for _, id := range slices.Backward(want[len(want)-K/2:]) {
				e.far = append(e.far, Peer{ID: []byte(id)})
			}
			for _, id := range fakeFar(KeyOf(key), 50) {
				e.far = append(e.far, Peer{ID: id})
			}
			answer := tt.answer(e)
			h.answer.Store(&answer)

			storeBefore := q.n.Peerstore().Len()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got, st, err := q.d.Lookup(ctx, key)
			runtime.ReadMemStats(&after)
			if err != nil {
				fail("lookup: %v", err)
			}
			if most := time.Duration(tt.tries)*tt.slow + abusePrompt; st.Duration < tt.slow || st.Duration > most {
				fail("the lookup took %v, want %v to %v", st.Duration, tt.slow, most)
			}
			var gotHonest []peer.ID
			for _, id := range got {
				if slices.Contains(want, id) {
					gotHonest = append(gotHonest, id)
				}
			}
			if len(gotHonest) < Beta || !slices.Equal(gotHonest[:Beta], want[:Beta]) {
				fail("the lookup found %v, want the %d closest honest peers %v first", gotHonest, Beta, want[:Beta])
			}
			if len(got) > K {
				fail("the lookup returned %d peers, more than K", len(got))
			}
			if slices.Contains(got, h.n.ID()) != tt.keep {
				fail("hostile peer in the result: %v, want %v", !tt.keep, tt.keep)
			}
			if q.d.RoutingTable().Contains(h.n.ID()) != tt.keep {
				fail("hostile peer in the routing table: %v, want %v", !tt.keep, tt.keep)
			}
			if n := h.asked.Load(); n < 1 || n > tt.asked {
				fail("the lookup asked the hostile peer %d times, want 1 to %d", n, tt.asked)
			}
			// Requests: honest peers, the hostile peer (and its
			// retry), and no more than K of its referrals.
			if most := honestCount + int(tt.asked) + K; st.Requests > most {
				fail("the lookup sent %d requests, want at most %d", st.Requests, most)
			}
			if grew := q.n.Peerstore().Len() - storeBefore; grew > K {
				fail("the peerstore grew by %d peers from one answer, want at most K", grew)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			if tt.maxAlloc > 0 && alloc > tt.maxAlloc {
				fail("the lookup allocated %d bytes, want at most %d (what decoding the answer costs, plus its size 8 times over)", alloc, tt.maxAlloc)
			}
			t.Logf("%s: lookup %+v, %d bytes allocated", tt.name, st, alloc)
			if tt.slow > 0 {
				synctest.Wait()
				if h.resets.Load() == 0 {
					fail("the stalled stream was not reset")
				}
			}

			// A direct request: the error it fails with, within
			// RequestTimeout on a fresh stream.
			h.asked.Store(0)
			start := time.Now()
			_, err = q.d.request(ctx, h.n.ID(), &Message{Type: FindNode, Key: key})
			took := time.Since(start)
			if tt.reqErr == nil && err != nil || tt.reqErr != nil && !errors.Is(err, tt.reqErr) {
				fail("request: %v, want %v", err, tt.reqErr)
			}
			if took < tt.slow || took > tt.slow+abusePrompt {
				fail("request took %v, want %v", took, tt.slow)
			}
			if n := h.asked.Load(); n != 1 {
				fail("one request reached the hostile peer %d times", n)
			}
			cancel()
			h.leave(q)
		}
	})
}

// TestClientHostileRecords: a hostile peer answers GET_VALUE with
// records that fail validation (a bad signature, another peer's key) and
// would win if taken (a higher sequence number). The client must ignore
// them: return the honest record, or ErrNotFound when there is none.
func TestClientHostileRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn, honest := newSim(t, K, abuseLink, nil)
		q, owner := honest[1], honest[2] // the victim, a publisher
		ctx := context.Background()
		eol := time.Now().Add(24 * time.Hour)
		good, err := ipns.Create(owner.n.Key(), []byte("/ipfs/bafkqaaa"), 1, eol, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ipnsKey := string(ipns.Key(owner.n.ID()))
		if err := owner.d.PutValue(ctx, ipnsKey, good); err != nil {
			t.Fatal(err)
		}
		pkKey := "/pk/" + string(owner.n.ID())
		ownerPK := peer.MarshalPublicKey(owner.n.Key().Public())
		if err := owner.d.PutValue(ctx, pkKey, ownerPK); err != nil {
			t.Fatal(err)
		}
		settle()
		nobody := honest[3].n.Key() // publishes nothing
		tests := []struct {
			name  string
			key   string
			value func(h *hostilePeer) []byte // the hostile record
			want  []byte                      // nil: ErrNotFound
		}{
			{name: "newer IPNS record with a bad signature", key: ipnsKey, want: good,
				value: func(*hostilePeer) []byte { return badSignature(t, owner.n.Key(), 99, eol) }},
			{name: "newer IPNS record signed by another key", key: ipnsKey, want: good,
				value: func(h *hostilePeer) []byte { return abuseIPNS(t, h.n.Key(), 99, eol) }},
			{name: "IPNS record with a bad signature, alone", key: string(ipns.Key(peer.IDFromPublicKey(nobody.Public()))),
				value: func(*hostilePeer) []byte { return badSignature(t, nobody, 99, eol) }},
			{name: "another peer's public key", key: pkKey, want: ownerPK,
				value: func(h *hostilePeer) []byte { return peer.MarshalPublicKey(h.n.Key().Public()) }},
			{name: "another peer's public key, alone", key: "/pk/" + string(peer.IDFromPublicKey(nobody.Public())),
				value: func(h *hostilePeer) []byte { return peer.MarshalPublicKey(h.n.Key().Public()) }},
		}
		for _, tt := range tests {
			// Closer to the key than every honest peer, so that the
			// lookup asks it whatever else it hears.
			h := meetHostilePeer(t, mn, honest, q, keyCloserThan(t, KeyOf([]byte(tt.key)), honest))
			bad := tt.value(h)
			var gets atomic.Int32
			answer := hostileAnswer(func(req *Message) []byte {
				if req.Type != GetValue {
					return hostileFrame(&Message{Type: req.Type, CloserPeers: h.closest(req.Key)})
				}
				gets.Add(1)
				return hostileFrame(&Message{Type: GetValue, Key: req.Key, Record: &Record{Key: req.Key, Value: bad},
					CloserPeers: h.closest(req.Key)})
			})
			h.answer.Store(&answer)
			got, err := q.d.GetValue(ctx, tt.key)
			switch {
			case gets.Load() == 0:
				t.Errorf("%s: the lookup did not ask the hostile peer", tt.name)
			case tt.want == nil && !errors.Is(err, ErrNotFound):
				t.Errorf("%s: GetValue = %x, %v; want ErrNotFound", tt.name, got, err)
			case tt.want != nil && (err != nil || !bytes.Equal(got, tt.want)):
				t.Errorf("%s: GetValue = %x, %v; want the honest record", tt.name, got, err)
			}
			h.leave(q)
		}
	})
}

// keyCloserThan returns a fresh key whose peer's key is closer to target
// than those of all of peers.
func keyCloserThan(t *testing.T, target Key, peers []simDHT) peer.PrivateKey {
	t.Helper()
	for {
		k, err := peer.GenerateEd25519(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		mine := PeerKey(peer.IDFromPublicKey(k.Public()))
		if !slices.ContainsFunc(peers, func(s simDHT) bool { return !target.Closer(mine, PeerKey(s.n.ID())) }) {
			return k
		}
	}
}

// abuseIPNS is a valid IPNS record of key.
func abuseIPNS(t *testing.T, key peer.PrivateKey, seq uint64, eol time.Time) []byte {
	t.Helper()
	rec, err := ipns.Create(key, []byte("/ipfs/bafkqaaa"), seq, eol, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestClientCloserPeersCost: of an answer with thousands of closer
// peers, the lookup keeps the K closest. Picking them must not parse the
// addresses of all the others first: that is a parse of every address a
// 4 MiB message can hold (800,000 here), where those of K entries do.
func TestClientCloserPeersCost(t *testing.T) {
	const peers, addrs = 4000, 200
	entries := make([]Peer, peers)
	for i := range entries {
		entries[i].ID = fakeID(i)
		for port := range addrs {
			entries[i].Addrs = append(entries[i].Addrs, []byte{0x06, 0, byte(port + 1)})
		}
	}
	synctest.Test(t, func(t *testing.T) {
		_, nodes := newSim(t, 1, transport.Link{}, nil)
		d := nodes[0].d
		key := multihash("many closer peers")
		got := d.closestOf(key, entries)
		if len(got) != maxCloserPerAnswer {
			t.Fatalf("closestOf kept %d of %d entries, want %d", len(got), peers, maxCloserPerAnswer)
		}
		var ids []peer.ID
		for i := range entries {
			ids = append(ids, peer.ID(entries[i].ID))
		}
		SortByDistance(KeyOf(key), ids)
		for i, ai := range got {
			if ai.ID != ids[i] || len(ai.Addrs) != addrs {
				t.Fatalf("closestOf[%d] is %s with %d addresses, want %s with %d", i, ai.ID.ShortString(), len(ai.Addrs), ids[i].ShortString(), addrs)
			}
		}
		// A few allocations per entry, and per address kept.
		bound := float64(4*peers + 4*maxCloserPerAnswer*addrs)
		if n := testing.AllocsPerRun(2, func() { d.closestOf(key, entries) }); n > bound {
			t.Errorf("closestOf of %d entries of %d addresses made %.0f allocations, want at most %.0f", peers, addrs, n, bound)
		}
	})
}

// hostileFrame is frame for answers built in a handler, without a t:
// the messages given are known to fit.
func hostileFrame(m *Message) []byte {
	var b bytes.Buffer
	WriteMessage(&b, m)
	return b.Bytes()
}

// fakeFar returns n short peer IDs whose keys are far from target (the
// first bit differs), the first such fakeIDs.
func fakeFar(target Key, n int) [][]byte {
	var out [][]byte
	for j := 0; len(out) < n; j++ {
		if id := fakeID(j); CommonPrefixLen(target, KeyOf(id)) == 0 {
			out = append(out, id)
		}
	}
	return out
}
