package node

import (
	"slices"
	"time"

	"github.com/mote-p2p/mote/mux"
	"github.com/mote-p2p/mote/peer"
	p2ptls "github.com/mote-p2p/mote/secure/tls"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// TransportMaker makes one of a node's transports. New calls it once the
// node's key and upgrader exist, before listening on anything, so a
// transport of one's own is in place from the start.
type TransportMaker func(TransportEnv) (transport.Transport, error)

// TransportEnv is what a transport may need from the node it serves.
type TransportEnv struct {
	// Key is the node's identity key.
	Key peer.PrivateKey
	// Upgrader secures and multiplexes raw connections (TCP-like
	// transports).
	Upgrader *transport.Upgrader
	// TLS is the node's libp2p TLS certificate (QUIC-like transports).
	TLS *p2ptls.Identity
	// Limits are the node's limits, defaults applied.
	Limits Limits
	// Budget is the node-wide memory for unread stream data
	// (Limits.MaxStreamMemory), for transports with muxers of their own
	// (QUIC's receive windows).
	Budget *mux.Budget
	// Config is the node's configuration, defaults applied.
	Config *Config
}

// TCP is the TCP transport, with connections upgraded by the node's
// upgrader (Noise or TLS, then yamux).
func TCP() TransportMaker {
	return func(env TransportEnv) (transport.Transport, error) { return transport.NewTCP(env.Upgrader), nil }
}

// QUIC is the QUIC-v1 transport with the node's limits. A binary built
// with the noquic tag has none: QUIC then makes no transport, and QUIC
// addresses are neither listened on nor dialed.
func QUIC() TransportMaker {
	return func(env TransportEnv) (transport.Transport, error) { return newQUIC(env) }
}

// Memory is the in-memory transport on network mn (tests and
// simulations): /memory/<n> addresses, connections upgraded as on TCP.
func Memory(mn *transport.MemNetwork) TransportMaker {
	return func(env TransportEnv) (transport.Transport, error) { return transport.NewMem(mn, env.Upgrader), nil }
}

// defaultTransports are QUIC (when built) and TCP.
func defaultTransports(cfg *Config) []TransportMaker {
	if cfg.DisableQUIC {
		return []TransportMaker{TCP()}
	}
	return []TransportMaker{QUIC(), TCP()}
}

// dialClass is the order in which a peer's addresses are dialed: each
// class starts a head start (Config.TCPHeadStart) after the one before
// it, if that one had addresses.
func dialClass(t transport.Transport, addr ma.Multiaddr) transport.DialClass {
	if p, ok := t.(transport.DialClasser); ok {
		return p.DialClass(addr)
	}
	return transport.DialDirect
}

// planClasses orders dial targets by class and gives each class its delay.
func planClasses(targets []dialTarget, headStart time.Duration) []dialTarget {
	slices.SortStableFunc(targets, func(a, b dialTarget) int { return int(a.class) - int(b.class) })
	var delay time.Duration
	for i := range targets {
		if i > 0 && targets[i].class != targets[i-1].class {
			delay += headStart
		}
		targets[i].delay = delay
	}
	return targets
}
