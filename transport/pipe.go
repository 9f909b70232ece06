package transport

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// pipeBufferSize bounds the bytes in flight in each direction of a memory
// connection, like a socket buffer.
const pipeBufferSize = 256 << 10

// newPipe returns the two ends of a buffered in-memory connection. Unlike
// net.Pipe, writes complete without a waiting reader (up to the buffer
// size), so both ends may write at once as on a real socket.
func newPipe() (*pipeEnd, *pipeEnd) {
	ab, ba := newPipeDir(), newPipeDir()
	return &pipeEnd{r: ba, w: ab, rd: newDeadline(), wd: newDeadline()},
		&pipeEnd{r: ab, w: ba, rd: newDeadline(), wd: newDeadline()}
}

// pipeDir is one direction of a pipe.
type pipeDir struct {
	mu           sync.Mutex
	data         []byte
	writerClosed bool          // reader sees EOF once data is drained
	readerClosed bool          // writer sees an error
	readable     chan struct{} // signalled when data or EOF arrive
	writable     chan struct{} // signalled when space frees or the reader leaves
}

func newPipeDir() *pipeDir {
	return &pipeDir{readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

type pipeEnd struct {
	r, w   *pipeDir
	rd, wd *deadline
	once   sync.Once
	closed chan struct{}
	init   sync.Once
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
		if len(d.data) > 0 {
			n := copy(b, d.data)
			d.data = d.data[n:]
			if len(d.data) == 0 {
				d.data = nil // an idle connection keeps no buffer
			}
			d.mu.Unlock()
			signal(d.writable)
			return n, nil
		}
		eof := d.writerClosed
		d.mu.Unlock()
		if eof {
			return 0, io.EOF
		}
		select {
		case <-d.readable:
		case <-p.rd.wait():
			return 0, os.ErrDeadlineExceeded
		case <-p.done():
			return 0, net.ErrClosed
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
		d.data = append(d.data, b[:n]...)
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
		p.w.mu.Lock()
		p.w.writerClosed = true
		p.w.mu.Unlock()
		signal(p.w.readable)
		p.r.mu.Lock()
		p.r.readerClosed = true
		p.r.data = nil
		p.r.mu.Unlock()
		signal(p.r.writable)
	})
	return nil
}

func (p *pipeEnd) LocalAddr() net.Addr  { return memAddr(0) }
func (p *pipeEnd) RemoteAddr() net.Addr { return memAddr(0) }

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
