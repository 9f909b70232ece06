package check

// The checks on an open connection, one function per protocol.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mote-p2p/mote/identify"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/perf"
	"github.com/mote-p2p/mote/ping"
	"github.com/mote-p2p/mote/wire"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

func (c *column) checkMuxer() {
	if c.col.Transport == "quic-v1" {
		const why = "QUIC carries the streams itself: no muxer to agree"
		c.set("muxer", NA, why, "", 0)
		c.set("early-muxer", NA, why, "", 0)
		return
	}
	st := c.state
	if st.Muxer == "/yamux/1.0.0" {
		c.set("muxer", Pass, "", st.Muxer, 0)
	} else {
		c.set("muxer", Fail, fmt.Sprintf("agreed %q, want /yamux/1.0.0", st.Muxer), "", 0)
	}
	if st.EarlyMuxer {
		c.set("early-muxer", Pass, "", "in the "+st.Security+" handshake", 0)
	} else {
		c.set("early-muxer", NA, "agreed by multistream-select after the handshake (early negotiation is optional)", "", 0)
	}
}

// advertised reports whether the peer listed proto in identify, and
// whether identify told at all.
func (c *column) advertised(proto string) (yes, known bool) {
	return slices.Contains(c.protos, proto), c.idKnown
}

// failed files a failed exchange on row: a refusal (na) is judged by
// whether the peer advertised proto.
func (c *column) failed(row, proto, why string, err error, took time.Duration) {
	if errors.Is(err, wire.ErrNotSupported) {
		switch adv, known := c.advertised(proto); {
		case adv:
			c.set(row, Fail, "advertised in identify but refused (na)", "", took)
		case known:
			c.set(row, NA, "not advertised, and refused (na)", "", took)
		default:
			c.set(row, Fail, "refused (na)", "", took)
		}
		return
	}
	c.set(row, Fail, why, "", took)
}

// checkIdentify asks the peer for identify and checks each field.
func (c *column) checkIdentify(ctx context.Context) {
	var m *identify.Message
	took, why, err := c.within(ctx, func(ctx context.Context) error {
		s, err := c.open(ctx, identify.ID)
		if err != nil {
			return err
		}
		defer s.Close()
		m, err = identify.ReadMessage(s)
		return err
	})
	if err != nil {
		if errors.Is(err, wire.ErrNotSupported) {
			why = "refused " + identify.ID + " (na)"
		}
		c.set("id-message", Fail, why, "", took)
		for _, row := range []string{"id-key", "id-agent", "id-protocols", "id-listen", "id-observed", "id-record"} {
			c.set(row, NotChecked, noMessage, "", 0)
		}
		return
	}
	c.protos, c.idKnown = m.Protocols, true
	c.set("id-message", Pass, "", fmt.Sprintf("%d bytes", len(m.Append(nil))), took)

	switch pub, err := peer.UnmarshalPublicKey(m.PublicKey); {
	case len(m.PublicKey) == 0:
		c.set("id-key", NotChecked, "the peer sent no public key", "", 0)
	case err != nil:
		c.set("id-key", Fail, "the public key does not parse: "+oneLine(err), "", 0)
	case !c.r.id.MatchesPublicKey(pub):
		c.set("id-key", Fail, fmt.Sprintf("the public key is %s's, not the peer's", peer.IDFromPublicKey(pub)), "", 0)
	default:
		c.set("id-key", Pass, "", pub.Type().String()+" key of "+c.r.id.String(), 0)
	}

	if m.AgentVersion == "" {
		c.set("id-agent", NotChecked, "the peer sent no agent version", "", 0)
	} else {
		c.r.versions[m.AgentVersion] = true
		c.set("id-agent", Pass, "", m.AgentVersion, 0)
	}

	bad := slices.IndexFunc(m.Protocols, func(p string) bool { return p == "" || len(p) > identify.MaxProtocolLen })
	switch {
	case len(m.Protocols) == 0:
		c.set("id-protocols", Fail, "lists no protocol (it serves identify at least)", "", 0)
	case bad >= 0:
		c.set("id-protocols", Fail, fmt.Sprintf("protocol %d is empty or over %d bytes", bad+1, identify.MaxProtocolLen), "", 0)
	default:
		c.set("id-protocols", Pass, "", strings.Join(m.Protocols, " "), 0)
	}

	var listen []string
	var listenErr error
	for i, b := range m.ListenAddrs {
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			listenErr = fmt.Errorf("listen address %d does not parse: %w", i+1, err)
			break
		}
		listen = append(listen, a.String())
	}
	switch {
	case listenErr != nil:
		c.set("id-listen", Fail, oneLine(listenErr), "", 0)
	case len(listen) == 0:
		c.set("id-listen", Pass, "", "none (a peer that does not listen)", 0)
	default:
		c.set("id-listen", Pass, "", strings.Join(listen, " "), 0)
	}

	c.checkObserved(m.ObservedAddr)

	switch rec, _, err := peer.OpenPeerRecord(m.SignedPeerRecord); {
	case len(m.SignedPeerRecord) == 0:
		c.set("id-record", NotChecked, "the peer sent no signed peer record", "", 0)
	case err != nil:
		c.set("id-record", Fail, "the signed peer record does not open: "+oneLine(err), "", 0)
	case rec.ID != c.r.id:
		c.set("id-record", Fail, fmt.Sprintf("the signed peer record is %s's (signed with its key), not the peer's", rec.ID), "", 0)
	default:
		addrs := make([]string, len(rec.Addrs))
		for i, a := range rec.Addrs {
			addrs[i] = a.String()
		}
		c.set("id-record", Pass, "", fmt.Sprintf("seq %d: %s", rec.Seq, strings.Join(addrs, " ")), 0)
	}
}

