package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// ErrListenerClosed is returned by Accept after Close.
var ErrListenerClosed = errors.New("listener closed")

// AddrFunc converts a net.Addr of a raw connection into its multiaddr.
type AddrFunc func(net.Addr) (ma.Multiaddr, error)

// Listen wraps a raw listener: every accepted connection is upgraded in
// the background (at most MaxInboundHandshakes at a time) and yields a
// Conn from Accept once authenticated. name is the transport's name in
// ConnState.
func (u *Upgrader) Listen(ln net.Listener, name string, addrOf AddrFunc) (Listener, error) {
	laddr, err := addrOf(ln.Addr())
	if err != nil {
		return nil, fmt.Errorf("listen: local address %v: %w", ln.Addr(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{
		u:      u,
		ln:     ln,
		name:   name,
		addrOf: addrOf,
		laddr:  laddr,
		ctx:    ctx,
		cancel: cancel,
		conns:  make(chan Conn),
		slots:  make(chan struct{}, u.cfg.MaxInboundHandshakes),
		perIP:  make(map[string]int),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

type listener struct {
	u      *Upgrader
	ln     net.Listener
	name   string
	addrOf AddrFunc
	laddr  ma.Multiaddr
	ctx    context.Context
	cancel context.CancelFunc
	conns  chan Conn     // upgraded connections waiting for Accept
	slots  chan struct{} // one token per handshake in progress

	perIPMu sync.Mutex
	perIP   map[string]int // handshakes in progress by remote IP
	wg      sync.WaitGroup
	errMu   sync.Mutex
	err     error // why acceptLoop stopped
	once    sync.Once
}

// acceptLoop is the listener's one long-lived goroutine; it owns ln.
func (l *listener) acceptLoop() {
	defer l.wg.Done()
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.ctx.Done():
			return
		}
		raw, err := l.ln.Accept()
		if err != nil {
			<-l.slots
			if l.ctx.Err() != nil {
				return // closed by Close
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			l.errMu.Lock()
			l.err = err
			l.errMu.Unlock()
			l.cancel()
			return
		}
		host := remoteHost(raw.RemoteAddr())
		if !l.enter(host) {
			<-l.slots
			raw.Close()
			l.u.log.Info("inbound connection refused", "remote", raw.RemoteAddr(),
				"err", fmt.Sprintf("MaxHandshakesPerIP=%d handshakes from %s already in progress", l.u.cfg.MaxHandshakesPerIP, host))
			continue
		}
		l.wg.Add(1)
		go l.handshake(raw, host)
	}
}

// remoteHost is the IP of a remote address (the whole address for
// transports without IPs), the unit of the per-IP handshake limit.
func remoteHost(a net.Addr) string {
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// enter counts a handshake from host, refusing it when host already has
// MaxHandshakesPerIP in progress: one address alone cannot take every
// handshake slot (slow-loris).
func (l *listener) enter(host string) bool {
	if !l.u.cfg.LimitLoopback {
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return true // local processes are not the slow-loris threat
		}
	}
	l.perIPMu.Lock()
	defer l.perIPMu.Unlock()
	if l.perIP[host] >= l.u.cfg.MaxHandshakesPerIP {
		return false
	}
	l.perIP[host]++
	return true
}

func (l *listener) leave(host string) {
	l.perIPMu.Lock()
	defer l.perIPMu.Unlock()
	if _, ok := l.perIP[host]; !ok {
		return // exempt from counting
	}
	if l.perIP[host]--; l.perIP[host] <= 0 {
		delete(l.perIP, host)
	}
}

// handshake upgrades one raw connection and hands it to Accept.
func (l *listener) handshake(raw net.Conn, host string) {
	defer l.wg.Done()
	defer func() { <-l.slots }()
	defer l.leave(host)
	raddr, err := l.addrOf(raw.RemoteAddr())
	if err != nil {
		raw.Close()
		l.u.log.Debug("inbound connection refused", "remote", raw.RemoteAddr(), "err", err)
		return
	}
	c, err := l.u.UpgradeInbound(l.ctx, raw, Endpoint{Transport: l.name, Local: l.laddr, Remote: raddr})
	if err != nil {
		l.u.log.Info("inbound connection refused", "remote", raddr, "err", err)
		return
	}
	select {
	case l.conns <- c:
	case <-l.ctx.Done():
		c.Close()
	}
}

func (l *listener) Accept() (Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.ctx.Done():
		l.errMu.Lock()
		err := l.err
		l.errMu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("accept on %s: %w", l.laddr, err)
		}
		return nil, ErrListenerClosed
	}
}

func (l *listener) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		err = l.ln.Close()
		l.wg.Wait()
	})
	return err
}

func (l *listener) Multiaddr() ma.Multiaddr { return l.laddr }
