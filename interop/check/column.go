package check

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/secure"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/wire"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// pushProto is the protocol mote adds to push to the peer.
const pushProto = "/mote-interop/push/1.0.0"

const noMessage = "no identify message (see identify: message)"

// column runs the checks of one column, from a mote node of its own.
type column struct {
	r     *runner
	col   Column
	cells map[string]Cell
	n     *node.Node
	tcp   transport.Transport // the node's transports, for dialing
	quic  transport.Transport // outside it; nil without QUIC

	// The connection under test.
	open   func(ctx context.Context, proto string) (transport.Stream, error)
	local  ma.Multiaddr // our end
	remote ma.Multiaddr // the peer's end
	state  transport.ConnState
	srv    *server  // on a connection mote dialed
	pushes *pushLog // the peer's pushes

	protos  []string // the peer's, from identify
	idKnown bool     // protos came from identify

	// In columns with a DHTPeer: the node's DHTs, what they hold for
	// the peer to find, and the node that asks them what they hold.
	dht    *kademlia.Dual
	dhtErr error
	seeds  kadSeeds
	probe  *node.Node
}

func (r *runner) runColumn(ctx context.Context, col Column) {
	c := &column{r: r, col: col, cells: map[string]Cell{}}
	status, reason := c.run(ctx)
	if reason == "" {
		reason = "not run" // every row is set when run gets through
	}
	for _, row := range rows {
		cell, ok := c.cells[row.ID]
		if !ok {
			cell = Cell{Row: row.ID, Column: col.Name, Status: status, Reason: reason}
			r.progress(cell)
		}
		r.m.Cells = append(r.m.Cells, cell)
	}
}

// set files the outcome of a row.
func (c *column) set(row string, s Status, reason, detail string, took time.Duration) {
	cell := Cell{Row: row, Column: c.col.Name, Status: s, Reason: reason, Detail: detail, Took: took}
	c.cells[row] = cell
	c.r.progress(cell)
}

// within runs f under the time limit of one check.
func (c *column) within(ctx context.Context, f func(context.Context) error) (took time.Duration, why string, err error) {
	cctx, cancel := context.WithTimeout(ctx, c.r.o.Timeout)
	defer cancel()
	start := time.Now()
	err = f(cctx)
	if err != nil {
		why = c.r.why(cctx, err)
	}
	return time.Since(start), why, err
}

// run makes the connection and runs the checks on it; the outcome it
// returns is for the rows it did not get to.
func (c *column) run(ctx context.Context) (Status, string) {
	if err := c.newNode(); err != nil {
		return NotChecked, "cannot start mote: " + oneLine(err)
	}
	defer c.n.Close()
	tr := c.tcp
	if c.col.Transport == "quic-v1" {
		tr = c.quic
	}
	if tr == nil {
		return NA, "this mote was built without QUIC (noquic)"
	}
	if c.col.Dialer == "mote" {
		return c.runOut(ctx, tr)
	}
	return c.runIn(ctx)
}