// checkObserved checks that the peer saw us where we are, unless a NAT
// may be between us.
func (c *column) checkObserved(b []byte) {
	if len(b) == 0 {
		c.set("id-observed", NotChecked, "the peer sent no observed address", "", 0)
		return
	}
	a, err := ma.NewMultiaddrBytes(b)
	var id peer.ID
	if err == nil {
		// js-libp2p appends /p2p/<the observed peer>.
		a, id, err = peer.SplitP2P(a)
	}
	switch {
	case err != nil:
		c.set("id-observed", Fail, "the observed address does not parse: "+oneLine(err), "", 0)
		return
	case id != "" && id != c.n.ID():
		c.set("id-observed", Fail, fmt.Sprintf("the observed address names %s, not mote (%s)", id, c.n.ID()), "", 0)
		return
	}
	local := c.local
	// A socket bound to 0.0.0.0 is seen at a real address: compare the
	// rest.
	if len(local) > 1 && len(a) == len(local) && ma.IsIPUnspecified(local) && local[1:].Equal(a[1:]) {
		local = a
	}
	switch {
	case a.Equal(local):
		c.set("id-observed", Pass, "", a.String(), 0)
	case ma.IsIPLoopback(local):
		c.set("id-observed", Fail, fmt.Sprintf("observed %s, but mote is at %s (loopback: no NAT between)", a, local), "", 0)
	default:
		c.set("id-observed", Pass, "", fmt.Sprintf("%s (mote is at %s: a NAT between?)", a, local), 0)
	}
}

func (c *column) checkPing(ctx context.Context) {
	var rtts []string
	took, why, err := c.within(ctx, func(ctx context.Context) error {
		s, err := c.open(ctx, ping.ID)
		if err != nil {
			return err
		}
		defer s.Close()
		for range 3 {
			rtt, err := ping.Once(s, nil)
			if err != nil {
				s.Reset()
				return err
			}
			rtts = append(rtts, rtt.Round(time.Microsecond).String())
		}
		return nil
	})
	if err != nil {
		c.failed("ping", ping.ID, why, err, took)
		return
	}
	c.set("ping", Pass, "", "rtt "+strings.Join(rtts, " "), took)
}

