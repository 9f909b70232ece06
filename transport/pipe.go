package transport

import (
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"
)

// pipeBufferSize bounds the bytes in flight in each direction of a memory
// connection, like a socket buffer: bytes written and not yet read, still
// on the link or arrived. A writer blocks while it is full.
const pipeBufferSize = 256 << 10

// segmentSize is the most bytes that share one arrival time. A larger
// write is cut up, so that its bytes arrive progressively at the link's
// bandwidth and a loss delays one segment (and, the stream being in
// order, those behind it) rather than the whole write.
const segmentSize = 16 << 10

// maxSegments bounds the arrival times a direction remembers (many small
// writes with distinct times would otherwise grow the list without bound
// within pipeBufferSize); past it, new bytes join the last segment, which
// then arrives with them, a little later than it would have.
const maxSegments = 64

// packetSize is the payload of one packet for Link.Loss: an Ethernet MSS.
const packetSize = 1460

// minRTO and maxRetransmits model Linux's retransmission timer: a steady
// path's RTO is its RTT plus tcp_rto_min, and a segment is given up on
// after tcp_retries2 retransmissions (here it is then delivered anyway, a
// pipe having no way to report the reset).
const (
	minRTO         = 200 * time.Millisecond
	maxRetransmits = 15
)

// newPipe returns the two ends of a buffered in-memory connection over a
// perfect link. Unlike net.Pipe, writes complete without a waiting reader
// (up to the buffer size), so both ends may write at once as on a real
// socket.
func newPipe() (*pipeEnd, *pipeEnd) { return newPipeOn(nil, 0, 0) }

// newPipeOn returns a pipe whose directions cross the links of r, the
// first end being the dialer's (local address a) and the second the
// listener's (local address b). r is nil for a perfect link; otherwise
// r.w.mu is held.
func newPipeOn(r *pipeRoute, a, b memAddr) (*pipeEnd, *pipeEnd) {
	ab, ba := newPipeDir(r, false), newPipeDir(r, true)
	return &pipeEnd{r: ba, w: ab, rd: newDeadline(), wd: newDeadline(), local: a, remote: b},
		&pipeEnd{r: ab, w: ba, rd: newDeadline(), wd: newDeadline(), local: b, remote: a}
}

// pipeRoute is what a pipe crosses: the hops between the hosts of its
// two ends, and the NAT state it holds while open.
type pipeRoute struct {
	w    *memWorld
	hops []hop     // from the dialer's host to the listener's
	seed uint64    // of the pipe's loss draws
	refs []natRef  // w.mu; released at the first Close
	eph  [2]uint64 // w.mu; the ends' fresh endpoints, unbound at the first Close
}

// release gives back the NAT mappings and holes the pipe kept open, and
// the fresh endpoints its ends had.
func (r *pipeRoute) release() {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	now := time.Now()
	for _, ref := range r.refs {
		ref.release(now)
	}
	r.refs = nil
	for i, e := range r.eph {
		if p := r.w.ports[e]; e != 0 && p != nil && p.ln == nil && p.m == nil {
			delete(r.w.ports, e)
		}
		r.eph[i] = 0
	}
}

// pipeDir is one direction of a pipe.
type pipeDir struct {
	mu           sync.Mutex
	data         []byte        // written and not yet read, the arrived bytes first
	ready        int           // how many of data's first bytes have arrived
	writerClosed bool          // reader sees EOF once data is drained
	readerClosed bool          // writer sees an error
	readable     chan struct{} // signalled when data or EOF arrive
	writable     chan struct{} // signalled when space frees or the reader leaves

	route *pipeRoute // nil: a perfect link for good
	back  bool       // crosses route's hops from the listener's end
	ver   uint64     // the link version dl.link was looked up at
	dl    *dirDelay  // nil while the links on the way are perfect
}

// dirDelay is the state of a direction whose links delay it: kept apart
// so that a pipe over perfect links (most of them) does not carry it.
type dirDelay struct {
	link pathLink
	segs []segment // bytes of data past ready, by arrival time
	busy time.Time // when the link is done sending what was written
	fin  time.Time // when the writer's close arrives
	rng  rand.PCG
}

// segment is a run of bytes that arrive at once.
type segment struct {
	n  int
	at time.Time
}

func newPipeDir(r *pipeRoute, back bool) *pipeDir {
	d := &pipeDir{readable: make(chan struct{}, 1), writable: make(chan struct{}, 1), route: r, back: back}
	if r != nil {
		d.ver = r.w.ver.Load()
		if l := r.w.pathLink(r.hops, back); !l.perfect() {
			d.dl = d.newDelay(l)
		}
	}
	return d
}

