package check

// The Kademlia DHT rows. Mote asks the peer: each request type, all on
// one stream, as servers must allow. The peer asks mote: the node of an
// in column serves the DHT, holding a record, a provider record and a
// peer's address that only it knows, and the runner makes the peer
// (a DHTPeer) look them up and store its own on mote.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mote-p2p/mote/ipns"
	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/mux"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/wire/cid"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// DHTPeer is a Peer that runs the Kademlia DHT and can be made to use
// it: the rows in which the peer asks mote need one. *Kubo is one,
// through `ipfs routing` and `ipfs provide`. Record keys are
// "/pk/<peer ID>" or "/ipns/<peer ID>", as `ipfs routing get` takes
// them; peer IDs and CIDs are in their text forms. Each method is called
// under the time limit of a check.
type DHTPeer interface {
	// RoutingTable lists the peer IDs in the peer's DHT routing tables.
	RoutingTable(ctx context.Context) ([]string, error)
	// FindPeer looks id up and returns the addresses the answers gave
	// for it, whether or not the peer could then reach it.
	FindPeer(ctx context.Context, id string) ([]string, error)
	// FindProviders looks up the providers of cid and returns their IDs.
	FindProviders(ctx context.Context, cid string) ([]string, error)
	// Provide stores block as a raw block and announces that the peer
	// provides it; it returns the block's CID.
	Provide(ctx context.Context, block []byte) (string, error)
	// GetValue looks key up and returns the best value it found.
	GetValue(ctx context.Context, key string) ([]byte, error)
	// PutValue stores value under key in the DHT.
	PutValue(ctx context.Context, key string, value []byte) error
}

// The rows of the DHT, in the order of rows.
var (
	kadAsks   = []string{"kad-find-node", "kad-put-value", "kad-get-value", "kad-add-provider", "kad-get-providers"}
	kadServed = []string{"kad-find-node-served", "kad-put-value-served", "kad-get-value-served", "kad-add-provider-served", "kad-get-providers-served"}
)

// kadTargetAddr is the address mote's node knows for the peer that
// kad-find-node-served makes the peer look up. It is private, as the
// LAN DHT wants (go's drops loopback addresses from answers: dual/dual.go
// AddressFilter), and on SCTP, which libp2p peers do not dial: the
// peer's dial, if it tries one, fails at once instead of waiting on an
// address nobody answers.
var kadTargetAddr = ma.StringCast("/ip4/10.0.0.1/sctp/9")

// setAll files the same outcome for each of rows.
func (c *column) setAll(rows []string, s Status, reason string) {
	for _, row := range rows {
		c.set(row, s, reason, "", 0)
	}
}

