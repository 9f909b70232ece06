package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/mote-p2p/mote/mux"
	"github.com/mote-p2p/mote/peer"
)

// Limits is what the node itself enforces, in one place. Every limit
// that fires says which one in its error and counts in Counters. The zero
// value of a field takes the value of the server preset. The stores of
// the protocols built on the node (a DHT's records and providers, a
// gossip seen-message cache) belong to those packages' configs; the
// preset table is to size them too, so that one name sizes every part.
type Limits struct {
	// MaxInboundConns bounds connections peers opened to us; more are
	// closed at once.
	MaxInboundConns int
	// MaxOutboundConns bounds connections we opened; dials beyond fail.
	MaxOutboundConns int
	// MaxInboundConnsPerIP bounds the inbound connections from one IPv4
	// address or one IPv6 /64, so that one host cannot take every
	// inbound slot with fresh peer IDs. Loopback is exempt unless
	// Config.LimitLoopback is set.
	MaxInboundConnsPerIP int
	// MaxInboundHandshakes bounds the inbound handshakes in progress per
	// listener; MaxHandshakesPerIP those from one IPv4 address or IPv6
	// /64 and MaxHandshakesPerSubnet those from one IPv4 /24 or IPv6 /48
	// (transport.UpgraderConfig). When they are taken, a newcomer
	// displaces the oldest handshake of the busiest group.
	MaxInboundHandshakes   int
	MaxHandshakesPerIP     int
	MaxHandshakesPerSubnet int
	// MaxInboundStreams bounds the streams a peer may have open to us on
	// one connection; more are reset.
	MaxInboundStreams int
	// MaxStreams bounds the inbound streams being served at once, all
	// connections together (each holds a goroutine); MaxStreamsPerProtocol
	// those of one protocol, of which, once half are taken, a connection
	// holding a quarter of it in streams gets no more. More are reset.
	MaxStreams            int
	MaxStreamsPerProtocol int
	// MaxNegotiatingStreams bounds the inbound streams of one connection
	// whose protocol is still being negotiated (at most
	// NegotiationTimeout each) once half of MaxStreams is taken: without
	// it a few connections of silent streams would hold all of
	// MaxStreams, and every other peer's identify and ping would be
	// refused. Below half, bursts pass. The presets keep
	// MaxInboundConns × MaxNegotiatingStreams at most half of MaxStreams.
	MaxNegotiatingStreams int
	// MaxStreamMemory is the node-wide budget, in bytes, for data peers
	// sent on streams that we have not read yet: yamux receive buffers,
	// counted in the chunks they hold (2, 16 or 64 KiB, by frame size),
	// beyond each stream's first mux.BudgetFree (16 KiB), and the growth
	// of QUIC connection windows beyond their first (min(768 KiB,
	// QUICConnWindow)). Once it is spent, a yamux stream whose data would
	// exceed it is reset and QUIC windows stop growing. A yamux peer may
	// always send 256 KiB per stream before we read (the window yamux
	// starts with), so this is what stops many streams of unread data
	// from adding up.
	MaxStreamMemory int64
	// StreamWindow is the yamux receive window per stream, in bytes: what
	// a peer may send before we read. At least 256 KiB (yamux's initial
	// window, which both sides assume).
	StreamWindow uint32
	// ConnWindow is how far the yamux windows of one connection's
	// streams may grow, together, beyond their first 256 KiB
	// (mux.Config.MaxSessionRecv). A connection then buffers at most
	// 2 × MaxInboundStreams × 256 KiB + ConnWindow of unread data, where
	// MaxInboundStreams × StreamWindow could be unbounded by it.
	ConnWindow uint64
	// QUICStreamWindow and QUICConnWindow are QUIC's receive windows per
	// stream and per connection, in bytes.
	QUICStreamWindow uint64
	QUICConnWindow   uint64
	// QUICMaxStreams bounds the streams a peer may have open at once on a
	// QUIC connection (QUIC's own flow control enforces it).
	QUICMaxStreams int64
	// MaxPeers bounds the peers in the peerstore; MaxAddrsPerPeer the
	// addresses kept per peer.
	MaxPeers        int
	MaxAddrsPerPeer int
	// MaxAddrBytesPerPeer and MaxAddrBytes bound the peerstore's
	// addresses in memory, per peer and in total, at what a parsed
	// address costs rather than its wire size (peer.StoreConfig), so
	// that peers sending long addresses of many small components cannot
	// make it hold many times what they sent.
	MaxAddrBytesPerPeer int
	MaxAddrBytes        int
	// ConnLowWater and ConnHighWater drive the connection manager: above
	// the high mark, connections are closed, least valuable first, until
	// the low mark is reached. Connections younger than ConnGracePeriod
	// and protected peers are spared.
	ConnLowWater    int
	ConnHighWater   int
	ConnGracePeriod time.Duration
	// IdleTimeout closes a connection with no open stream and no stream
	// opened for this long; negative never closes idle connections.
	IdleTimeout time.Duration
	// KeepAlive is the interval of keepalive pings on idle connections
	// (yamux pings, QUIC PINGs); negative disables them.
	KeepAlive time.Duration
	// RateLimit caps the bytes per second read and written by streams
	// (each direction separately, all peers together); 0 is unlimited.
	RateLimit int64
	// MemoryLimit is the Go runtime's soft memory limit (GOMEMLIMIT) the
	// daemon sets, in bytes; 0 leaves the runtime default.
	MemoryLimit int64
	// GCPercent is the Go runtime's GOGC the daemon sets: how far the
	// heap may grow past what was live at the last collection, in
	// percent, before the next; 0 leaves the runtime's 100. Small
	// presets collect sooner, so that bursts of garbage (a flood of junk
	// packets, each leaving a little) keep RSS closer to what is live.
	GCPercent int
}

