package mux

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// pipeBuffer bounds the bytes in flight in each direction of a test pipe,
// like a socket buffer.
const pipeBuffer = 128 << 10

// newPipe returns the two ends of a buffered in-memory connection: unlike
// net.Pipe, writes complete without a waiting reader up to pipeBuffer
// bytes, as on a socket, and deadlines work.
func newPipe() (*pipeConn, *pipeConn) {
	ab, ba := newPipeDir(), newPipeDir()
	return &pipeConn{r: ba, w: ab}, &pipeConn{r: ab, w: ba}
}

type pipeDir struct {
	mu      sync.Mutex
	cond    sync.Cond
	data    []byte
	wclosed bool // writer closed: reader gets EOF when drained
	rclosed bool // reader closed: writer fails
}

func newPipeDir() *pipeDir {
	d := &pipeDir{}
	d.cond.L = &d.mu
	return d
}

type pipeConn struct {
	r, w           *pipeDir
	dlMu           sync.Mutex
	rdl, wdl       time.Time
	rtimer, wtimer *time.Timer
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func (p *pipeConn) deadline(read bool) time.Time {
	p.dlMu.Lock()
	defer p.dlMu.Unlock()
	if read {
		return p.rdl
	}
	return p.wdl
}

func expired(t time.Time) bool { return !t.IsZero() && !time.Now().Before(t) }

func (p *pipeConn) Read(b []byte) (int, error) {
	d := p.r
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		switch {
		case d.rclosed:
			return 0, net.ErrClosed
		case expired(p.deadline(true)):
			return 0, os.ErrDeadlineExceeded
		case len(d.data) > 0:
			n := copy(b, d.data)
			d.data = d.data[n:]
			if len(d.data) == 0 {
				d.data = nil
			}
			d.cond.Broadcast()
			return n, nil
		case d.wclosed:
			return 0, io.EOF
		}
		d.cond.Wait()
	}
}

func (p *pipeConn) Write(b []byte) (int, error) {
	d := p.w
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for {
		switch {
		case d.wclosed:
			return n, net.ErrClosed
		case d.rclosed:
			return n, io.ErrClosedPipe
		case expired(p.deadline(false)):
			return n, os.ErrDeadlineExceeded
		case n == len(b):
			return n, nil
		case len(d.data) < pipeBuffer:
			k := min(len(b)-n, pipeBuffer-len(d.data))
			d.data = append(d.data, b[n:n+k]...)
			n += k
			d.cond.Broadcast()
			continue
		}
		d.cond.Wait()
	}
}

func (p *pipeConn) Close() error {
	for _, d := range []*pipeDir{p.r, p.w} {
		d.mu.Lock()
		if d == p.r {
			d.rclosed = true
			d.data = nil
		} else {
			d.wclosed = true
		}
		d.cond.Broadcast()
		d.mu.Unlock()
	}
	return nil
}

func (p *pipeConn) LocalAddr() net.Addr  { return pipeAddr{} }
func (p *pipeConn) RemoteAddr() net.Addr { return pipeAddr{} }

func (p *pipeConn) SetDeadline(t time.Time) error {
	p.SetReadDeadline(t)
	return p.SetWriteDeadline(t)
}

func (p *pipeConn) SetReadDeadline(t time.Time) error {
	p.setDeadline(&p.rdl, &p.rtimer, t, p.r)
	return nil
}

func (p *pipeConn) SetWriteDeadline(t time.Time) error {
	p.setDeadline(&p.wdl, &p.wtimer, t, p.w)
	return nil
}

func (p *pipeConn) setDeadline(dl *time.Time, timer **time.Timer, t time.Time, d *pipeDir) {
	wake := func() {
		d.mu.Lock()
		d.cond.Broadcast()
		d.mu.Unlock()
	}
	p.dlMu.Lock()
	*dl = t
	if *timer != nil {
		(*timer).Stop()
		*timer = nil
	}
	if !t.IsZero() {
		*timer = time.AfterFunc(time.Until(t), wake)
	}
	p.dlMu.Unlock()
	wake()
}