// checkKad: mote asks the peer, over the DHT protocol the peer
// advertised (the public one if both), every request type in turn on
// one stream; a stream the peer ended fails the row it ended in, and
// the next row opens another.
func (c *column) checkKad(ctx context.Context) {
	var proto string
	switch {
	case !c.idKnown:
		c.setAll(kadAsks, NotChecked, noMessage)
		return
	case slices.Contains(c.protos, kademlia.ID):
		proto = kademlia.ID
	case slices.Contains(c.protos, kademlia.LANID):
		proto = kademlia.LANID
	default:
		c.setAll(kadAsks, NA, "not advertised (neither "+kademlia.ID+" nor "+kademlia.LANID+")")
		return
	}
	ks := &kadStream{open: c.open, proto: proto}
	defer ks.close()
	on := proto + ": "

	// FIND_NODE of a random key.
	var resp *kademlia.Message
	took, why, err := c.within(ctx, func(ctx context.Context) (err error) {
		resp, err = ks.exchange(ctx, &kademlia.Message{Type: kademlia.FindNode, Key: randomPeerID()}, true)
		return err
	})
	if err != nil {
		c.kadFailed("kad-find-node", ks, why, err, took)
	} else if bad := answerProblem(resp, kademlia.FindNode); bad != "" {
		c.set("kad-find-node", Fail, bad, "", took)
	} else {
		c.set("kad-find-node", Pass, "", fmt.Sprintf("%s%d closer peers", on, len(resp.CloserPeers)), took)
	}

	// PUT_VALUE of the column's public key record: the answer echoes it.
	key := "/pk/" + string(c.n.ID())
	shown := "/pk/" + c.n.ID().String()
	value := peer.MarshalPublicKey(c.n.Key().Public())
	rec := &kademlia.Record{Key: []byte(key), Value: value}
	took, why, err = c.within(ctx, func(ctx context.Context) (err error) {
		resp, err = ks.exchange(ctx, &kademlia.Message{Type: kademlia.PutValue, Key: []byte(key), Record: rec}, true)
		return err
	})
	put := false
	switch {
	case err != nil:
		c.kadFailed("kad-put-value", ks, why, err, took)
	case answerProblem(resp, kademlia.PutValue) != "":
		c.set("kad-put-value", Fail, answerProblem(resp, kademlia.PutValue), "", took)
	case resp.Record == nil || string(resp.Key) != key || string(resp.Record.Key) != key || !bytes.Equal(resp.Record.Value, value):
		c.set("kad-put-value", Fail, "the answer does not echo the record "+shown, "", took)
	default:
		put = true
		c.set("kad-put-value", Pass, "", on+"echoed "+shown, took)
	}

	// GET_VALUE of the same key.
	took, why, err = c.within(ctx, func(ctx context.Context) (err error) {
		resp, err = ks.exchange(ctx, &kademlia.Message{Type: kademlia.GetValue, Key: []byte(key)}, true)
		return err
	})
	switch {
	case err != nil:
		c.kadFailed("kad-get-value", ks, why, err, took)
	case answerProblem(resp, kademlia.GetValue) != "":
		c.set("kad-get-value", Fail, answerProblem(resp, kademlia.GetValue), "", took)
	case resp.Record != nil && bytes.Equal(resp.Record.Value, value):
		c.set("kad-get-value", Pass, "", fmt.Sprintf("%sthe record mote put, %d bytes", on, len(value)), took)
	case resp.Record != nil:
		c.set("kad-get-value", Fail, fmt.Sprintf("a record of %d bytes for %s, not the one mote put", len(resp.Record.Value), shown), "", took)
	case !put:
		c.set("kad-get-value", NotChecked, "no record for "+shown+": the PUT_VALUE failed (see kad: PUT_VALUE)", "", took)
	default:
		c.set("kad-get-value", Fail, "no record for "+shown+", which the peer echoed to PUT_VALUE", "", took)
	}

	c.checkKadProviders(ctx, ks, on)
}