// PresetNames lists the named presets, from largest to smallest.
var PresetNames = []string{"server", "mobile", "iot", "low-memory"}

const (
	kib = 1 << 10
	mib = 1 << 20
)

// Preset returns the limits of a named preset.
//
//   - server: a well-connected node with memory to spare.
//   - mobile: a phone-class device, tens of peers.
//   - iot: a small ARM board; keeps the daemon within a few tens of MiB.
//   - low-memory: the least that still interoperates (a handful of peers).
func Preset(name string) (Limits, error) {
	switch name {
	case "server", "":
		return Limits{
			MaxInboundConns: 1024, MaxOutboundConns: 1024, MaxInboundConnsPerIP: 16,
			MaxInboundHandshakes: 64, MaxHandshakesPerIP: 8, MaxHandshakesPerSubnet: 32,
			MaxInboundStreams: 256, MaxStreams: 16384, MaxStreamsPerProtocol: 4096, MaxNegotiatingStreams: 8, MaxStreamMemory: 512 * mib,
			StreamWindow: 4 * mib, ConnWindow: 16 * mib, QUICStreamWindow: 4 * mib, QUICConnWindow: 8 * mib, QUICMaxStreams: 256,
			MaxPeers: 4096, MaxAddrsPerPeer: 64, MaxAddrBytesPerPeer: 16 * kib, MaxAddrBytes: 16 * mib,
			ConnLowWater: 160, ConnHighWater: 192, ConnGracePeriod: 20 * time.Second,
			IdleTimeout: -1, KeepAlive: 30 * time.Second,
		}, nil
	case "mobile":
		return Limits{
			MaxInboundConns: 128, MaxOutboundConns: 128, MaxInboundConnsPerIP: 8,
			MaxInboundHandshakes: 32, MaxHandshakesPerIP: 8, MaxHandshakesPerSubnet: 32,
			MaxInboundStreams: 128, MaxStreams: 2048, MaxStreamsPerProtocol: 512, MaxNegotiatingStreams: 8, MaxStreamMemory: 64 * mib,
			StreamWindow: 1 * mib, ConnWindow: 4 * mib, QUICStreamWindow: 1 * mib, QUICConnWindow: 2 * mib, QUICMaxStreams: 128,
			MaxPeers: 1024, MaxAddrsPerPeer: 32, MaxAddrBytesPerPeer: 16 * kib, MaxAddrBytes: 4 * mib,
			ConnLowWater: 32, ConnHighWater: 96, ConnGracePeriod: 20 * time.Second,
			IdleTimeout: 10 * time.Minute, KeepAlive: 30 * time.Second,
			MemoryLimit: 128 * mib,
		}, nil
	case "iot":
		return Limits{
			MaxInboundConns: 64, MaxOutboundConns: 32, MaxInboundConnsPerIP: 8,
			MaxInboundHandshakes: 16, MaxHandshakesPerIP: 4, MaxHandshakesPerSubnet: 16,
			MaxInboundStreams: 64, MaxStreams: 512, MaxStreamsPerProtocol: 128, MaxNegotiatingStreams: 4, MaxStreamMemory: 8 * mib,
			StreamWindow: 256 * kib, ConnWindow: 512 * kib, QUICStreamWindow: 256 * kib, QUICConnWindow: 256 * kib, QUICMaxStreams: 64,
			MaxPeers: 256, MaxAddrsPerPeer: 16, MaxAddrBytesPerPeer: 8 * kib, MaxAddrBytes: 1 * mib,
			ConnLowWater: 16, ConnHighWater: 48, ConnGracePeriod: 20 * time.Second,
			IdleTimeout: 5 * time.Minute, KeepAlive: 60 * time.Second,
			MemoryLimit: 32 * mib, GCPercent: 50,
		}, nil
	case "low-memory":
		return Limits{
			MaxInboundConns: 16, MaxOutboundConns: 16, MaxInboundConnsPerIP: 4,
			MaxInboundHandshakes: 8, MaxHandshakesPerIP: 2, MaxHandshakesPerSubnet: 8,
			MaxInboundStreams: 32, MaxStreams: 128, MaxStreamsPerProtocol: 32, MaxNegotiatingStreams: 4, MaxStreamMemory: 4 * mib,
			StreamWindow: 256 * kib, ConnWindow: 256 * kib, QUICStreamWindow: 64 * kib, QUICConnWindow: 128 * kib, QUICMaxStreams: 32,
			MaxPeers: 64, MaxAddrsPerPeer: 8, MaxAddrBytesPerPeer: 4 * kib, MaxAddrBytes: 256 * kib,
			ConnLowWater: 4, ConnHighWater: 12, ConnGracePeriod: 10 * time.Second,
			IdleTimeout: 2 * time.Minute, KeepAlive: 60 * time.Second,
			MemoryLimit: 16 * mib, GCPercent: 50,
		}, nil
	}
	return Limits{}, fmt.Errorf("unknown preset %q (have %v)", name, PresetNames)
}