func (d *pipeDir) newDelay(l pathLink) *dirDelay {
	dl := &dirDelay{link: l}
	var dir uint64
	if d.back {
		dir = 1
	}
	dl.rng.Seed(d.route.seed, dir)
	return dl
}

// refresh looks up the links again if they changed since the last look,
// and reports whether the direction is delayed (d.dl is then set). d.mu
// is held.
func (d *pipeDir) refresh() bool {
	if d.route == nil {
		return false
	}
	if v := d.route.w.ver.Load(); v != d.ver {
		d.ver = v
		d.route.w.mu.Lock()
		l := d.route.w.pathLink(d.route.hops, d.back)
		d.route.w.mu.Unlock()
		switch {
		case d.dl != nil:
			d.dl.link = l // kept even when perfect again: segments may be pending
		case !l.perfect():
			d.dl = d.newDelay(l)
		}
	}
	return d.dl != nil
}

// push appends b, as written now, with the time each of its segments
// arrives. d.mu is held.
func (d *pipeDir) push(b []byte) {
	d.data = append(d.data, b...)
	if !d.refresh() {
		d.ready += len(b)
		return
	}
	dl := d.dl
	l := &dl.link
	now := time.Now()
	for len(b) > 0 {
		n := min(len(b), segmentSize)
		end := now
		if dl.busy.After(end) {
			end = dl.busy
		}
		if l.bandwidth > 0 {
			end = end.Add(time.Duration(int64(n) * int64(time.Second) / l.bandwidth))
		}
		dl.busy = end
		at := end.Add(l.latency)
		if l.loss > 0 {
			at = at.Add(dl.lossDelay(n, l))
		}
		d.arrive(n, at, now)
		b = b[n:]
	}
}

// lossDelay is the extra time n bytes take because some of their packets
// were lost: an RTO per retransmission round, doubling each time.
func (dl *dirDelay) lossDelay(n int, l *pathLink) time.Duration {
	packets := (n + packetSize - 1) / packetSize
	q := 1 - math.Pow(1-l.loss, float64(packets)) // some packet of the n bytes is lost
	rto := 2*l.latency + minRTO
	var extra time.Duration
	for range maxRetransmits {
		if float64(dl.rng.Uint64()>>11)/(1<<53) >= q {
			break
		}
		extra += rto
		rto *= 2
	}
	return extra
}

// arrive records that n bytes at the end of data arrive at time at; they
// never overtake bytes written before them. d.mu is held.
func (d *pipeDir) arrive(n int, at, now time.Time) {
	dl := d.dl
	if k := len(dl.segs); k > 0 {
		last := &dl.segs[k-1]
		if !at.After(last.at) || k >= maxSegments {
			last.n += n
			if at.After(last.at) {
				last.at = at
			}
			return
		}
	} else if !at.After(now) && !dl.link.down {
		d.ready += n
		return
	}
	dl.segs = append(dl.segs, segment{n, at})
}

// held reports whether bytes arriving at are kept back by a cut link: those
// due after the cut wait until it heals.
func (l *pathLink) held(at time.Time) bool { return l.down && !at.Before(l.downAt) }

// promote marks the segments that have arrived by now as ready. It
// returns how long until the next one arrives (0: none pending) and, if
// a cut link holds them, a channel closed when the links next change.
// d.mu is held and d.dl is set.
func (d *pipeDir) promote(now time.Time) (time.Duration, chan struct{}) {
	dl := d.dl
	i := 0
	for ; i < len(dl.segs); i++ {
		s := dl.segs[i]
		if s.at.After(now) || dl.link.held(s.at) {
			break
		}
		d.ready += s.n
	}
	dl.segs = dl.segs[:copy(dl.segs, dl.segs[i:])]
	switch {
	case len(dl.segs) > 0 && dl.link.held(dl.segs[0].at):
		return 0, dl.link.changed
	case len(dl.segs) > 0:
		return dl.segs[0].at.Sub(now), nil
	}
	return 0, nil
}