// checkKadProviders: ADD_PROVIDER of a random multihash, with mote's
// addresses, then GET_PROVIDERS of it on the same stream. ADD_PROVIDER
// has no answer, so it passes once the peer answered the GET_PROVIDERS
// after it; GET_PROVIDERS passes if the answer lists mote.
func (c *column) checkKadProviders(ctx context.Context, ks *kadStream, on string) {
	var digest [32]byte
	rand.Read(digest[:])
	mh := cid.Sum256(digest)
	addrs := c.ourAddrs()
	if len(addrs) == 0 {
		c.setAll([]string{"kad-add-provider", "kad-get-providers"}, NotChecked, "mote has no address to give in ADD_PROVIDER")
		return
	}
	self := kademlia.Peer{ID: []byte(c.n.ID())}
	var gave []string
	for _, a := range addrs {
		self.Addrs = append(self.Addrs, a.Bytes())
		gave = append(gave, a.String())
	}
	add := &kademlia.Message{Type: kademlia.AddProvider, Key: mh, ProviderPeers: []kademlia.Peer{self}}
	get := &kademlia.Message{Type: kademlia.GetProviders, Key: mh}
	var resp *kademlia.Message
	var sendErr error
	answeredAdd := false
	took, why, err := c.within(ctx, func(ctx context.Context) (err error) {
		if _, sendErr = ks.exchange(ctx, add, false); sendErr != nil {
			return sendErr
		}
		resp, err = ks.exchange(ctx, get, true)
		if err == nil && resp.Type == kademlia.AddProvider {
			// An answer to ADD_PROVIDER: GET_PROVIDERS's may follow.
			answeredAdd = true
			resp, err = ks.read(ctx)
		}
		return err
	})
	var ended *endedError
	added := false
	switch {
	case sendErr != nil:
		c.kadFailed("kad-add-provider", ks, why, sendErr, took)
	case answeredAdd:
		c.set("kad-add-provider", Fail, "the peer answered ADD_PROVIDER, which has no answer", "", took)
	case errors.As(err, &ended):
		why := "the peer " + ended.how() + " the stream after ADD_PROVIDER instead of answering the GET_PROVIDERS after it"
		if ended.reset {
			why += " (go resets it when no provider entry is usable)"
		}
		c.set("kad-add-provider", Fail, why, "", took)
	case err != nil:
		c.set("kad-add-provider", NotChecked, "no answer to the GET_PROVIDERS after it on the stream (see kad: GET_PROVIDERS)", "", took)
	default:
		added = true
		c.set("kad-add-provider", Pass, "", on+"no answer, and the peer answered the GET_PROVIDERS after it on the stream", took)
	}
	if err != nil && sendErr == nil && ended == nil {
		// GET_PROVIDERS itself failed: timed out, malformed.
		c.set("kad-get-providers", Fail, why, "", took)
		return
	}
	if resp == nil {
		// The stream ended: ask again on a new one.
		took, why, err = c.within(ctx, func(ctx context.Context) (err error) {
			resp, err = ks.exchange(ctx, get, true)
			return err
		})
		if err != nil {
			c.kadFailed("kad-get-providers", ks, why, err, took)
			return
		}
	}
	if bad := answerProblem(resp, kademlia.GetProviders); bad != "" {
		c.set("kad-get-providers", Fail, bad, "", took)
		return
	}
	i := slices.IndexFunc(resp.ProviderPeers, func(p kademlia.Peer) bool { return peer.ID(p.ID) == c.n.ID() })
	switch {
	case i < 0 && !added:
		c.set("kad-get-providers", NotChecked, fmt.Sprintf("lists %d providers, not mote, whose ADD_PROVIDER failed (see kad: ADD_PROVIDER)", len(resp.ProviderPeers)), "", took)
	case i < 0:
		c.set("kad-get-providers", Fail, fmt.Sprintf("lists %d providers, not mote: the peer did not keep mote's ADD_PROVIDER", len(resp.ProviderPeers)), "", took)
	case len(resp.ProviderPeers[i].Addrs) == 0:
		c.set("kad-get-providers", Pass, "", on+"lists mote, but none of the addresses it gave ("+strings.Join(gave, " ")+
			"): the peer keeps only those it deems usable (go-libp2p-kad-dht's dual DHT keeps public ones on the WAN DHT, all but loopback on the LAN one: dual/dual.go)", took)
	default:
		var listed []string
		for _, b := range resp.ProviderPeers[i].Addrs {
			if a, err := ma.NewMultiaddrBytes(b); err == nil {
				listed = append(listed, a.String())
			}
		}
		c.set("kad-get-providers", Pass, "", on+"lists mote at "+strings.Join(listed, " "), took)
	}
}

// kadFailed files a failed exchange of row.
func (c *column) kadFailed(row string, ks *kadStream, why string, err error, took time.Duration) {
	var oe *openError
	var ended *endedError
	switch {
	case errors.As(err, &oe) && ks.tries == 1:
		c.failed(row, ks.proto, why, oe.err, took)
	case errors.As(err, &oe) && ks.opened == 0:
		c.set(row, NotChecked, "no stream: the first could not be opened (see kad: FIND_NODE)", "", took)
	case errors.As(err, &oe):
		c.set(row, NotChecked, "could not open another stream: "+why, "", took)
	case errors.As(err, &ended):
		c.set(row, Fail, ended.reason(), "", took)
	default:
		c.set(row, Fail, why, "", took)
	}
}