// newNode starts the column's node, with only the column's security
// protocol, listening on loopback when the peer is to dial it.
func (c *column) newNode() error {
	capture := func(mk node.TransportMaker, into *transport.Transport) node.TransportMaker {
		return func(env node.TransportEnv) (transport.Transport, error) {
			t, err := mk(env)
			*into = t
			return t, err
		}
	}
	cfg := node.Config{Transports: []node.TransportMaker{capture(node.QUIC(), &c.quic), capture(node.TCP(), &c.tcp)}}
	if c.col.Security != "" {
		cfg.Security = []string{c.col.Security}
	}
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	if c.r.peer != nil {
		ls := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
		if c.quic != nil {
			ls = append(ls, ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"))
		}
		if err := n.Listen(ls...); err != nil {
			n.Close()
			return err
		}
	}
	c.n = n
	return nil
}

// runOut: mote dials the peer, on a connection of its own outside the
// node, so that a peer failing a check (a bad signed record, which makes
// the node hang up) is still there for the others.
func (c *column) runOut(ctx context.Context, tr transport.Transport) (Status, string) {
	addr := c.r.addrs[c.col.Transport]
	if addr == nil {
		return NA, "the peer has no " + c.col.Transport + " address"
	}
	var tc transport.Conn
	took, why, err := c.within(ctx, func(ctx context.Context) (err error) {
		tc, err = tr.Dial(ctx, addr, c.r.id)
		return err
	})
	var mm *secure.PeerMismatchError
	switch {
	case errors.Is(err, wire.ErrNotSupported):
		return NA, "the peer does not offer " + c.col.Security
	case errors.As(err, &mm):
		c.set("handshake", Fail, fmt.Sprintf("the peer at %s is %s, not %s", addr, mm.Actual, c.r.id), "", took)
		return NotChecked, "no connection: the handshake failed"
	case err != nil:
		c.set("handshake", Fail, why, "", took)
		return NotChecked, "no connection: the handshake failed"
	}
	c.state, c.local, c.remote = tc.State(), tc.LocalMultiaddr(), tc.RemoteMultiaddr()
	c.checkState(took)
	info, err := c.rawInfo()
	if err != nil {
		tc.Close()
		return NotChecked, "cannot sign mote's peer record: " + oneLine(err)
	}
	c.srv = newServer(tc, info, c.r.o.Timeout)
	c.srv.start()
	defer func() {
		tc.Close()
		c.srv.wait()
	}()
	c.pushes = &c.srv.pushes
	c.open = func(ctx context.Context, proto string) (transport.Stream, error) {
		s, err := tc.OpenStream(ctx)
		if err != nil {
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok {
			s.SetDeadline(dl)
		}
		if err := wire.SelectOne(s, proto); err != nil {
			s.Reset()
			return nil, err
		}
		return s, nil
	}

	took, why, err = c.within(ctx, func(ctx context.Context) error {
		other, err := tr.Dial(ctx, addr, c.r.o.wrongID)
		if err == nil {
			other.Close()
		}
		return err
	})
	switch {
	case err == nil:
		c.set("wrong-id", Fail, "a dial for another peer ID ("+c.r.o.wrongID.String()+") succeeded", "", took)
	case errors.As(err, &mm):
		c.set("wrong-id", Pass, "", oneLine(err), took)
	default:
		c.set("wrong-id", NotChecked, "the dial failed before the peer's identity was checked: "+why, "", took)
	}
	c.checkConn(ctx)
	return NotChecked, ""
}

// runIn: the peer dials mote (Kubo: `ipfs swarm connect`).
func (c *column) runIn(ctx context.Context) (Status, string) {
	p := c.r.peer
	var listen ma.Multiaddr
	for _, a := range c.n.Addrs() {
		if transportOf(a) == c.col.Transport {
			listen = a
			break
		}
	}
	if listen == nil {
		return NotChecked, "mote listens on no " + c.col.Transport + " address"
	}
	target := listen.String() + "/p2p/"
	c.startDHT(ctx)
	defer func() {
		if c.probe != nil {
			c.probe.Close()
		}
		if c.dht != nil {
			c.dht.Close()
		}
	}()
	conns := make(chan *node.Conn, 4)
	c.pushes = &pushLog{}
	remove := c.n.AddHooks(node.Hooks{
		ConnOpened: func(nc *node.Conn) {
			select {
			case conns <- nc:
			default:
			}
		},
		ProtocolsChanged: func(_ *node.Conn, protos []string) { c.pushes.add(protos, nil) },
	})
	defer remove()
	var nc *node.Conn
	took, why, err := c.within(ctx, func(ctx context.Context) error {
		if err := p.SwarmConnect(ctx, target+c.n.ID().String()); err != nil {
			return err
		}
		select {
		case nc = <-conns:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%s connected, but mote saw no connection: %w", c.r.name, ctx.Err())
		}
	})
	if err != nil {
		s := err.Error()
		switch {
		case strings.Contains(s, "protocols not supported"):
			return NA, "the peer does not offer " + c.col.Security
		case c.r.addrs[c.col.Transport] == nil:
			return NA, "the peer has no " + c.col.Transport + " address, and its dial failed: " + why
		}
		c.set("handshake", Fail, why, "", took)
		return NotChecked, "no connection: the handshake failed"
	}
	c.state, c.local, c.remote = nc.State(), nc.LocalMultiaddr(), nc.RemoteMultiaddr()
	c.checkState(took)
	c.open = func(ctx context.Context, proto string) (transport.Stream, error) {
		s, err := c.n.NewStreamOn(ctx, nc, proto)
		if err != nil {
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok {
			s.SetDeadline(dl)
		}
		return s, nil
	}

	took, why, err = c.within(ctx, func(ctx context.Context) error {
		return p.SwarmConnect(ctx, target+c.r.o.wrongID.String())
	})
	switch {
	case err == nil:
		c.set("wrong-id", Fail, "a dial for another peer ID ("+c.r.o.wrongID.String()+") succeeded", "", took)
	case strings.Contains(strings.ToLower(err.Error()), "peer id mismatch"):
		c.set("wrong-id", Pass, "", c.r.name+": peer id mismatch", took)
	default:
		c.set("wrong-id", NotChecked, "the dial failed before the peer's identity was checked: "+why, "", took)
	}
	c.checkConn(ctx)
	return NotChecked, ""
}

// checkState checks the handshake's outcome.
func (c *column) checkState(took time.Duration) {
	st := c.state
	detail := st.Transport + ", " + st.Security
	if st.Muxer != "" {
		detail += ", " + st.Muxer
	}
	if c.col.Transport == "tcp" && st.Security != c.col.Security {
		c.set("handshake", Fail, fmt.Sprintf("agreed %s, when mote offered only %s", st.Security, c.col.Security), detail, took)
		return
	}
	c.set("handshake", Pass, "", detail, took)
}

// checkConn runs the checks on an open connection.
func (c *column) checkConn(ctx context.Context) {
	c.checkMuxer()
	c.checkIdentify(ctx)
	var push Push
	var asked time.Time
	var askErr error
	if p := c.r.peer; p != nil {
		// Ask the peer for a push now: waiting for it overlaps the rest.
		// Not before identify: a peer that changes its protocols while
		// it answers mote's identify request has no push left to send.
		asked = time.Now()
		_, _, askErr = c.within(ctx, func(ctx context.Context) (err error) {
			push, err = p.TriggerPush(ctx)
			return err
		})
		if askErr == nil && push.Undo != nil {
			defer c.within(ctx, push.Undo)
		}
	}
	c.checkPing(ctx)
	c.checkPerf(ctx)
	c.checkServed(ctx)
	c.checkPushSent(ctx)
	c.checkPushReceived(ctx, asked, push, askErr)
	c.checkKad(ctx)
	c.checkKadServed(ctx)
}
