package node

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// Version is mote's version, sent in identify as "mote/<Version>".
const Version = "0.1.0"

// Config configures a Node. It is a plain struct: the zero value of each
// field means the default given in its comment.
type Config struct {
	// Key is the node's identity. Default: a fresh Ed25519 key (a
	// throwaway identity).
	Key peer.PrivateKey
	// ListenAddrs are listened on by New. Default: none.
	ListenAddrs []ma.Multiaddr
	// AgentVersion is sent in identify. Default "mote/<Version>".
	AgentVersion string
	// AnnounceAddrs, when set, are advertised instead of the listen
	// addresses; AppendAnnounceAddrs are advertised besides them;
	// NoAnnounceAddrs are never advertised: exact addresses, or ranges as
	// /ip4/A/ipcidr/N (Kubo's Addresses.Announce, AppendAnnounce and
	// NoAnnounce). Addresses a reachability check confirmed are
	// advertised too.
	AnnounceAddrs       []ma.Multiaddr
	AppendAnnounceAddrs []ma.Multiaddr
	NoAnnounceAddrs     []ma.Multiaddr
	// TreatAsPublic lists IP ranges that AddrScope counts as public
	// whatever their class (lab networks use documentation ranges); the
	// dial filter lets them through.
	TreatAsPublic []netip.Prefix
	// AddrFilters lists IP ranges never dialed for addresses the network
	// told us (identify, the DHT), as Kubo's Swarm.AddrFilters; addresses
	// the user gave (Connect under Explicit) are dialed anyway.
	// ServerAddrFilters is Kubo's server profile. Default: none.
	AddrFilters []netip.Prefix
	// Transports make the node's transports, most preferred first (a
	// dial tries the first whose CanDial accepts the address), before
	// anything is listened on. Default: QUIC() and TCP(); Memory(mn) for
	// tests and simulations on an in-memory network.
	Transports []TransportMaker
	// DisableQUIC leaves QUIC out of the default transports (TCP only).
	DisableQUIC bool
	// Security lists the security protocols offered on TCP, by preference.
	// Default: /noise, then /tls/1.0.0. QUIC always uses TLS.
	Security []string
	// ClassicKeyExchange has TLS handshakes (QUIC, and /tls/1.0.0 on TCP)
	// agree keys with X25519 alone, without the post-quantum hybrid that
	// crypto/tls offers by default: less CPU and memory per connection,
	// for devices where that matters more than protection against future
	// quantum decryption of recorded traffic (see
	// secure/tls.Identity.WithClassicKeyExchange). Default false.
	ClassicKeyExchange bool

	// Limits is the resource budget; zero fields take the server preset's
	// values (see Preset).
	Limits Limits
	// DialConcurrency bounds the addresses of one peer dialed at once.
	// Default 8.
	DialConcurrency int
	// DialTimeout bounds one connection attempt to one address, handshake
	// included. Default 15 s.
	DialTimeout time.Duration
	// TCPHeadStart is how long QUIC addresses of a peer are tried alone
	// before its other addresses are dialed too. Default 250 ms, as
	// go-libp2p for public addresses.
	TCPHeadStart time.Duration
	// DialBackoff is the wait after a failed dial before the same peer is
	// dialed again; it doubles with each failure up to 5 minutes.
	// Default 5 s.
	DialBackoff time.Duration
	// NegotiationTimeout bounds protocol negotiation on inbound streams.
	// Default 10 s, as go-libp2p.
	NegotiationTimeout time.Duration
	// IdentifyTimeout bounds an identify exchange. Default 10 s.
	IdentifyTimeout time.Duration
	// HandshakeTimeout bounds an inbound connection's upgrade. Default 15 s.
	HandshakeTimeout time.Duration
	// LimitLoopback applies the per-IP limits (MaxInboundConnsPerIP and
	// the handshake limits) to loopback peers too, which are otherwise
	// exempt as in go-libp2p: tests attacking from 127.0.0.2–127.0.0.9
	// need it.
	LimitLoopback bool

	// Logger receives diagnostics. Default: discarded.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.AgentVersion == "" {
		c.AgentVersion = "mote/" + Version
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	c.Limits = c.Limits.WithDefaults()
	def(&c.DialConcurrency, 8)
	defd(&c.DialTimeout, 15*time.Second)
	defd(&c.DialBackoff, 5*time.Second)
	defd(&c.TCPHeadStart, 250*time.Millisecond)
	defd(&c.NegotiationTimeout, 10*time.Second)
	defd(&c.IdentifyTimeout, 10*time.Second)
	defd(&c.HandshakeTimeout, 15*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}