// answerProblem says what is wrong with an answer to a request of type
// t: its type, or closer or provider peers that do not parse; "" if
// nothing.
func answerProblem(m *kademlia.Message, t kademlia.MessageType) string {
	if m.Type != t {
		return fmt.Sprintf("answered %s to %s", m.Type, t)
	}
	for name, list := range map[string][]kademlia.Peer{"closer peer": m.CloserPeers, "provider": m.ProviderPeers} {
		for i, p := range list {
			if _, err := peer.IDFromBytes(p.ID); err != nil {
				return fmt.Sprintf("%s %d: %s", name, i+1, oneLine(err))
			}
			for j, b := range p.Addrs {
				if _, err := ma.NewMultiaddrBytes(b); err != nil {
					return fmt.Sprintf("%s %d, address %d: %s", name, i+1, j+1, oneLine(err))
				}
			}
		}
	}
	return ""
}

// ourAddrs are the addresses mote gives as a provider: its node's, else
// (a node that does not listen) the end of the connection, at the IP it
// was seen at if the socket is bound to an unspecified one.
func (c *column) ourAddrs() []ma.Multiaddr {
	if addrs := c.n.Addrs(); len(addrs) > 0 {
		return addrs
	}
	local := c.local
	if len(local) < 2 {
		return nil
	}
	if ma.IsIPUnspecified(local) {
		if len(c.remote) == 0 || c.remote[0].Code() != local[0].Code() {
			return nil
		}
		local = append(ma.Multiaddr{c.remote[0]}, local[1:]...)
	}
	return []ma.Multiaddr{local}
}

// randomPeerID is a peer ID nobody has: a random SHA-256 multihash.
func randomPeerID() []byte {
	var digest [32]byte
	rand.Read(digest[:])
	return cid.Sum256(digest)
}

// kadStream carries mote's requests to the peer: one stream for all of
// them, a new one only after the peer ended one.
type kadStream struct {
	open    func(ctx context.Context, proto string) (transport.Stream, error)
	proto   string
	s       transport.Stream
	answers int // read on s
	tries   int // streams asked for
	opened  int // streams opened
}

// openError: no stream could be opened.
type openError struct{ err error }

func (e *openError) Error() string { return e.err.Error() }
func (e *openError) Unwrap() error { return e.err }

// endedError: the peer closed or reset the stream instead of answering.
type endedError struct {
	answers int // it had answered on the stream before
	reset   bool
	err     error
}

func (e *endedError) Error() string { return e.reason() }
func (e *endedError) Unwrap() error { return e.err }

func (e *endedError) how() string {
	if e.reset {
		return "reset"
	}
	return "closed"
}

func (e *endedError) reason() string {
	if e.answers == 0 {
		return "the peer " + e.how() + " the stream instead of answering (go resets it on a request it refuses)"
	}
	s := "s"
	if e.answers == 1 {
		s = ""
	}
	return fmt.Sprintf("the peer %s the stream after %d answer%s instead of answering the next request: a server must serve requests on a stream until the client ends it (kad-dht/README.md)", e.how(), e.answers, s)
}

// exchange writes req on the stream, opening one if there is none, and
// reads the answer if reply. A stream that fails is dropped.
func (k *kadStream) exchange(ctx context.Context, req *kademlia.Message, reply bool) (*kademlia.Message, error) {
	if k.s == nil {
		k.tries++
		s, err := k.open(ctx, k.proto)
		if err != nil {
			return nil, &openError{err}
		}
		k.s, k.answers = s, 0
		k.opened++
	}
	if dl, ok := ctx.Deadline(); ok {
		k.s.SetDeadline(dl)
	}
	if err := kademlia.WriteMessage(k.s, req); err != nil {
		return nil, k.fail(err)
	}
	if !reply {
		return nil, nil
	}
	return k.read(ctx)
}

