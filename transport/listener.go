package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// ErrListenerClosed is returned by Accept after Close.
var ErrListenerClosed = errors.New("listener closed")

// AcceptErrorCounter is an optional capability of a Listener: how many
// times accepting a raw connection failed with a temporary error (out of
// file descriptors or buffers, a connection aborted in the queue, a
// timeout) and was retried. Listeners made by Upgrader.Listen implement
// it; a node can show the count (mote stats) to make fd exhaustion visible,
// since the listener itself recovers silently.
type AcceptErrorCounter interface {
	// AcceptErrors is the number of temporary accept errors so far.
	AcceptErrors() uint64
}

// Bounds of the pause after a temporary accept error, doubling from min
// to max as net/http's Server.Serve does: accept fails again at once while
// the cause (usually fd exhaustion) lasts, and retrying without a pause
// would spin a CPU while the kernel keeps queueing clients.
const (
	acceptDelayMin = 5 * time.Millisecond
	acceptDelayMax = time.Second
)

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

	acceptErrs atomic.Uint64 // temporary accept errors retried
}

// acceptLoop is the listener's one long-lived goroutine; it owns ln.
// A temporary accept error pauses it (see acceptRetryable) rather than
// ending it: the kernel keeps queueing clients on the socket, and they
// would hang if nobody accepted them any more. Only Close, or an error
// that is not temporary, ends it.
func (l *listener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration // pause before the next retry, 0 after a success
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
			if acceptRetryable(err) {
				delay = acceptBackoff(delay)
				n := l.acceptErrs.Add(1)
				l.u.log.Warn("accept failed, retrying", "addr", l.laddr, "err", err, "retry_in", delay, "errors", n)
				if !l.pause(delay) {
					return // closed while paused
				}
				continue
			}
			if !errors.Is(err, net.ErrClosed) {
				// Unknown errors end the listener as before (retrying
				// one that is permanent would loop forever), but loudly,
				// as nothing else may read Accept's error.
				l.u.log.Error("listener stopped", "addr", l.laddr, "err", err)
			}
			l.errMu.Lock()
			l.err = err
			l.errMu.Unlock()
			l.cancel()
			return
		}
		delay = 0
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

// acceptRetryable reports whether an accept error is temporary: the
// listening socket is fine and a later accept may succeed. These are the
// resource shortages accept(2) reports (EMFILE, ENFILE, ENOBUFS, ENOMEM),
// a connection aborted while queued (ECONNABORTED; Go retries it itself
// on Unix, other listeners may not), EAGAIN, and timeouts (a deadline on
// the raw listener, ETIMEDOUT). net.Error's Temporary is deprecated and
// too vague, so errors are matched by errno instead.
func acceptRetryable(err error) bool {
	for _, errno := range []syscall.Errno{
		syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.EAGAIN,
	} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// acceptBackoff is the pause after a temporary accept error, given the
// previous one (0 if the last accept succeeded).
func acceptBackoff(prev time.Duration) time.Duration {
	if prev == 0 {
		return acceptDelayMin
	}
	return min(2*prev, acceptDelayMax)
}

// pause waits d, or until Close; it reports false on Close. A timer, not
// time.Sleep, so that Close need not wait out the pause.
func (l *listener) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.ctx.Done():
		return false
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

// AcceptErrors implements AcceptErrorCounter.
func (l *listener) AcceptErrors() uint64 { return l.acceptErrs.Load() }
