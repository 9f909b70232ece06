//go:build !moteonly && !quicgoonly

package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	p2pconnmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mote-p2p/mote/bench/internal/benchproto"
)

func init() { register(stackLibp2p, libp2pStack{}) }

// libp2pStack runs go-libp2p hosts configured as in the baseline: TCP
// and QUIC-v1 transports, Noise, yamux, identify and ping, no relay, no
// host metrics. The listener uses the resource manager with infinite
// limits and a connection manager whose watermarks no test reaches (the
// defaults allow a few hundred connections); dialers use the null
// resource and connection managers and do not listen.
type libp2pStack struct{}

func libp2pOptions() []libp2p.Option {
	return []libp2p.Option{
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.Ping(true),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	}
}

// libp2pProtocol is the multiaddr protocol of each transport.
var libp2pProtocol = map[string]int{"tcp": ma.P_TCP, "quic": ma.P_QUIC_V1}

// identifier is what go-libp2p's basic host offers to wait for identify.
type identifier interface {
	IDService() identify.IDService
}

func (libp2pStack) listen(tr, preset string) (server, error) {
	if preset != "" {
		return nil, fmt.Errorf("go-libp2p has no preset %q", preset)
	}
	addr, ok := listenAddrs[tr]
	if !ok {
		return nil, fmt.Errorf("unknown transport %q", tr)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.InfiniteLimits))
	if err != nil {
		return nil, err
	}
	cm, err := p2pconnmgr.NewConnManager(1_000_000, 1_000_000)
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(append(libp2pOptions(),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.ListenAddrStrings(addr),
	)...)
	if err != nil {
		return nil, err
	}
	idh, ok := h.(identifier)
	if !ok {
		h.Close()
		return nil, fmt.Errorf("go-libp2p host %T has no identify service", h)
	}
	if len(h.Addrs()) != 1 {
		h.Close()
		return nil, fmt.Errorf("go-libp2p listener addresses %v: want one", h.Addrs())
	}
	s := &libp2pServer{h: h}
	h.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if c.Stat().Direction == network.DirInbound {
			s.nAccpt.Add(1)
		}
	}})
	ids := idh.IDService()
	h.SetStreamHandler(protocol.ID(benchproto.Echo), func(st network.Stream) { benchproto.ServeEcho(st) })
	h.SetStreamHandler(protocol.ID(benchproto.Sink), func(st network.Stream) { benchproto.ServeSink(st) })
	h.SetStreamHandler(protocol.ID(benchproto.Hold), func(st network.Stream) {
		benchproto.ServeHold(st, ids.IdentifyWait(st.Conn()), &s.nHeld)
	})
	return s, nil
}

type libp2pServer struct {
	h      host.Host
	nHeld  atomic.Int64
	nAccpt atomic.Uint64
}

func (s *libp2pServer) id() string       { return s.h.ID().String() }
func (s *libp2pServer) addr() string     { return s.h.Addrs()[0].String() }
func (s *libp2pServer) conns() int       { return len(s.h.Network().Conns()) }
func (s *libp2pServer) held() int64      { return s.nHeld.Load() }
func (s *libp2pServer) accepted() uint64 { return s.nAccpt.Load() }
func (s *libp2pServer) close()           { s.h.Close() }

func (libp2pStack) newPeer(tr string) (client, error) {
	if _, ok := libp2pProtocol[tr]; !ok {
		return nil, fmt.Errorf("unknown transport %q", tr)
	}
	h, err := libp2p.New(append(libp2pOptions(),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.ConnectionManager(connmgr.NullConnMgr{}),
		libp2p.NoListenAddrs,
	)...)
	if err != nil {
		return nil, err
	}
	return &libp2pClient{h: h, tr: tr}, nil
}

type libp2pClient struct {
	h      host.Host
	tr     string
	target peer.ID
}

func (c *libp2pClient) connect(ctx context.Context, id, addr string, _ bool) error {
	pid, err := peer.Decode(id)
	if err != nil {
		return err
	}
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		return err
	}
	// Connect waits for identify (basic host).
	if err := c.h.Connect(ctx, peer.AddrInfo{ID: pid, Addrs: []ma.Multiaddr{a}}); err != nil {
		return err
	}
	for _, conn := range c.h.Network().ConnsToPeer(pid) {
		if _, err := conn.RemoteMultiaddr().ValueForProtocol(libp2pProtocol[c.tr]); err != nil {
			return fmt.Errorf("connection to %s is not over %s", conn.RemoteMultiaddr(), c.tr)
		}
	}
	c.target = pid
	return nil
}

func (c *libp2pClient) open(ctx context.Context, proto string) (stream, error) {
	if c.target == "" {
		return nil, errors.New("not connected")
	}
	return c.h.NewStream(ctx, c.target, protocol.ID(proto))
}

func (c *libp2pClient) disconnect() error {
	if c.target == "" {
		return nil
	}
	err := c.h.Network().ClosePeer(c.target)
	c.target = ""
	return err
}

func (c *libp2pClient) close() error { return c.h.Close() }