// read reads the next answer on the stream.
func (k *kadStream) read(ctx context.Context) (*kademlia.Message, error) {
	if k.s == nil {
		return nil, errors.New("no stream")
	}
	if dl, ok := ctx.Deadline(); ok {
		k.s.SetDeadline(dl)
	}
	m, err := kademlia.ReadMessage(k.s, kademlia.Limits{})
	if err != nil {
		return nil, k.fail(err)
	}
	k.answers++
	return m, nil
}

func (k *kadStream) fail(err error) error {
	k.s.Reset()
	k.s = nil
	if err == io.EOF || errors.Is(err, mux.ErrReset) {
		return &endedError{answers: k.answers, reset: errors.Is(err, mux.ErrReset), err: err}
	}
	return err
}

// close ends the stream, as a client ends a stream it is done with.
func (k *kadStream) close() {
	if k.s != nil {
		k.s.Close()
		k.s = nil
	}
}

// kadSeeds are what mote's node holds for the peer to find, and no one
// else does.
type kadSeeds struct {
	valueKey string // "/pk/<binary ID>"
	valueID  peer.ID
	value    []byte
	provided []byte // a multihash only mote provides
	target   peer.ID
}

// errSent: a record meant to be mote's own went to other peers.
var errSent = errors.New("it went to other peers: the routing table was not empty")

// startDHT has the node of an in column serve the DHT, both protocols
// (a peer's public DHT may take a loopback peer or not, Kubo's does not;
// its LAN DHT does), before the peer dials it, so that identify shows
// it serves them. Its routing table is empty, so the record and the
// provider record it is given stay its own (the puts end with
// ErrNoPeers), and only its peerstore knows the target's address.
func (c *column) startDHT(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.r.o.Timeout)
	defer cancel()
	if _, ok := c.r.peer.(DHTPeer); !ok {
		return
	}
	all := func(ma.Multiaddr) bool { return true }
	d, err := kademlia.NewDual(c.n, kademlia.Config{Mode: kademlia.ModeServer, AddrFilter: all})
	if err != nil {
		c.dhtErr = err
		return
	}
	c.dht = d
	key, err := peer.GenerateEd25519(rand.Reader)
	if err != nil {
		c.dhtErr = err
		return
	}
	var digest [32]byte
	rand.Read(digest[:])
	s := kadSeeds{valueID: peer.IDFromPublicKey(key.Public()), value: peer.MarshalPublicKey(key.Public()), provided: cid.Sum256(digest)}
	s.valueKey = "/pk/" + string(s.valueID)
	target, err := peer.IDFromBytes(randomPeerID())
	if err != nil {
		c.dhtErr = err
		return
	}
	s.target = target
	own := func(err error) error {
		switch {
		case err == nil:
			return errSent
		case errors.Is(err, kademlia.ErrNoPeers):
			return nil
		}
		return err
	}
	for _, x := range []*kademlia.DHT{d.WAN, d.LAN} {
		if err := own(x.PutValue(ctx, s.valueKey, s.value)); err != nil {
			c.dhtErr = fmt.Errorf("store a record: %w", err)
			return
		}
		if err := own(x.Provide(ctx, s.provided)); err != nil {
			c.dhtErr = fmt.Errorf("store a provider record: %w", err)
			return
		}
	}
	c.n.Peerstore().AddAddrs(s.target, []ma.Multiaddr{kadTargetAddr}, time.Hour)
	c.seeds = s
}

// kadCount is what mote's DHTs counted of requests of type t, by
// protocol.
func (c *column) kadCount(t kademlia.MessageType) map[string]uint64 {
	out := map[string]uint64{}
	for _, d := range []*kademlia.DHT{c.dht.WAN, c.dht.LAN} {
		out[d.Protocol()] = d.Stats().Counters["kad.in."+t.String()]
	}
	return out
}

// kadArrived says how many requests of type t arrived since before
// ("1 FIND_NODE over /ipfs/lan/kad/1.0.0"), "" if none.
func (c *column) kadArrived(t kademlia.MessageType, before map[string]uint64) string {
	var parts []string
	for _, p := range []string{kademlia.LANID, kademlia.ID} {
		if n := c.kadCount(t)[p] - before[p]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s over %s", n, t, p))
		}
	}
	return strings.Join(parts, ", ")
}

