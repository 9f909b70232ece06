package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
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
// the background (at most MaxInboundHandshakes at a time, a newcomer
// displacing the oldest when they are all taken, see admit) and yields a
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
		narrow: make(map[string]int),
		wide:   make(map[string]int),
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
	slots  chan struct{} // one token per handshake goroutine

	// pending are the handshakes in progress, oldest first, at most
	// MaxInboundHandshakes; narrow and wide count the non-exempt ones by
	// address group (see handshakeGroups). A handshake leaves pending
	// when it ends, or when admit drops it for a newer connection.
	pendingMu sync.Mutex
	pending   []*pendingHandshake
	narrow    map[string]int
	wide      map[string]int

	wg    sync.WaitGroup
	errMu sync.Mutex
	err   error // why acceptLoop stopped
	once  sync.Once

	acceptErrs atomic.Uint64 // temporary accept errors retried
	dropped    atomic.Uint64 // handshakes dropped for newer connections
}

// pendingHandshake is one inbound handshake in progress.
type pendingHandshake struct {
	raw          net.Conn
	narrow, wide string // address groups, see handshakeGroups
	exempt       bool   // loopback without LimitLoopback: no group limits
}

// acceptLoop is the listener's one long-lived goroutine; it owns ln.
// A temporary accept error pauses it (see AcceptRetryable) rather than
// ending it: the kernel keeps queueing clients on the socket, and they
// would hang if nobody accepted them any more. Only Close, or an error
// that is not temporary, ends it.
func (l *listener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration // pause before the next retry, 0 after a success
	for {
		// Accept before a slot is free: a connection left in the kernel's
		// backlog cannot displace a stalled handshake, so silent
		// connections holding every slot would lock out everyone else.
		raw, err := l.ln.Accept()
		if err != nil {
			if l.ctx.Err() != nil {
				return // closed by Close
			}
			if AcceptRetryable(err) {
				delay = AcceptBackoff(delay)
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
		p, victim, why := l.admit(raw)
		if victim != nil {
			victim.raw.Close() // its goroutine ends and frees its slot
			n := l.dropped.Add(1)
			l.u.log.Info("inbound handshake dropped for a newer connection", "remote", victim.raw.RemoteAddr(),
				"newer", raw.RemoteAddr(), "reason", why, "dropped", n)
		}
		// The slot bounds goroutines, not handshakes (admit does): it is
		// held until the goroutine ends, so it waits for a dropped
		// handshake's goroutine to see its closed conn, or, if upgraded
		// connections fill the slots, for Accept to take them.
		select {
		case l.slots <- struct{}{}:
		case <-l.ctx.Done():
			l.leave(p)
			raw.Close()
			return
		}
		l.wg.Add(1)
		go l.handshake(raw, p)
	}
}

// AcceptRetryable reports whether an accept error is temporary: the
// listening socket is fine and a later accept may succeed. These are the
// resource shortages accept(2) reports (EMFILE, ENFILE, ENOBUFS, ENOMEM),
// a connection aborted while queued (ECONNABORTED; Go retries it itself
// on Unix, other listeners may not), EAGAIN, and timeouts (a deadline on
// the raw listener, ETIMEDOUT). net.Error's Temporary is deprecated and
// too vague, so errors are matched by errno instead.
func AcceptRetryable(err error) bool {
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

// AcceptBackoff is the pause after a temporary accept error, given the
// previous one (0 if the last accept succeeded): 5 ms doubling to 1 s, as
// net/http's server. Other accept loops (the daemon's control API) use
// it with AcceptRetryable.
func AcceptBackoff(prev time.Duration) time.Duration {
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
// transports without IPs), from which its handshake groups are derived.
func remoteHost(a net.Addr) string {
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// handshakeGroups are the address groups whose handshakes are limited
// together (MaxHandshakesPerIP, MaxHandshakesPerSubnet). narrow is what
// one host or site holds: an IPv4 address, or an IPv6 /64, since a site
// gets a whole /64 and could otherwise open each connection from a new
// address. wide is one network's: an IPv4 /24 or an IPv6 /48, the
// smallest prefixes routed on the Internet. IPv4-mapped IPv6 addresses
// count as IPv4. A host that is not an IP (memory transport) is a group
// of its own.
func handshakeGroups(host string) (narrow, wide string) {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host, host
	}
	ip = ip.Unmap()
	nbits, wbits := 32, 24
	if ip.Is6() {
		nbits, wbits = 64, 48
	}
	n, _ := ip.Prefix(nbits) // cannot fail: the lengths fit the family
	w, _ := ip.Prefix(wbits)
	return n.String(), w.String()
}

// admit records the handshake of a new connection. When that would
// exceed a limit it makes room rather than refuse the newcomer, and
// returns the handshake it dropped (already forgotten; the caller closes
// its conn) and why. It drops the oldest: of the newcomer's narrow
// group when that is full, else of its wide group when that is full,
// else, when every slot is taken, of the wide group holding the most.
// An honest handshake is done in a few round trips, so the oldest one
// is the likeliest to be stalling, and a newcomer from a full group
// only displaces its own group. At most one is dropped: each limit was
// kept before, and one fewer handshake in a group leaves room in its
// wider scopes too.
func (l *listener) admit(raw net.Conn) (p, victim *pendingHandshake, why string) {
	host := remoteHost(raw.RemoteAddr())
	p = &pendingHandshake{raw: raw}
	p.narrow, p.wide = handshakeGroups(host)
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		p.exempt = !l.u.cfg.LimitLoopback // local processes are not the slow-loris threat
	}
	cfg := &l.u.cfg
	l.pendingMu.Lock()
	defer l.pendingMu.Unlock()
	switch {
	case !p.exempt && l.narrow[p.narrow] >= cfg.MaxHandshakesPerIP:
		victim = l.oldest(func(q *pendingHandshake) bool { return q.narrow == p.narrow })
		why = fmt.Sprintf("MaxHandshakesPerIP=%d handshakes from %s in progress", cfg.MaxHandshakesPerIP, p.narrow)
	case !p.exempt && l.wide[p.wide] >= cfg.MaxHandshakesPerSubnet:
		victim = l.oldest(func(q *pendingHandshake) bool { return q.wide == p.wide })
		why = fmt.Sprintf("MaxHandshakesPerSubnet=%d handshakes from %s in progress", cfg.MaxHandshakesPerSubnet, p.wide)
	case len(l.pending) >= cfg.MaxInboundHandshakes:
		victim = l.busiest()
		why = fmt.Sprintf("MaxInboundHandshakes=%d handshakes in progress", cfg.MaxInboundHandshakes)
	}
	if victim != nil {
		l.remove(victim)
	}
	l.pending = append(l.pending, p)
	if !p.exempt {
		l.narrow[p.narrow]++
		l.wide[p.wide]++
	}
	return p, victim, why
}

// oldest is the oldest non-exempt pending handshake that match accepts.
// The caller holds pendingMu.
func (l *listener) oldest(match func(*pendingHandshake) bool) *pendingHandshake {
	for _, q := range l.pending {
		if !q.exempt && match(q) {
			return q
		}
	}
	return nil
}

// busiest is the oldest pending handshake of the wide group holding the
// most (exempt ones count as holding none, so they go last). The caller
// holds pendingMu.
func (l *listener) busiest() *pendingHandshake {
	held := func(q *pendingHandshake) int {
		if q.exempt {
			return 0
		}
		return l.wide[q.wide]
	}
	var best *pendingHandshake
	for _, q := range l.pending { // oldest first: ties go to the oldest
		if best == nil || held(q) > held(best) {
			best = q
		}
	}
	return best
}

// remove forgets a pending handshake. The caller holds pendingMu.
func (l *listener) remove(p *pendingHandshake) {
	i := slices.Index(l.pending, p)
	if i < 0 {
		return
	}
	l.pending = slices.Delete(l.pending, i, i+1)
	if p.exempt {
		return
	}
	if l.narrow[p.narrow]--; l.narrow[p.narrow] <= 0 {
		delete(l.narrow, p.narrow)
	}
	if l.wide[p.wide]--; l.wide[p.wide] <= 0 {
		delete(l.wide, p.wide)
	}
}

// leave forgets p as its handshake ends; it reports false if admit had
// dropped it already for a newer connection.
func (l *listener) leave(p *pendingHandshake) bool {
	l.pendingMu.Lock()
	defer l.pendingMu.Unlock()
	if !slices.Contains(l.pending, p) {
		return false
	}
	l.remove(p)
	return true
}

// handshake upgrades one raw connection and hands it to Accept.
func (l *listener) handshake(raw net.Conn, p *pendingHandshake) {
	defer l.wg.Done()
	defer func() { <-l.slots }()
	raddr, err := l.addrOf(raw.RemoteAddr())
	if err != nil {
		l.leave(p)
		raw.Close()
		l.u.log.Debug("inbound connection refused", "remote", raw.RemoteAddr(), "err", err)
		return
	}
	c, err := l.u.UpgradeInbound(l.ctx, raw, Endpoint{Transport: l.name, Local: l.laddr, Remote: raddr})
	if !l.leave(p) {
		// Dropped (and logged) by admit, which closed raw: the upgrade
		// failed, or finished just before and is closed now, since its
		// slot went to the newer connection.
		if err == nil {
			c.Close()
		}
		return
	}
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
