// Package check tests a libp2p peer protocol by protocol, from the
// outside, and reports a matrix: one row per check, one column per
// transport and direction, each cell pass, FAIL (with the reason), not
// checked (with why) or n/a.
//
// Run dials the peer's addresses over TCP with Noise, TCP with TLS and
// QUIC-v1, from a fresh mote identity per column, and checks the
// handshake (and that a dial for another peer ID at the same address
// fails), the muxer, identify field by field, ping, perf when the peer
// advertises it, identify push, and each request of the Kademlia DHT
// when the peer advertises it. With a peer the runner drives
// (Target.Peer: a Kubo from StartKubo, or anything implementing Peer) it
// also checks the other direction, the peer dialing mote, and the checks
// that need the peer's cooperation: what the peer learned from mote's
// identify and push (Kubo: `ipfs id`), the peer pinging mote (`ipfs
// ping`), a push from the peer (`ipfs p2p listen`), and, with a
// DHTPeer, the peer's DHT requests to mote (`ipfs routing`). A check
// that needs the peer's cooperation and cannot get it is not checked,
// never passed. Every check has a time limit (Options.Timeout): a hung
// peer gives "timed out after N s", never a hung runner.
//
// The mote command's `interop` subcommand and the interop tests use it.
package check

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// Target is the peer to check.
type Target struct {
	// Addrs are the peer's addresses, each ending in /p2p/<id> of the same
	// peer; the first TCP and the first QUIC-v1 address are dialed.
	// Default: Peer's addresses.
	Addrs []string
	// Peer, if set, is the peer, driven by the runner: the checks of the
	// direction in which the peer dials mote, and those that need the
	// peer's side, run too.
	Peer Peer
}

// Peer is a peer the runner drives, for the checks that need its side.
// *Kubo is one (through its CLI); bench's matrix test drives a go-libp2p
// host in-process. Each method is called under the time limit of a check.
// A Peer that is also a DHTPeer is made to query mote's DHT.
type Peer interface {
	// Info names the peer for the matrix.
	Info(ctx context.Context) PeerInfo
	// Addrs are the peer's addresses, each ending in /p2p/<id>.
	Addrs() []string
	// SwarmConnect makes the peer dial addr: mote's, ending in
	// /p2p/<id>. Its error keeps go-libp2p's words where they say why:
	// "protocols not supported" (no security protocol in common), "peer
	// id mismatch".
	SwarmConnect(ctx context.Context, addr string) error
	// IDOf is what the peer learned of the peer id (mote) from identify
	// and push.
	IDOf(ctx context.Context, id string) (IDInfo, error)
	// Ping makes the peer ping id n times and returns the RTTs.
	Ping(ctx context.Context, id string, n int) ([]time.Duration, error)
	// TriggerPush makes the peer change its protocols, so that it pushes
	// identify to the peers it is connected to.
	TriggerPush(ctx context.Context) (Push, error)
}

// Push is how a peer was made to push identify (Peer.TriggerPush).
type Push struct {
	Proto string // the protocol the peer added: its push must list it
	How   string // what was done, for the matrix: "ipfs p2p listen /x/mote-interop-push"
	// Unsure, if set, says why the push may not come: no push is then
	// not checked, with this reason, rather than FAIL.
	Unsure string
	// Undo, if set, takes Proto away again; Run calls it when the column
	// is done.
	Undo func(context.Context) error
}

// IDInfo is what a peer knows of another: the JSON of `ipfs id
// --enc=json`.
type IDInfo struct {
	ID           string   `json:"ID"`
	PublicKey    string   `json:"PublicKey"`
	Addresses    []string `json:"Addresses"`
	AgentVersion string   `json:"AgentVersion"`
	Protocols    []string `json:"Protocols"`
}

// Options tune Run. The zero value is usable.
type Options struct {
	// Timeout bounds each check, and each wait for what the peer's DHT
	// does in the background (taking mote into its routing table,
	// announcing a provider record). Default 10 s.
	Timeout time.Duration
	// PerfBytes is sent each way by the perf check. Default 1 MiB.
	PerfBytes uint64
	// PeerWait is how long to wait for what the peer does by itself or
	// was asked for: its identify request, a push. Default 2 s.
	PeerWait time.Duration
	// Progress, if set, is called as each check finishes.
	Progress func(Progress)

	wrongID peer.ID // tests: the "wrong" peer ID to dial
}

