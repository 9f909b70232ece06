package node

import (
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
	// MaxInboundStreams bounds the streams a peer may have open to us on
	// one connection; more are reset.
	MaxInboundStreams int
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
			MaxInboundConns: 1024, MaxOutboundConns: 1024, MaxInboundStreams: 256,
			StreamWindow: 4 * mib, ConnWindow: 16 * mib, QUICStreamWindow: 4 * mib, QUICConnWindow: 8 * mib, QUICMaxStreams: 256,
			MaxPeers: 4096, MaxAddrsPerPeer: 64, MaxAddrBytesPerPeer: 16 * kib, MaxAddrBytes: 16 * mib,
			ConnLowWater: 160, ConnHighWater: 192, ConnGracePeriod: 20 * time.Second,
			IdleTimeout: -1, KeepAlive: 30 * time.Second,
		}, nil
	case "mobile":
		return Limits{
			MaxInboundConns: 128, MaxOutboundConns: 128, MaxInboundStreams: 128,
			StreamWindow: 1 * mib, ConnWindow: 4 * mib, QUICStreamWindow: 1 * mib, QUICConnWindow: 2 * mib, QUICMaxStreams: 128,
			MaxPeers: 1024, MaxAddrsPerPeer: 32, MaxAddrBytesPerPeer: 16 * kib, MaxAddrBytes: 4 * mib,
			ConnLowWater: 32, ConnHighWater: 96, ConnGracePeriod: 20 * time.Second,
			IdleTimeout: 10 * time.Minute, KeepAlive: 30 * time.Second,
			MemoryLimit: 128 * mib,
		}, nil
	case "iot":
		return Limits{
			MaxInboundConns: 64, MaxOutboundConns: 32, MaxInboundStreams: 64,
			StreamWindow: 256 * kib, ConnWindow: 512 * kib, QUICStreamWindow: 256 * kib, QUICConnWindow: 512 * kib, QUICMaxStreams: 64,
			MaxPeers: 256, MaxAddrsPerPeer: 16, MaxAddrBytesPerPeer: 8 * kib, MaxAddrBytes: 1 * mib,
			ConnLowWater: 16, ConnHighWater: 48, ConnGracePeriod: 20 * time.Second,
			IdleTimeout: 5 * time.Minute, KeepAlive: 60 * time.Second,
			MemoryLimit: 32 * mib,
		}, nil
	case "low-memory":
		return Limits{
			MaxInboundConns: 16, MaxOutboundConns: 16, MaxInboundStreams: 32,
			StreamWindow: 256 * kib, ConnWindow: 256 * kib, QUICStreamWindow: 64 * kib, QUICConnWindow: 128 * kib, QUICMaxStreams: 32,
			MaxPeers: 64, MaxAddrsPerPeer: 8, MaxAddrBytesPerPeer: 4 * kib, MaxAddrBytes: 256 * kib,
			ConnLowWater: 4, ConnHighWater: 12, ConnGracePeriod: 10 * time.Second,
			IdleTimeout: 2 * time.Minute, KeepAlive: 60 * time.Second,
			MemoryLimit: 16 * mib,
		}, nil
	}
	return Limits{}, fmt.Errorf("unknown preset %q (have %v)", name, PresetNames)
}

// WithDefaults returns l with every zero field set from the server preset,
// and clamped where a value cannot work (a yamux window below 256 KiB, a
// low watermark above the high one).
func (l Limits) WithDefaults() Limits {
	d, _ := Preset("server")
	set := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	set(&l.MaxInboundConns, d.MaxInboundConns)
	set(&l.MaxOutboundConns, d.MaxOutboundConns)
	set(&l.MaxInboundStreams, d.MaxInboundStreams)
	set(&l.MaxPeers, d.MaxPeers)
	set(&l.MaxAddrsPerPeer, d.MaxAddrsPerPeer)
	set(&l.MaxAddrBytesPerPeer, d.MaxAddrBytesPerPeer)
	set(&l.MaxAddrBytes, d.MaxAddrBytes)
	set(&l.ConnLowWater, d.ConnLowWater)
	set(&l.ConnHighWater, d.ConnHighWater)
	if l.StreamWindow == 0 {
		l.StreamWindow = d.StreamWindow
	}
	l.StreamWindow = max(l.StreamWindow, 256*kib)
	if l.ConnWindow == 0 {
		l.ConnWindow = d.ConnWindow
	}
	if l.QUICStreamWindow == 0 {
		l.QUICStreamWindow = d.QUICStreamWindow
	}
	if l.QUICConnWindow == 0 {
		l.QUICConnWindow = max(d.QUICConnWindow, l.QUICStreamWindow)
	}
	if l.QUICMaxStreams == 0 {
		l.QUICMaxStreams = d.QUICMaxStreams
	}
	if l.ConnGracePeriod == 0 {
		l.ConnGracePeriod = d.ConnGracePeriod
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	if l.KeepAlive == 0 {
		l.KeepAlive = d.KeepAlive
	}
	l.ConnLowWater = min(l.ConnLowWater, l.ConnHighWater)
	return l
}

// Limit names, as used in errors and Counters.
const (
	LimitInboundConns  = "MaxInboundConns"
	LimitOutboundConns = "MaxOutboundConns"
	LimitStreams       = "MaxInboundStreams"
	LimitHighWater     = "ConnHighWater"
	LimitIdle          = "IdleTimeout"
	LimitPeers         = "MaxPeers"
	LimitRate          = "RateLimit"
	// LimitPushes is the identify push rate per connection (maxPushes
	// per pushWindow), a fixed bound rather than a preset field.
	LimitPushes = "IdentifyPushRate"
)

// counters counts how often each limit fired.
type counters struct {
	inboundConns, outboundConns, streams, highWater, idle, peers, rate, pushes atomic.Uint64
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
		LimitStreams:       c.streams.Load(),
		LimitHighWater:     c.highWater.Load(),
		LimitIdle:          c.idle.Load(),
		LimitPeers:         c.peers.Load(),
		LimitRate:          c.rate.Load(),
		LimitPushes:        c.pushes.Load(),
	}
	return m
}

