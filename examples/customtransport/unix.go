package main

import (
	"context"
	"fmt"
	"net"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// Unix is a transport over Unix-domain sockets, for /unix/<path>
// addresses. It only makes raw net.Conns; the node's Upgrader secures
// (Noise) and muxes (yamux) them.
type Unix struct {
	up *transport.Upgrader
}

// socketPath returns the socket path of /unix/<path>.
func socketPath(addr ma.Multiaddr) (string, bool) {
	if len(addr) != 1 || addr[0].Protocol().Code != ma.P_UNIX {
		return "", false
	}
	_, path, err := ma.DialArgs(addr) // converts /C:/… on Windows
	return path, err == nil
}

// CanDial reports whether addr is /unix/<path>. (go-multiaddr allows
// nothing after a path component, so there is no /p2p/<id> to strip.)
func (u *Unix) CanDial(addr ma.Multiaddr) bool {
	_, ok := socketPath(addr)
	return ok
}

// Dial connects to the socket and upgrades the connection; a peer other
// than remote (if not empty) fails the dial.
func (u *Unix) Dial(ctx context.Context, addr ma.Multiaddr, remote peer.ID) (transport.Conn, error) {
	path, ok := socketPath(addr)
	if !ok {
		return nil, fmt.Errorf("unix: cannot dial %s", addr)
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("unix dial: %w", err)
	}
	// The client end of a Unix socket has no name: describe both ends by
	// the socket dialed.
	return u.up.UpgradeOutbound(ctx, raw, remote, transport.Endpoint{Transport: "unix", Local: addr, Remote: addr})
}

// Listen binds the socket and upgrades the connections it accepts.
func (u *Unix) Listen(addr ma.Multiaddr) (transport.Listener, error) {
	path, ok := socketPath(addr)
	if !ok {
		return nil, fmt.Errorf("unix: cannot listen on %s", addr)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("unix listen: %w", err)
	}
	// Connecting peers are unnamed too, so every address is the socket's.
	addrOf := func(net.Addr) (ma.Multiaddr, error) { return addr, nil }
	l, err := u.up.Listen(ln, "unix", addrOf)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("unix listen: %w", err)
	}
	return l, nil
}