func (c *column) checkPerf(ctx context.Context) {
	switch adv, known := c.advertised(perf.ID); {
	case !known:
		c.set("perf", NotChecked, noMessage, "", 0)
		return
	case !adv:
		c.set("perf", NA, "not advertised", "", 0)
		return
	}
	var res perf.Result
	size := c.r.o.PerfBytes
	took, why, err := c.within(ctx, func(ctx context.Context) error {
		s, err := c.open(ctx, perf.ID)
		if err != nil {
			return err
		}
		res, err = perf.Run(ctx, s, size, size)
		return err
	})
	if err != nil {
		c.failed("perf", perf.ID, why, err, took)
		return
	}
	c.set("perf", Pass, "", fmt.Sprintf("%d bytes each way: up %.0f Mbit/s, down %.0f Mbit/s", size, res.UploadMbps(), res.DownloadMbps()), took)
}

// ours is what mote tells the peer in identify on this connection.
func (c *column) ours() (agent string, protos []string, addrs []ma.Multiaddr) {
	if c.srv != nil {
		info := c.srv.info.Load()
		return info.AgentVersion, info.Protocols, info.ListenAddrs
	}
	return "mote/" + node.Version, c.n.Protocols(), c.n.Addrs()
}

// rawInfo is what mote says about itself on a connection it dialed.
func (c *column) rawInfo() (*identify.Info, error) {
	addrs := c.n.Addrs()
	rec, err := peer.SealPeerRecord(c.n.Key(), &peer.PeerRecord{ID: c.n.ID(), Seq: uint64(time.Now().UnixNano()), Addrs: addrs})
	if err != nil {
		return nil, err
	}
	return &identify.Info{Key: c.n.Key(), ListenAddrs: addrs, Protocols: served, AgentVersion: "mote/" + node.Version, SignedRecord: rec}, nil
}

