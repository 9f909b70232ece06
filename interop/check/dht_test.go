package check

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/wire/cid"
)

// kadBug is what a fake DHT server gets wrong.
type kadBug int

const (
	kadWrongType   kadBug = iota + 1 // answers FIND_NODE as GET_VALUE
	kadOneAnswer                     // closes the stream after its first answer
	kadNoRecord                      // echoes PUT_VALUE, keeps nothing
	kadAnswersAdd                    // answers ADD_PROVIDER
	kadResetsAdd                     // resets the stream at ADD_PROVIDER, as go does when no entry is usable
	kadNoProviders                   // keeps no provider record
	kadBadPeer                       // gives a closer peer whose ID does not parse
	kadResets                        // resets the stream at the first request
)

// fakeKad serves the DHT from memory, wrong in one way.
func fakeKad(bug kadBug) node.Handler {
	var mu sync.Mutex
	values := map[string]*kademlia.Record{}
	providers := map[string][]kademlia.Peer{}
	return func(s *node.Stream) {
		for {
			req, err := kademlia.ReadMessage(s, kademlia.Limits{})
			if err != nil {
				s.Close()
				return
			}
			if bug == kadResets || (bug == kadResetsAdd && req.Type == kademlia.AddProvider) {
				s.Reset()
				return
			}
			var resp *kademlia.Message
			mu.Lock()
			switch req.Type {
			case kademlia.FindNode:
				resp = &kademlia.Message{Type: kademlia.FindNode}
				if bug == kadWrongType {
					resp.Type = kademlia.GetValue
				}
				if bug == kadBadPeer {
					resp.CloserPeers = []kademlia.Peer{{ID: []byte("not a peer id")}}
				}
			case kademlia.PutValue:
				if bug != kadNoRecord {
					values[string(req.Key)] = req.Record
				}
				resp = req
			case kademlia.GetValue:
				resp = &kademlia.Message{Type: kademlia.GetValue, Key: req.Key, Record: values[string(req.Key)]}
			case kademlia.AddProvider:
				if bug != kadNoProviders {
					providers[string(req.Key)] = append(providers[string(req.Key)], req.ProviderPeers...)
				}
				if bug == kadAnswersAdd {
					resp = &kademlia.Message{Type: kademlia.AddProvider, Key: req.Key}
				}
			case kademlia.GetProviders:
				resp = &kademlia.Message{Type: kademlia.GetProviders, Key: req.Key, ProviderPeers: providers[string(req.Key)]}
			}
			mu.Unlock()
			if resp == nil {
				continue
			}
			if err := kademlia.WriteMessage(s, resp); err != nil {
				s.Reset()
				return
			}
			if bug == kadOneAnswer {
				s.Close()
				return
			}
		}
	}
}

// A DHT server that gets one thing wrong fails the rows it shows in,
// with the reason, and no other.
func TestKadServerBugs(t *testing.T) {
	for _, tc := range []struct {
		name string
		bug  kadBug
		want map[string]want
	}{
		{"wrong response type", kadWrongType, map[string]want{
			"kad-find-node": {Fail, "answered GET_VALUE to FIND_NODE"},
		}},
		{"no stream reuse", kadOneAnswer, map[string]want{
			"kad-put-value":     {Fail, "the stream after 1 answer instead of answering the next request"},
			"kad-get-value":     {NotChecked, "the PUT_VALUE failed"},
			"kad-add-provider":  {Fail, "the stream after"},
			"kad-get-providers": {NotChecked, "whose ADD_PROVIDER failed"},
		}},
		{"missing record", kadNoRecord, map[string]want{
			"kad-get-value": {Fail, "which the peer echoed to PUT_VALUE"},
		}},
		{"answers ADD_PROVIDER", kadAnswersAdd, map[string]want{
			"kad-add-provider": {Fail, "answered ADD_PROVIDER, which has no answer"},
		}},
		{"resets at ADD_PROVIDER", kadResetsAdd, map[string]want{
			"kad-add-provider":  {Fail, "reset the stream after ADD_PROVIDER"},
			"kad-get-providers": {NotChecked, "whose ADD_PROVIDER failed"},
		}},
		{"keeps no provider", kadNoProviders, map[string]want{
			"kad-get-providers": {Fail, "did not keep mote's ADD_PROVIDER"},
		}},
		{"bad closer peer", kadBadPeer, map[string]want{
			"kad-find-node": {Fail, "closer peer 1"},
		}},
		{"refuses everything", kadResets, map[string]want{
			"kad-find-node":     {Fail, "reset the stream instead of answering"},
			"kad-put-value":     {Fail, "reset the stream instead of answering"},
			"kad-get-value":     {Fail, "reset the stream instead of answering"},
			"kad-add-provider":  {Fail, "reset the stream after ADD_PROVIDER"},
			"kad-get-providers": {Fail, "reset the stream instead of answering"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, addrs := startPeer(t, func(n *node.Node) { n.SetHandler(kademlia.ID, fakeKad(tc.bug)) })
			m := run(t, addrs, Options{})
			w := goodPeer()
			for row, x := range tc.want {
				for _, col := range outCols {
					w[row][col] = x
				}
			}
			checkMatrix(t, m, w)
		})
	}
}

// A peer that serves only the LAN DHT is asked over it; one that serves
// neither is n/a.
func TestKadProtocols(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*node.Node)
		want want
		over string
	}{
		{"LAN only", func(n *node.Node) { n.SetHandler(kademlia.LANID, fakeKad(0)) }, want{Pass, ""}, kademlia.LANID},
		{"none", nil, want{NA, "not advertised"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, addrs := startPeerDHT(t, false, tc.mod)
			m := run(t, addrs, Options{})
			w := goodPeer()
			for _, row := range kadAsks {
				for _, col := range outCols {
					w[row][col] = tc.want
				}
			}
			checkMatrix(t, m, w)
			if c, _ := m.Cell("kad-find-node", outCols[0]); tc.over != "" && !strings.HasPrefix(c.Detail, tc.over+": ") {
				t.Errorf("detail %q, want it over %s", c.Detail, tc.over)
			}
		})
	}
}