// eof reports whether the reader has seen everything, the writer's close
// included; if the close is still on its way, it says how long until it
// arrives or which channel to wait on. d.mu is held.
func (d *pipeDir) eof(now time.Time) (bool, time.Duration, chan struct{}) {
	if !d.writerClosed || len(d.data) > 0 {
		return false, 0, nil
	}
	if d.dl == nil {
		return true, 0, nil
	}
	l := &d.dl.link
	switch {
	case l.held(d.dl.fin):
		return false, 0, l.changed
	case d.dl.fin.After(now):
		return false, d.dl.fin.Sub(now), nil
	}
	return true, 0, nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

type pipeEnd struct {
	r, w          *pipeDir
	rd, wd        *deadline
	local, remote memAddr
	once          sync.Once
	closed        chan struct{}
	init          sync.Once
}

func (p *pipeEnd) done() chan struct{} {
	p.init.Do(func() { p.closed = make(chan struct{}) })
	return p.closed
}

func (p *pipeEnd) Read(b []byte) (int, error) {
	d := p.r
	for {
		select {
		case <-p.done():
			return 0, net.ErrClosed
		default:
		}
		d.mu.Lock()
		var now time.Time
		var wait time.Duration
		var changed chan struct{}
		if d.refresh() {
			now = time.Now()
			wait, changed = d.promote(now)
		}
		if d.ready > 0 {
			n := copy(b, d.data[:d.ready])
			d.data = d.data[n:]
			d.ready -= n
			if len(d.data) == 0 {
				d.data = nil // an idle connection keeps no buffer
			}
			d.mu.Unlock()
			signal(d.writable)
			return n, nil
		}
		eof, finWait, finChanged := d.eof(now)
		d.mu.Unlock()
		if eof {
			return 0, io.EOF
		}
		if wait == 0 || (finWait > 0 && finWait < wait) {
			wait = finWait
		}
		if changed == nil {
			changed = finChanged
		}
		var timer *time.Timer
		var fired <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fired = timer.C
		}
		select {
		case <-d.readable:
		case <-fired:
		case <-changed:
		case <-p.rd.wait():
			return 0, os.ErrDeadlineExceeded
		case <-p.done():
			return 0, net.ErrClosed
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func (p *pipeEnd) Write(b []byte) (int, error) {
	d := p.w
	written := 0
	for {
		select {
		case <-p.done():
			return written, net.ErrClosed
		default:
		}
		d.mu.Lock()
		if d.readerClosed {
			d.mu.Unlock()
			return written, io.ErrClosedPipe
		}
		n := min(len(b), pipeBufferSize-len(d.data))
		if n > 0 {
			d.push(b[:n])
		}
		d.mu.Unlock()
		if n > 0 {
			signal(d.readable)
		}
		b = b[n:]
		written += n
		if len(b) == 0 {
			return written, nil
		}
		select {
		case <-d.writable:
		case <-p.wd.wait():
			return written, os.ErrDeadlineExceeded
		case <-p.done():
			return written, net.ErrClosed
		}
	}
}

func (p *pipeEnd) Close() error {
	p.once.Do(func() {
		close(p.done())
		w := p.w
		w.mu.Lock()
		w.writerClosed = true
		if w.refresh() {
			// The close travels behind the bytes written before it.
			dl := w.dl
			now := time.Now()
			dl.fin = now
			if dl.busy.After(now) {
				dl.fin = dl.busy
			}
			dl.fin = dl.fin.Add(dl.link.latency)
			if k := len(dl.segs); k > 0 && dl.segs[k-1].at.After(dl.fin) {
				dl.fin = dl.segs[k-1].at
			}
		}
		w.mu.Unlock()
		signal(w.readable)
		r := p.r
		r.mu.Lock()
		r.readerClosed = true
		r.data = nil
		r.ready = 0
		if r.dl != nil {
			r.dl.segs = nil
		}
		r.mu.Unlock()
		signal(r.writable)
		if w.route != nil {
			w.route.release()
		}
	})
	return nil
}

func (p *pipeEnd) LocalAddr() net.Addr  { return p.local }
func (p *pipeEnd) RemoteAddr() net.Addr { return p.remote }

func (p *pipeEnd) SetDeadline(t time.Time) error {
	p.rd.set(t)
	p.wd.set(t)
	return nil
}
func (p *pipeEnd) SetReadDeadline(t time.Time) error  { p.rd.set(t); return nil }
func (p *pipeEnd) SetWriteDeadline(t time.Time) error { p.wd.set(t); return nil }

// deadline is a settable point in time whose passing closes a channel.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	expire chan struct{} // closed when the deadline passes
}

func newDeadline() *deadline { return &deadline{expire: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.expire // the timer fired: wait for its close to be visible
	}
	d.timer = nil
	select {
	case <-d.expire:
		d.expire = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	if dur := time.Until(t); dur > 0 {
		expire := d.expire
		d.timer = time.AfterFunc(dur, func() { close(expire) })
		return
	}
	close(d.expire)
}

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expire
}