// checkServed: the peer asked for mote's identify and got it right
// (Kubo: ipfs id), and pinged mote (ipfs ping).
func (c *column) checkServed(ctx context.Context) {
	p, name := c.r.peer, c.r.name
	if p == nil {
		t := time.NewTimer(c.r.o.PeerWait)
		select {
		case <-c.srv.asked1:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		asked, pinged, askErr := c.srv.counts()
		switch {
		case asked > 0:
			c.set("id-served", Pass, "", "the peer asked and read mote's answer; what it kept is seen only from its side", 0)
		case askErr != nil:
			c.set("id-served", Fail, "mote's answer did not get through: "+oneLine(askErr), "", 0)
		default:
			c.set("id-served", NotChecked, "the peer did not ask for identify", "", 0)
		}
		if pinged > 0 {
			c.set("ping-served", Pass, "", fmt.Sprintf("the peer pinged mote (%d streams)", pinged), 0)
		} else {
			c.set("ping-served", NotChecked, "needs the peer to ping mote: run against a Kubo the runner drives (--kubo)", "", 0)
		}
		return
	}

	moteID := c.n.ID().String()
	var info IDInfo
	took, why, err := c.within(ctx, func(ctx context.Context) error {
		return poll(ctx, func() (bool, error) {
			i, err := p.IDOf(ctx, moteID)
			info = i
			return err == nil && i.AgentVersion != "", err
		})
	})
	agent, protos, addrs := c.ours()
	var missing []string
	for _, a := range addrs {
		if !slices.ContainsFunc(info.Addresses, func(s string) bool { return strings.HasPrefix(s, a.String()+"/") || s == a.String() }) {
			missing = append(missing, a.String())
		}
	}
	lacks := slices.DeleteFunc(slices.Clone(protos), func(p string) bool { return slices.Contains(info.Protocols, p) })
	switch {
	case err != nil:
		c.set("id-served", Fail, fmt.Sprintf("what %s learned of mote: %s", name, why), "", took)
	case info.AgentVersion != agent:
		c.set("id-served", Fail, fmt.Sprintf("%s shows agent %q, mote sent %q", name, info.AgentVersion, agent), "", took)
	case len(lacks) > 0:
		c.set("id-served", Fail, name+" lacks protocols "+strings.Join(lacks, " "), "", took)
	case len(missing) > 0:
		c.set("id-served", Fail, name+" lacks addresses "+strings.Join(missing, " "), "", took)
	default:
		c.set("id-served", Pass, "", fmt.Sprintf("%s learned: %s, %s; %s", name, info.AgentVersion, strings.Join(info.Protocols, " "), strings.Join(info.Addresses, " ")), took)
	}

	var rtts []time.Duration
	took, why, err = c.within(ctx, func(ctx context.Context) (err error) {
		rtts, err = p.Ping(ctx, moteID, 1)
		if err == nil && len(rtts) == 0 {
			err = errors.New("no pong")
		}
		return err
	})
	if err != nil {
		c.set("ping-served", Fail, name+" pinging mote: "+why, "", took)
	} else {
		c.set("ping-served", Pass, "", name+" pinged mote: rtt "+rtts[0].Round(time.Microsecond).String(), took)
	}
}

// checkPushSent: mote starts serving a new protocol and pushes; the peer
// must learn it.
func (c *column) checkPushSent(ctx context.Context) {
	if adv, known := c.advertised(identify.PushID); known && !adv {
		c.set("push-sent", NA, "the peer does not advertise identify push", "", 0)
		return
	}
	start := time.Now()
	if c.srv == nil {
		c.n.SetHandler(pushProto, func(s *node.Stream) { s.Close() })
	} else {
		info := *c.srv.info.Load()
		info.Protocols = append(slices.Clone(info.Protocols), pushProto)
		c.srv.info.Store(&info)
		took, why, err := c.within(ctx, func(ctx context.Context) error {
			s, err := c.open(ctx, identify.PushID)
			if err != nil {
				return err
			}
			return identify.Serve(s, &info, c.remote)
		})
		if err != nil {
			c.failed("push-sent", identify.PushID, why, err, took)
			return
		}
	}
	p := c.r.peer
	if p == nil {
		c.set("push-sent", NotChecked, "pushed, and the peer took it; what it kept is seen only from its side (--kubo)", "", time.Since(start))
		return
	}
	moteID := c.n.ID().String()
	_, why, err := c.within(ctx, func(ctx context.Context) error {
		return poll(ctx, func() (bool, error) {
			info, err := p.IDOf(ctx, moteID)
			return err == nil && slices.Contains(info.Protocols, pushProto), err
		})
	})
	if err != nil {
		c.set("push-sent", Fail, c.r.name+" never listed "+pushProto+" after the push: "+why, "", time.Since(start))
		return
	}
	c.set("push-sent", Pass, "", c.r.name+" lists "+pushProto+" after the push", time.Since(start))
}

// checkPushReceived: a push from the peer reaches mote. The peer was
// asked for one at asked (Peer.TriggerPush).
func (c *column) checkPushReceived(ctx context.Context, asked time.Time, push Push, askErr error) {
	if c.r.peer == nil {
		switch n, err := c.pushes.state(); {
		case n > 0:
			c.set("push-received", Pass, "", fmt.Sprintf("the peer pushed %d times", n), 0)
		case err != nil:
			c.set("push-received", Fail, "the peer's push does not verify: "+oneLine(err), "", 0)
		default:
			c.set("push-received", NotChecked, "the peer pushed nothing: peers push when their protocols or addresses change, which only the peer can make happen (--kubo)", "", 0)
		}
		return
	}
	if askErr != nil {
		c.set("push-received", NotChecked, "could not ask "+c.r.name+" for a push: "+oneLine(askErr), "", 0)
		return
	}
	wctx, cancel := context.WithDeadline(ctx, asked.Add(c.r.o.PeerWait))
	got := c.pushes.waitFor(wctx, push.Proto)
	cancel()
	took := time.Since(asked)
	_, err := c.pushes.state()
	none := fmt.Sprintf("%s sent no push within %g s of `%s`", c.r.name, c.r.o.PeerWait.Seconds(), push.How)
	switch {
	case got:
		c.set("push-received", Pass, "", fmt.Sprintf("after `%s`, %s pushed %s", push.How, c.r.name, push.Proto), took)
	case err != nil:
		c.set("push-received", Fail, "the peer's push does not verify: "+oneLine(err), "", took)
	case push.Unsure != "":
		c.set("push-received", NotChecked, none+": "+push.Unsure, "", took)
	default:
		c.set("push-received", Fail, none, "", took)
	}
}

// poll calls cond every 100 ms until it holds or ctx ends; the error is
// cond's last, or ctx's.
func poll(ctx context.Context, cond func() (bool, error)) error {
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if err != nil {
				return fmt.Errorf("%w (%w)", err, ctx.Err())
			}
			return ctx.Err()
		}
	}
}