// Progress tells which check just finished.
type Progress struct {
	Column, Row string // names, as in the matrix
	Done, Total int
	Elapsed     time.Duration // since Run started
}

// The rows of the matrix, in order.
var rows = []Row{
	{"handshake", "handshake", "security and peer ID", "connections/README.md, noise/README.md, tls/tls.md, quic/README.md"},
	{"wrong-id", "handshake", "dial for another peer ID fails", "noise/README.md, tls/tls.md (peer authentication)"},
	{"muxer", "muxer", "yamux", "yamux/README.md, connections/README.md"},
	{"early-muxer", "muxer", "agreed in the handshake", "connections/inlined-muxer-negotiation.md"},
	{"id-message", "identify", "message (framing, size)", "identify/README.md (8 KiB per message, as go-libp2p)"},
	{"id-key", "identify", "public key", "identify/README.md, peer-ids/peer-ids.md"},
	{"id-agent", "identify", "agent version", "identify/README.md"},
	{"id-protocols", "identify", "protocols", "identify/README.md"},
	{"id-listen", "identify", "listen addrs", "identify/README.md"},
	{"id-observed", "identify", "observed addr", "identify/README.md"},
	{"id-record", "identify", "signed peer record", "RFC/0002-signed-envelopes.md, RFC/0003-routing-records.md"},
	{"id-served", "identify", "peer asks mote", "identify/README.md"},
	{"push-sent", "identify push", "mote pushes to peer", "identify/README.md (identify/push)"},
	{"push-received", "identify push", "peer pushes to mote", "identify/README.md (identify/push)"},
	{"ping", "ping", "mote pings peer", "ping/ping.md"},
	{"ping-served", "ping", "peer pings mote", "ping/ping.md"},
	{"perf", "perf", "mote asks peer", "perf/perf.md"},
	{"kad-find-node", "kad", "FIND_NODE: mote asks", "kad-dht/README.md"},
	{"kad-put-value", "kad", "PUT_VALUE: mote asks", "kad-dht/README.md"},
	{"kad-get-value", "kad", "GET_VALUE: mote asks", "kad-dht/README.md"},
	{"kad-add-provider", "kad", "ADD_PROVIDER: mote asks", "kad-dht/README.md"},
	{"kad-get-providers", "kad", "GET_PROVIDERS: mote asks", "kad-dht/README.md"},
	{"kad-find-node-served", "kad", "FIND_NODE: peer asks mote", "kad-dht/README.md"},
	{"kad-put-value-served", "kad", "PUT_VALUE: peer asks mote", "kad-dht/README.md"},
	{"kad-get-value-served", "kad", "GET_VALUE: peer asks mote", "kad-dht/README.md"},
	{"kad-add-provider-served", "kad", "ADD_PROVIDER: peer asks mote", "kad-dht/README.md"},
	{"kad-get-providers-served", "kad", "GET_PROVIDERS: peer asks mote", "kad-dht/README.md"},
}

func (o *Options) setDefaults() {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.PerfBytes == 0 {
		o.PerfBytes = 1 << 20
	}
	if o.PeerWait <= 0 {
		o.PeerWait = 2 * time.Second
	}
}

// runner holds what the columns share.
type runner struct {
	o        Options
	peer     Peer
	name     string // the peer's, in reasons: PeerInfo.Name
	id       peer.ID
	addrs    map[string]ma.Multiaddr // by transport: "tcp", "quic-v1"
	m        *Matrix
	start    time.Time
	done     int
	versions map[string]bool
}