// WithDefaults returns l with every zero field set from the server preset,
// and clamped where a value cannot work (a yamux window below 256 KiB, a
// low watermark above the high one).
func (l Limits) WithDefaults() Limits {
	d, _ := Preset("server")
	d.RateLimit, d.MemoryLimit, d.GCPercent = 0, 0, 0 // 0 is a setting of these: none or the runtime's
	if l.QUICConnWindow == 0 {
		d.QUICConnWindow = max(d.QUICConnWindow, l.QUICStreamWindow)
	}
	l = d.Override(l)
	l.StreamWindow = max(l.StreamWindow, 256*kib)
	l.ConnLowWater = min(l.ConnLowWater, l.ConnHighWater)
	return l
}

// Limit names, as used in errors and Counters.
const (
	LimitInboundConns  = "MaxInboundConns"
	LimitOutboundConns = "MaxOutboundConns"
	LimitStreams       = "MaxInboundStreams"
	LimitConnsPerIP    = "MaxInboundConnsPerIP"
	LimitNodeStreams   = "MaxStreams"
	LimitProtoStreams  = "MaxStreamsPerProtocol"
	LimitNegotiating   = "MaxNegotiatingStreams"
	LimitStreamMemory  = "MaxStreamMemory"
	// LimitQUICHandshakes counts QUIC connections refused for
	// MaxInboundHandshakes or MaxHandshakesPerIP, and CounterQUICRetries
	// the Retries sent to make a source prove its address under load
	// (not a refusal: a client that receives at its address goes on).
	LimitQUICHandshakes = "MaxInboundHandshakes(QUIC)"
	CounterQUICRetries  = "QUICRetries"
	LimitHighWater      = "ConnHighWater"
	LimitIdle           = "IdleTimeout"
	LimitPeers          = "MaxPeers"
	LimitRate           = "RateLimit"
	// LimitPushes is the identify push rate per connection (maxPushes
	// per pushWindow), a fixed bound rather than a preset field.
	LimitPushes = "IdentifyPushRate"
)

// counters counts how often each limit fired.
type counters struct {
	inboundConns, outboundConns, connsPerIP, streams, nodeStreams, protoStreams, negotiating atomic.Uint64
	highWater, idle, peers, rate, pushes                                                     atomic.Uint64
}

// LimitError is a refusal by one of the node's limits.
type LimitError struct {
	Limit string // which limit, e.g. "MaxInboundConns"
	Value int64  // its value
	Where string // what was refused, e.g. "inbound connection from <peer>"
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s refused: limit %s=%d reached", e.Where, e.Limit, e.Value)
}

// ErrLimit is wrapped by every LimitError (errors.Is(err, ErrLimit)).
var ErrLimit = fmt.Errorf("resource limit")

