package transport

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mote-p2p/mote/wire"
)

// lazySelect is an optimistic multistream selection of one protocol: the
// proposal travels with the first write and the answer is read before the
// first read, so a peer known to support the protocol costs no extra round
// trip. Only safe when the peer is known to accept proto: after a refusal
// the bytes already sent are garbage to it.
type lazySelect struct {
	proto string

	wmu   sync.Mutex
	wrote atomic.Bool

	rmu      sync.Mutex
	answered atomic.Bool
	rerr     error // answer of the peer; set before answered is
}

// write sends b, preceded by the proposal the first time.
func (l *lazySelect) write(w io.Writer, b []byte) (int, error) {
	if l.wrote.Load() {
		return w.Write(b)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.wrote.Load() {
		return w.Write(b)
	}
	buf := wire.AppendSelect(make([]byte, 0, 64+len(b)), l.proto)
	hdr := len(buf)
	n, err := w.Write(append(buf, b...))
	if n >= hdr || err == nil {
		l.wrote.Store(true)
	}
	return max(n-hdr, 0), err
}

// flush sends the proposal alone if nothing has been written yet, for
// protocols where the opener only reads or closes.
func (l *lazySelect) flush(w io.Writer) error {
	if l.wrote.Load() {
		return nil // a write after CloseWrite fails on QUIC, even an empty one
	}
	_, err := l.write(w, nil)
	return err
}

// read reads the peer's answer the first time, then data.
func (l *lazySelect) read(w io.Writer, r io.Reader, b []byte) (int, error) {
	if !l.answered.Load() {
		if err := l.flush(w); err != nil {
			return 0, err
		}
		l.rmu.Lock()
		if !l.answered.Load() {
			l.rerr = wire.ReadSelectResponse(r, l.proto)
			l.answered.Store(true)
		}
		l.rmu.Unlock()
	}
	if l.rerr != nil {
		return 0, l.rerr
	}
	return r.Read(b)
}

// LazyStream wraps s so that proto is proposed with the first write and
// the answer read before the first read. Use it only for protocols the
// peer is known to support (from identify).
func LazyStream(s Stream, proto string) Stream {
	return &lazyStream{s: s, sel: lazySelect{proto: proto}}
}

type lazyStream struct {
	s   Stream
	sel lazySelect
}

func (l *lazyStream) Read(b []byte) (int, error)  { return l.sel.read(l.s, l.s, b) }
func (l *lazyStream) Write(b []byte) (int, error) { return l.sel.write(l.s, b) }

// Close sends the proposal if it was never sent, so that the peer's
// handler sees the protocol and a clean end.
func (l *lazyStream) Close() error {
	if err := l.sel.flush(l.s); err != nil {
		l.s.Reset()
		return err
	}
	return l.s.Close()
}

func (l *lazyStream) CloseWrite() error {
	if err := l.sel.flush(l.s); err != nil {
		return err
	}
	return l.s.CloseWrite()
}

func (l *lazyStream) Reset() error                       { return l.s.Reset() }
func (l *lazyStream) SetDeadline(t time.Time) error      { return l.s.SetDeadline(t) }
func (l *lazyStream) SetReadDeadline(t time.Time) error  { return l.s.SetReadDeadline(t) }
func (l *lazyStream) SetWriteDeadline(t time.Time) error { return l.s.SetWriteDeadline(t) }