// Run checks the target, one column after the other, and returns the
// matrix. Its error is for a target it cannot start on (no address, an
// address for another peer); a failed check is a cell.
func Run(ctx context.Context, t Target, o Options) (*Matrix, error) {
	o.setDefaults()
	addrs := t.Addrs
	if len(addrs) == 0 && t.Peer != nil {
		addrs = t.Peer.Addrs()
	}
	r := &runner{o: o, peer: t.Peer, addrs: map[string]ma.Multiaddr{}, start: time.Now(), versions: map[string]bool{}}
	if err := r.parseAddrs(addrs); err != nil {
		return nil, err
	}
	if r.o.wrongID == "" {
		key, err := peer.GenerateEd25519(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		r.o.wrongID = peer.IDFromPublicKey(key.Public())
	}
	r.m = &Matrix{Peer: r.id.String(), Addrs: addrs, Mote: "mote/" + node.Version, Started: r.start.UTC(), Rows: rows}
	if t.Peer != nil {
		info := t.Peer.Info(ctx)
		r.m.Driven, r.name = &info, info.Name
	}
	for _, sec := range []string{"/noise", "/tls/1.0.0", ""} {
		tr, name := "tcp", "tcp+"+strings.TrimPrefix(strings.TrimSuffix(sec, "/1.0.0"), "/")
		if sec == "" {
			tr, name = "quic-v1", "quic-v1"
		}
		r.m.Columns = append(r.m.Columns, Column{Name: name + " out", Transport: tr, Security: sec, Dialer: "mote"})
		if t.Peer != nil {
			r.m.Columns = append(r.m.Columns, Column{Name: name + " in", Transport: tr, Security: sec, Dialer: "peer"})
		}
	}
	r.m.Cells = make([]Cell, 0, len(rows)*len(r.m.Columns))
	for _, col := range r.m.Columns {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		r.runColumn(ctx, col)
	}
	for v := range r.versions {
		r.m.Versions = append(r.m.Versions, v)
	}
	slices.Sort(r.m.Versions)
	r.m.Took = time.Since(r.start)
	return r.m, nil
}

// parseAddrs takes the peer ID and one address per transport.
func (r *runner) parseAddrs(addrs []string) error {
	if len(addrs) == 0 {
		return errors.New("check: no address to check (want MULTIADDR/p2p/<id>)")
	}
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("check: address %q: %w", s, err)
		}
		a, id, err := peer.SplitP2P(a)
		if err != nil {
			return fmt.Errorf("check: %w", err)
		}
		switch {
		case id == "":
			return fmt.Errorf("check: address %s has no /p2p/<id>", s)
		case r.id != "" && id != r.id:
			return fmt.Errorf("check: addresses of two peers: %s and %s", r.id, id)
		}
		r.id = id
		if tr := transportOf(a); tr != "" && r.addrs[tr] == nil {
			r.addrs[tr] = a
		}
	}
	return nil
}

// transportOf is "tcp" for /ip4|ip6/…/tcp/N, "quic-v1" for
// /ip4|ip6/…/udp/N/quic-v1, else "".
func transportOf(a ma.Multiaddr) string {
	if len(a) < 2 || (a[0].Code() != ma.P_IP4 && a[0].Code() != ma.P_IP6) {
		return ""
	}
	switch {
	case len(a) == 2 && a[1].Code() == ma.P_TCP:
		return "tcp"
	case len(a) == 3 && a[1].Code() == ma.P_UDP && a[2].Code() == ma.P_QUIC_V1:
		return "quic-v1"
	}
	return ""
}

// progress reports a finished cell.
func (r *runner) progress(c Cell) {
	r.done++
	if r.o.Progress != nil {
		r.o.Progress(Progress{Column: c.Column, Row: rowName(c.Row), Done: r.done, Total: len(rows) * len(r.m.Columns), Elapsed: time.Since(r.start)})
	}
}

func rowName(id string) string {
	for _, row := range rows {
		if row.ID == id {
			return row.Protocol + ": " + row.Check
		}
	}
	return id
}

// why says in one line why err ended a check run under ctx: "timed out
// after N s" when the check's time limit did.
func (r *runner) why(ctx context.Context, err error) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return fmt.Sprintf("timed out after %g s", r.o.Timeout.Seconds())
	}
	return oneLine(err)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// oneLine is the first line of err's text, at most 200 bytes.
func oneLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}