// What mote's DHT answers a peer is checked from what the peer got: a
// peer that does not really ask, or never takes mote into its table,
// or cannot tell its table, fails or is not checked, with the reason.
func TestKadServed(t *testing.T) {
	n, d, addrs := startPeer(t, nil)
	honest := &motePeer{n: n, d: d, addrs: addrs}
	for _, tc := range []struct {
		name string
		p    Peer
		want map[string]want // for the in columns
	}{
		{"no DHTPeer", struct{ Peer }{honest}, allServed(want{NotChecked, "mote cannot be made to use the DHT"})},
		{"table unreadable", &lyingPeer{motePeer: honest, tableErr: errors.New("no DHT here")}, allServed(want{NotChecked, "cannot read mote's DHT routing table: no DHT here"})},
		{"mote never in the table", &lyingPeer{motePeer: honest, emptyTable: true}, allServed(want{NotChecked, "mote did not put mote in its DHT routing table (it lists 0 peers): timed out after 1 s"})},
		{"made-up answers", &lyingPeer{motePeer: honest, madeUp: true}, map[string]want{
			"kad-find-node-served":     {Fail, "mote found the peer, but mote counted no FIND_NODE"},
			"kad-put-value-served":     {Fail, "but mote counted no PUT_VALUE"},
			"kad-get-value-served":     {Fail, "got 0 bytes for /pk/"},
			"kad-add-provider-served":  {Fail, "sent mote no ADD_PROVIDER for"},
			"kad-get-providers-served": {Fail, "but mote counted no GET_PROVIDERS"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := runDrivenWithin(t, tc.p, time.Second, time.Second)
			w := drivenPeer()
			for row, x := range tc.want {
				for _, col := range []string{"tcp+noise in", "tcp+tls in", "quic-v1 in"} {
					w[row][col] = x
				}
			}
			checkMatrix(t, m, w)
		})
	}
}

func allServed(x want) map[string]want {
	w := map[string]want{}
	for _, row := range kadServed {
		w[row] = x
	}
	return w
}

// lyingPeer is motePeer's DHT, broken: its table cannot be read or never
// lists anyone, or its results are made up without asking anyone.
type lyingPeer struct {
	*motePeer
	tableErr   error
	emptyTable bool
	madeUp     bool
}

func (p *lyingPeer) RoutingTable(ctx context.Context) ([]string, error) {
	switch {
	case p.tableErr != nil:
		return nil, p.tableErr
	case p.emptyTable:
		return nil, nil
	}
	return p.motePeer.RoutingTable(ctx)
}

func (p *lyingPeer) FindPeer(ctx context.Context, id string) ([]string, error) {
	if p.madeUp {
		return []string{kadTargetAddr.String()}, nil
	}
	return p.motePeer.FindPeer(ctx, id)
}

func (p *lyingPeer) FindProviders(ctx context.Context, c string) ([]string, error) {
	if p.madeUp {
		return p.motePeer.RoutingTable(ctx) // mote's node is among them
	}
	return p.motePeer.FindProviders(ctx, c)
}

func (p *lyingPeer) Provide(ctx context.Context, block []byte) (string, error) {
	if p.madeUp {
		return cid.NewV1(cid.Raw, cid.Sum256(sha256.Sum256(block))).String(), nil
	}
	return p.motePeer.Provide(ctx, block)
}

func (p *lyingPeer) GetValue(ctx context.Context, key string) ([]byte, error) {
	if p.madeUp {
		return nil, nil
	}
	return p.motePeer.GetValue(ctx, key)
}

func (p *lyingPeer) PutValue(ctx context.Context, key string, value []byte) error {
	if p.madeUp {
		return nil
	}
	return p.motePeer.PutValue(ctx, key, value)
}

// The row lists of the DHT name rows that exist, in the order of rows.
func TestKadRows(t *testing.T) {
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	for _, list := range [][]string{kadAsks, kadServed} {
		i := slices.Index(ids, list[0])
		if i < 0 || !slices.Equal(ids[i:i+len(list)], list) {
			t.Errorf("rows %v are not in rows in that order", list)
		}
	}
	for _, id := range append(slices.Clone(kadAsks), kadServed...) {
		if r := rows[slices.Index(ids, id)]; r.Protocol != "kad" || r.Spec != "kad-dht/README.md" {
			t.Errorf("row %s: %+v", id, r)
		}
	}
	if _, err := peer.IDFromBytes(randomPeerID()); err != nil {
		t.Errorf("randomPeerID: %v", err)
	}
}

func TestParseDHTTables(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want []string
		err  bool
	}{
		{`{"Name":"wan","Buckets":[]}` + "\n" + `{"Name":"lan","Buckets":[]}` + "\n", nil, false},
		{`{"Name":"wan","Buckets":[]}
{"Name":"lan","Buckets":[{"LastRefresh":"2026-01-01T00:00:00Z","Peers":[{"ID":"12D3KooWa","Connected":true,"AgentVersion":"mote/0.1.0"},{"ID":"12D3KooWb"}]},{"Peers":[{"ID":"12D3KooWc"}]}]}
`, []string{"12D3KooWa", "12D3KooWb", "12D3KooWc"}, false},
		{"", nil, false},
		{"Error: routing service is not a DHT", nil, true},
	} {
		got, err := parseDHTTables([]byte(tc.out))
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("parseDHTTables(%q) = %q, %v; want %q (error %v)", tc.out, got, err, tc.want, tc.err)
		}
	}
}