// Limits returns the node's effective limits.
func (n *Node) Limits() Limits { return n.cfg.Limits }

// limitsJSON is Limits with durations as text ("20s"), for config files.
type limitsJSON struct {
	MaxInboundConns     int    `json:",omitempty"`
	MaxOutboundConns    int    `json:",omitempty"`
	MaxInboundStreams   int    `json:",omitempty"`
	StreamWindow        uint32 `json:",omitempty"`
	ConnWindow          uint64 `json:",omitempty"`
	QUICStreamWindow    uint64 `json:",omitempty"`
	QUICConnWindow      uint64 `json:",omitempty"`
	QUICMaxStreams      int64  `json:",omitempty"`
	MaxPeers            int    `json:",omitempty"`
	MaxAddrsPerPeer     int    `json:",omitempty"`
	MaxAddrBytesPerPeer int    `json:",omitempty"`
	MaxAddrBytes        int    `json:",omitempty"`
	ConnLowWater        int    `json:",omitempty"`
	ConnHighWater       int    `json:",omitempty"`
	ConnGracePeriod     string `json:",omitempty"`
	IdleTimeout         string `json:",omitempty"`
	KeepAlive           string `json:",omitempty"`
	RateLimit           int64  `json:",omitempty"`
	MemoryLimit         int64  `json:",omitempty"`
}

func durText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// MarshalJSON writes durations as text; zero fields are left out.
func (l Limits) MarshalJSON() ([]byte, error) {
	return json.Marshal(limitsJSON{
		l.MaxInboundConns, l.MaxOutboundConns, l.MaxInboundStreams, l.StreamWindow, l.ConnWindow,
		l.QUICStreamWindow, l.QUICConnWindow, l.QUICMaxStreams, l.MaxPeers, l.MaxAddrsPerPeer,
		l.MaxAddrBytesPerPeer, l.MaxAddrBytes, l.ConnLowWater, l.ConnHighWater, durText(l.ConnGracePeriod), durText(l.IdleTimeout),
		durText(l.KeepAlive), l.RateLimit, l.MemoryLimit,
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (l *Limits) UnmarshalJSON(b []byte) error {
	var j limitsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	dur := func(name, s string) (time.Duration, error) {
		if s == "" {
			return 0, nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("limits: %s: %w", name, err)
		}
		return d, nil
	}
	grace, err := dur("ConnGracePeriod", j.ConnGracePeriod)
	if err != nil {
		return err
	}
	idle, err := dur("IdleTimeout", j.IdleTimeout)
	if err != nil {
		return err
	}
	ka, err := dur("KeepAlive", j.KeepAlive)
	if err != nil {
		return err
	}
	*l = Limits{
		j.MaxInboundConns, j.MaxOutboundConns, j.MaxInboundStreams, j.StreamWindow, j.ConnWindow,
		j.QUICStreamWindow, j.QUICConnWindow, j.QUICMaxStreams, j.MaxPeers, j.MaxAddrsPerPeer,
		j.MaxAddrBytesPerPeer, j.MaxAddrBytes, j.ConnLowWater, j.ConnHighWater, grace, idle, ka, j.RateLimit, j.MemoryLimit,
	}
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
func muxConfig(l Limits) mux.Config {
	return mux.Config{
		MaxStreamWindow: l.StreamWindow,
		MaxSessionRecv:  int(min(l.ConnWindow, math.MaxInt32)),
		MaxStreams:      2 * l.MaxInboundStreams,
		KeepAlive:       l.KeepAlive,
	}
}

// MaxConnUnread is the most unread data one TCP connection can make the
// node buffer, in bytes, with l's yamux settings (defaults applied).
func (l Limits) MaxConnUnread() int64 { return muxConfig(l.WithDefaults()).MaxUnread() }