// checkKadServed: the peer asks mote (in columns, with a DHTPeer). Each
// row passes only if the request reached mote's node and the peer got
// from it what only mote had, or mote now holds what the peer stored.
func (c *column) checkKadServed(ctx context.Context) {
	dp, ok := c.r.peer.(DHTPeer)
	name := c.r.name
	switch {
	case c.r.peer == nil:
		c.setAll(kadServed, NotChecked, "needs the peer to query mote: run against a Kubo the runner drives (--kubo)")
		return
	case c.col.Dialer == "mote":
		c.setAll(kadServed, NA, "checked in the in columns: there the peer dials mote's node, which serves the DHT; this connection is the runner's own")
		return
	case !ok:
		c.setAll(kadServed, NotChecked, name+" cannot be made to use the DHT (it is no check.DHTPeer)")
		return
	case c.dht == nil || c.dhtErr != nil:
		c.setAll(kadServed, NotChecked, fmt.Sprintf("mote's DHT did not start: %v", c.dhtErr))
		return
	}
	moteID := c.n.ID().String()
	var listed int
	_, why, err := c.within(ctx, func(ctx context.Context) error {
		for {
			ids, err := dp.RoutingTable(ctx)
			if err != nil && ctx.Err() == nil {
				return &tableError{err}
			}
			if err == nil && slices.Contains(ids, moteID) {
				return nil
			}
			listed = len(ids)
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
	})
	var te *tableError
	switch {
	case errors.As(err, &te):
		c.setAll(kadServed, NotChecked, "cannot read "+name+"'s DHT routing table: "+oneLine(te.err))
		return
	case err != nil:
		c.setAll(kadServed, NotChecked, fmt.Sprintf("%s did not put mote in its DHT routing table (it lists %d peers): %s", name, listed, why))
		return
	}
	s := c.seeds

	// FIND_NODE: the peer looks up the target, whose address only
	// mote's peerstore holds.
	before := c.kadCount(kademlia.FindNode)
	var found []string
	took, why, err := c.within(ctx, func(ctx context.Context) (err error) {
		found, err = dp.FindPeer(ctx, s.target.String())
		return err
	})
	want := kadTargetAddr.String()
	arrived := c.kadArrived(kademlia.FindNode, before)
	switch {
	case err != nil:
		c.set("kad-find-node-served", Fail, name+" looking up a peer only mote knows: "+why, "", took)
	case !slices.ContainsFunc(found, func(a string) bool { return a == want || strings.HasPrefix(a, want+"/") }):
		c.set("kad-find-node-served", Fail, fmt.Sprintf("%s found %q, not %s, which only mote knew", name, found, want), "", took)
	case arrived == "":
		c.set("kad-find-node-served", Fail, name+" found the peer, but mote counted no FIND_NODE", "", took)
	default:
		c.set("kad-find-node-served", Pass, "", fmt.Sprintf("%s found %s from mote's answer (%s)", name, want, arrived), took)
	}

	// PUT_VALUE: the peer puts an IPNS record; mote must then hold it.
	c.checkKadPutServed(ctx, dp)

	// GET_VALUE: the record only mote holds.
	before = c.kadCount(kademlia.GetValue)
	var got []byte
	key := "/pk/" + s.valueID.String()
	took, why, err = c.within(ctx, func(ctx context.Context) (err error) {
		got, err = dp.GetValue(ctx, key)
		return err
	})
	arrived = c.kadArrived(kademlia.GetValue, before)
	switch {
	case err != nil:
		c.set("kad-get-value-served", Fail, name+" getting "+key+", which only mote holds: "+why, "", took)
	case !bytes.Equal(got, s.value):
		c.set("kad-get-value-served", Fail, fmt.Sprintf("%s got %d bytes for %s, not the %d mote holds", name, len(got), key, len(s.value)), "", took)
	case arrived == "":
		c.set("kad-get-value-served", Fail, name+" got the record, but mote counted no GET_VALUE", "", took)
	default:
		c.set("kad-get-value-served", Pass, "", fmt.Sprintf("%s got %s from mote (%s)", name, key, arrived), took)
	}

	// ADD_PROVIDER: the peer announces a block of its own.
	c.checkKadProvideServed(ctx, dp)

	// GET_PROVIDERS: the key only mote provides.
	before = c.kadCount(kademlia.GetProviders)
	var provs []string
	provided := cid.NewV1(cid.Raw, s.provided).String()
	took, why, err = c.within(ctx, func(ctx context.Context) (err error) {
		provs, err = dp.FindProviders(ctx, provided)
		return err
	})
	arrived = c.kadArrived(kademlia.GetProviders, before)
	switch {
	case err != nil:
		c.set("kad-get-providers-served", Fail, name+" looking up the providers of "+provided+", which only mote knows: "+why, "", took)
	case !slices.Contains(provs, moteID):
		c.set("kad-get-providers-served", Fail, fmt.Sprintf("%s found providers %q of %s, not mote", name, provs, provided), "", took)
	case arrived == "":
		c.set("kad-get-providers-served", Fail, name+" found mote as provider, but mote counted no GET_PROVIDERS", "", took)
	default:
		c.set("kad-get-providers-served", Pass, "", fmt.Sprintf("%s found mote as the provider of %s (%s)", name, provided, arrived), took)
	}
}

// tableError: the peer's routing table could not be read.
type tableError struct{ err error }

func (e *tableError) Error() string { return e.err.Error() }

// checkKadPutServed: the peer puts an IPNS record for a fresh name, and
// mote's node must then answer GET_VALUE for it with the same record.
func (c *column) checkKadPutServed(ctx context.Context, dp DHTPeer) {
	name := c.r.name
	key, err := peer.GenerateEd25519(rand.Reader)
	if err != nil {
		c.set("kad-put-value-served", NotChecked, "cannot make an IPNS record: "+oneLine(err), "", 0)
		return
	}
	id := peer.IDFromPublicKey(key.Public())
	rec, err := ipns.Create(key, []byte("/ipfs/"+cid.NewV1(cid.Raw, randomPeerID()).String()), 1, time.Now().Add(time.Hour), time.Minute)
	if err != nil {
		c.set("kad-put-value-served", NotChecked, "cannot make an IPNS record: "+oneLine(err), "", 0)
		return
	}
	shown := "/ipns/" + id.String()
	before := c.kadCount(kademlia.PutValue)
	took, why, err := c.within(ctx, func(ctx context.Context) error {
		return dp.PutValue(ctx, shown, rec)
	})
	if err != nil {
		c.set("kad-put-value-served", Fail, name+" putting "+shown+": "+why, "", took)
		return
	}
	var holds string
	took2, why, err := c.within(ctx, func(ctx context.Context) error {
		return poll(ctx, func() (bool, error) {
			for _, proto := range []string{kademlia.LANID, kademlia.ID} {
				resp, err := c.askMote(ctx, proto, &kademlia.Message{Type: kademlia.GetValue, Key: ipns.Key(id)})
				if err != nil {
					return false, err
				}
				if resp.Record != nil && bytes.Equal(resp.Record.Value, rec) {
					holds = proto
					return true, nil
				}
			}
			return false, nil
		})
	})
	took += took2
	arrived := c.kadArrived(kademlia.PutValue, before)
	switch {
	case arrived == "":
		c.set("kad-put-value-served", Fail, name+" put "+shown+", but mote counted no PUT_VALUE", "", took)
	case err != nil:
		c.set("kad-put-value-served", Fail, fmt.Sprintf("%s's PUT_VALUE came (%s), but mote does not hold %s: %s", name, arrived, shown, why), "", took)
	default:
		c.set("kad-put-value-served", Pass, "", fmt.Sprintf("%s put %s on mote (%s), which holds it on %s", name, shown, arrived, holds), took)
	}
}

// checkKadProvideServed: the peer announces a block, and mote's node
// must then list the peer as its provider.
func (c *column) checkKadProvideServed(ctx context.Context, dp DHTPeer) {
	name := c.r.name
	block := make([]byte, 32)
	rand.Read(block)
	block = append([]byte("mote interop "), block...)
	before := c.kadCount(kademlia.AddProvider)
	var id string
	took, why, err := c.within(ctx, func(ctx context.Context) (err error) {
		id, err = dp.Provide(ctx, block)
		return err
	})
	if err != nil {
		c.set("kad-add-provider-served", Fail, name+" providing a block: "+why, "", took)
		return
	}
	cc, err := cid.Parse(id)
	if err != nil {
		c.set("kad-add-provider-served", Fail, fmt.Sprintf("%s provided %q: %s", name, id, oneLine(err)), "", took)
		return
	}
	if want := cid.Sum256(sha256.Sum256(block)); cc.Codec == cid.Raw && !bytes.Equal(cc.Multihash, want) {
		c.set("kad-add-provider-served", Fail, fmt.Sprintf("%s gave the raw block the CID %s, not %s", name, id, cid.NewV1(cid.Raw, want)), "", took)
		return
	}
	// The peer may announce from a queue, in the background (Kubo
	// does): wait for the record, within the time limit of a check.
	wait := c.r.o.Timeout
	start := time.Now()
	var holds string
	wctx, cancel := context.WithTimeout(ctx, wait)
	err = poll(wctx, func() (bool, error) {
		for _, proto := range []string{kademlia.LANID, kademlia.ID} {
			rctx, rcancel := context.WithTimeout(wctx, c.r.o.Timeout)
			resp, err := c.askMote(rctx, proto, &kademlia.Message{Type: kademlia.GetProviders, Key: cc.Multihash})
			rcancel()
			if err != nil {
				return false, err
			}
			if slices.ContainsFunc(resp.ProviderPeers, func(p kademlia.Peer) bool { return peer.ID(p.ID) == c.r.id }) {
				holds = proto
				return true, nil
			}
		}
		return false, nil
	})
	cancel()
	took += time.Since(start)
	arrived := c.kadArrived(kademlia.AddProvider, before)
	switch {
	case err == nil:
		c.set("kad-add-provider-served", Pass, "", fmt.Sprintf("%s announced %s to mote (%s), which lists it on %s", name, id, arrived, holds), took)
	case arrived == "":
		c.set("kad-add-provider-served", Fail, fmt.Sprintf("%s sent mote no ADD_PROVIDER for %s within %g s", name, id, wait.Seconds()), "", took)
	default:
		c.set("kad-add-provider-served", Fail, fmt.Sprintf("%s's ADD_PROVIDER came (%s), but mote does not list it for %s: %s", name, arrived, id, c.r.why(wctx, err)), "", took)
	}
}

// askMote sends one request to the column's node from a node of the
// runner's own (started on first use), which is how the runner sees what
// mote's node holds: as any peer does.
func (c *column) askMote(ctx context.Context, proto string, req *kademlia.Message) (*kademlia.Message, error) {
	if c.probe == nil {
		n, err := node.New(node.Config{DisableQUIC: true})
		if err != nil {
			return nil, err
		}
		c.probe = n
	}
	var tcp []ma.Multiaddr
	for _, a := range c.n.Addrs() {
		if transportOf(a) == "tcp" {
			tcp = append(tcp, a)
		}
	}
	if _, err := c.probe.Connect(ctx, c.n.ID(), tcp...); err != nil {
		return nil, fmt.Errorf("connect to mote's node: %w", err)
	}
	s, err := c.probe.NewStream(ctx, c.n.ID(), proto)
	if err != nil {
		return nil, fmt.Errorf("ask mote's node: %w", err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		s.SetDeadline(dl)
	}
	if err := kademlia.WriteMessage(s, req); err != nil {
		s.Reset()
		return nil, err
	}
	resp, err := kademlia.ReadMessage(s, kademlia.Limits{})
	if err != nil {
		s.Reset()
		return nil, fmt.Errorf("mote's node answering %s: %w", req.Type, err)
	}
	return resp, nil
}