// Is makes errors.Is(err, ErrLimit) hold for every LimitError.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// Counters reports how many times each limit has fired, by limit name.
func (n *Node) Counters() map[string]uint64 {
	c := &n.counters
	m := map[string]uint64{
		LimitInboundConns:  c.inboundConns.Load(),
		LimitOutboundConns: c.outboundConns.Load(),
		LimitStreams:       c.streams.Load() + n.budget.StreamsRefused(),
		LimitConnsPerIP:    c.connsPerIP.Load(),
		LimitNodeStreams:   c.nodeStreams.Load(),
		LimitProtoStreams:  c.protoStreams.Load(),
		LimitNegotiating:   c.negotiating.Load(),
		LimitStreamMemory:  n.budget.Refused(),
		LimitHighWater:     c.highWater.Load(),
		LimitIdle:          c.idle.Load(),
		LimitPeers:         c.peers.Load(),
		LimitRate:          c.rate.Load(),
		LimitPushes:        c.pushes.Load(),
	}
	n.mu.Lock()
	ts := n.transports
	n.mu.Unlock()
	quicCounters(ts, m)
	return m
}

// Usage is how much of the node-wide budget is in use.
type Usage struct {
	// InboundConns and OutboundConns are the open connections.
	InboundConns, OutboundConns int
	// Streams is the inbound streams being served.
	Streams int
	// StreamMemory is the bytes of unread stream data held (and of QUIC
	// receive windows granted beyond their first), of MaxStreamMemory.
	StreamMemory int64
}

// Usage reports how much of the node-wide budget is in use.
func (n *Node) Usage() Usage {
	n.mu.Lock()
	in, out := n.inbound, n.outbound
	n.mu.Unlock()
	return Usage{InboundConns: in, OutboundConns: out, Streams: int(n.streams.Load()), StreamMemory: n.budget.Used()}
}

// Limits returns the node's effective limits.
func (n *Node) Limits() Limits { return n.cfg.Limits }

var durationType = reflect.TypeFor[time.Duration]()

// MarshalJSON writes the fields in order, durations as text ("20s");
// zero fields are left out.
func (l Limits) MarshalJSON() ([]byte, error) {
	v := reflect.ValueOf(l)
	var b bytes.Buffer
	b.WriteByte('{')
	for i := range v.NumField() {
		f := v.Field(i)
		if f.IsZero() {
			continue
		}
		val := f.Interface()
		if f.Type() == durationType {
			val = time.Duration(f.Int()).String()
		}
		enc, err := json.Marshal(val)
		if err != nil {
			return nil, err
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", v.Type().Field(i).Name, enc)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads what MarshalJSON writes. Unknown names are
// ignored, so that a repo written by an older mote (with limits since
// moved to their packages) still loads.
func (l *Limits) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	var out Limits
	v := reflect.ValueOf(&out).Elem()
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		raw, ok := m[name]
		if !ok {
			continue
		}
		f := v.Field(i)
		if f.Type() == durationType {
			var text string
			if err := json.Unmarshal(raw, &text); err != nil {
				return fmt.Errorf("limits: %s: want a duration such as \"20s\": %w", name, err)
			}
			d, err := time.ParseDuration(text)
			if err != nil {
				return fmt.Errorf("limits: %s: %w", name, err)
			}
			f.SetInt(int64(d))
			continue
		}
		if err := json.Unmarshal(raw, f.Addr().Interface()); err != nil {
			return fmt.Errorf("limits: %s: %w", name, err)
		}
	}
	*l = out
	return nil
}

// Override returns l with every non-zero field of o replacing l's.
func (l Limits) Override(o Limits) Limits {
	lv, ov := reflect.ValueOf(&l).Elem(), reflect.ValueOf(o)
	for i := range lv.NumField() {
		if f := ov.Field(i); !f.IsZero() {
			lv.Field(i).Set(f)
		}
	}
	return l
}

// peerstoreFull counts and logs a peer the peerstore had no room for
// (every slot taken by connected peers).
func (n *Node) peerstoreFull(id peer.ID) {
	n.counters.peers.Add(1)
	n.log.Info("peerstore refused a peer", "err", &LimitError{
		Limit: LimitPeers, Value: int64(n.cfg.Limits.MaxPeers), Where: "peerstore entry for " + id.String()})
}

// muxConfig is the yamux configuration for l (defaults applied). The mux
// counts streams of both directions: MaxInboundStreams for the peer's,
// as many again for ours.
func muxConfig(l Limits, b *mux.Budget) mux.Config {
	return mux.Config{
		Budget:            b,
		MaxStreamWindow:   l.StreamWindow,
		MaxSessionRecv:    int(min(l.ConnWindow, math.MaxInt32)),
		MaxStreams:        2 * l.MaxInboundStreams,
		MaxInboundStreams: uint32(l.MaxInboundStreams),
		KeepAlive:         l.KeepAlive,
	}
}

// MaxConnUnread is the most unread data one TCP connection can make the
// node buffer, in bytes, with l's yamux settings (defaults applied).
func (l Limits) MaxConnUnread() int64 { return muxConfig(l.WithDefaults(), nil).MaxUnread() }