func TestParseFindPeer(t *testing.T) {
	const target = "QmTarget"
	for _, tc := range []struct {
		name, out string
		want      []string
		err       bool
	}{
		{"from the answers, once each", `{"Extra":"","ID":"12D3KooWmote","Responses":null,"Type":0}
{"Extra":"","ID":"12D3KooWmote","Responses":[{"ID":"QmTarget","Addrs":["/ip4/10.0.0.1/sctp/9"]},{"ID":"12D3KooWother","Addrs":["/ip4/10.0.0.2/tcp/1"]}],"Type":1}
{"Extra":"","ID":"12D3KooWmote2","Responses":[{"ID":"QmTarget","Addrs":["/ip4/10.0.0.1/sctp/9"]}],"Type":1}
{"Extra":"","ID":"QmTarget","Responses":null,"Type":7}
{"Extra":"routing: not found","ID":"","Responses":null,"Type":3}
`, []string{"/ip4/10.0.0.1/sctp/9"}, false},
		{"from the result", `{"Extra":"","ID":"","Responses":[{"ID":"QmTarget","Addrs":["/ip4/127.0.0.1/tcp/4001","/ip4/127.0.0.1/udp/4001/quic-v1"]}],"Type":2}`,
			[]string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"}, false},
		{"other peers only", `{"ID":"12D3KooWmote","Responses":[{"ID":"12D3KooWother","Addrs":["/ip4/10.0.0.2/tcp/1"]}],"Type":1}`, nil, false},
		{"not JSON", "Error: routing: not found\n", nil, true},
	} {
		got, err := parseFindPeer([]byte(tc.out), target)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, %v; want %q (error %v)", tc.name, got, err, tc.want, tc.err)
		}
	}
}
