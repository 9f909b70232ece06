package transport

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mote-p2p/mote/mux"
	"github.com/mote-p2p/mote/wire"
)

// AnswerWait bounds how long CloseWrite and Close of a lazily negotiated
// stream wait for the peer's answer when the caller set no earlier read
// deadline. It is go-libp2p's DefaultNegotiationTimeout: a listener that
// has not answered by then has given up on the stream itself.
const AnswerWait = 10 * time.Second

// coalesceMax is the largest first write copied into one buffer behind
// the proposal, so that a small request travels in one frame; a larger
// one follows the proposal in its own write rather than being copied.
const coalesceMax = 16 << 10

// States of the proposal.
const (
	propUnsent  uint32 = iota // nothing written yet
	propSending               // a write carrying the proposal is under way
	propSent                  // the proposal is on the wire
	propFailed                // writing the proposal failed; the stream is dead
)

// Actions a close leaves to the goroutine reading the answer.
const (
	pendingNone uint32 = iota
	pendingCloseWrite
	pendingClose
)

// lazySelect is an optimistic multistream selection of one protocol: the
// proposal travels with the first write and the answer is read before the
// first read, so a peer known to support the protocol costs no extra round
// trip. Only safe when the peer is known to accept proto: after a refusal
// the bytes already sent are garbage to it, so the stream is then killed.
//
// The write side and the read side never wait for each other's lock: a
// write that carries the proposal may block for as long as the peer takes
// to drain it (a first write of megabytes), and the answer may only be
// readable after the peer's reply to those bytes is read. A read that
// finds the proposal being written goes straight to reading the answer.
//
// The FIN of our side is never sent before the answer has arrived:
// js-libp2p 3.x loses track of a stream whose FIN reaches it while it is
// still negotiating (the handler never sees the end), and over QUIC a
// Close (STOP_SENDING) before the answer makes the peer's answer fail.
type lazySelect struct {
	proto   string
	kill    func()              // resets or closes what the selection runs on
	closeFn func(action uint32) // a close left for after the answer

	wmu    sync.Mutex // held by the one write that carries the proposal
	wstate atomic.Uint32
	werr   error // why the proposal could not be sent; set before propFailed

	rmu      sync.Mutex // held while reading the answer
	answered atomic.Bool
	rerr     error // the peer's answer; set before answered is

	pending atomic.Uint32 // a close waiting for the answer's reader
}

// write sends b, preceded by the proposal the first time.
func (l *lazySelect) write(w io.Writer, b []byte) (int, error) {
	if l.wstate.Load() == propSent {
		if l.answered.Load() && l.rerr != nil {
			return 0, l.rerr
		}
		return w.Write(b)
	}
	l.wmu.Lock()
	switch l.wstate.Load() {
	case propSent:
		l.wmu.Unlock()
		return l.write(w, b)
	case propFailed:
		l.wmu.Unlock()
		return 0, l.werr
	}
	l.wstate.Store(propSending)
	n, err := l.sendProposal(w, b)
	l.wmu.Unlock()
	if err != nil && l.answered.Load() && l.rerr != nil {
		err = l.rerr // the refusal, not the reset it caused
	}
	return n, err
}

// sendProposal writes the proposal with as much of b as it coalesces,
// then the rest of b; wmu is held and the state is propSending. It sets
// the state to propSent once the proposal is out, or propFailed (killing
// the stream, whose reader may be waiting for an answer) if it is not.
func (l *lazySelect) sendProposal(w io.Writer, b []byte) (int, error) {
	head := b
	if len(head) > coalesceMax {
		head = nil
	}
	buf := wire.AppendSelect(make([]byte, 0, 64+len(head)), l.proto)
	hdr := len(buf)
	n, err := w.Write(append(buf, head...))
	if n < hdr {
		if err == nil {
			err = io.ErrShortWrite
		}
		l.werr = fmt.Errorf("multistream: writing proposal %q: %w", l.proto, err)
		l.wstate.Store(propFailed)
		l.kill()
		return 0, l.werr
	}
	l.wstate.Store(propSent)
	n -= hdr
	if err != nil || len(head) == len(b) {
		return n, err
	}
	return w.Write(b)
}

// flush makes sure the proposal is sent, for an opener that only reads
// or closes; it waits for a write that is sending it.
func (l *lazySelect) flush(w io.Writer) error {
	switch l.wstate.Load() {
	case propSent:
		return nil // an empty write after CloseWrite would fail
	case propFailed:
		return l.werr
	}
	_, err := l.write(w, nil)
	return err
}

// startAnswer makes sure the proposal is on its way before the answer is
// awaited, without waiting for a write that is already sending it.
func (l *lazySelect) startAnswer(w io.Writer) error {
	if l.wstate.Load() != propUnsent || !l.wmu.TryLock() {
		if l.wstate.Load() == propFailed {
			return l.werr
		}
		return nil // a write holds wmu: the proposal leads its bytes
	}
	var err error
	if l.wstate.Load() == propUnsent {
		l.wstate.Store(propSending)
		_, err = l.sendProposal(w, nil)
	} else if l.wstate.Load() == propFailed {
		err = l.werr
	}
	l.wmu.Unlock()
	return err
}

// readAnswer reads the answer once; rmu is held. A refusal or a broken
// answer kills the stream, which is useless to both sides afterwards.
func (l *lazySelect) readAnswer(r io.Reader) {
	err := wire.ReadSelectResponse(r, l.proto)
	switch {
	case err == nil:
	case l.wstate.Load() == propFailed:
		err = l.werr
	case errors.Is(err, mux.ErrReset):
		// Listeners reset after refusing when our data follows, and the
		// reset drops the buffered "na": say what it likely was.
		err = fmt.Errorf("multistream: peer reset the stream before answering %q (it may not support it): %w", l.proto, err)
	}
	l.rerr = err
	l.answered.Store(true)
	if err != nil {
		l.kill()
	}
}

// read reads the peer's answer the first time, then data.
func (l *lazySelect) read(w io.Writer, r io.Reader, b []byte) (int, error) {
	if !l.answered.Load() {
		if err := l.startAnswer(w); err != nil {
			return 0, err
		}
		l.rmu.Lock()
		if !l.answered.Load() {
			l.readAnswer(r)
		}
		l.rmu.Unlock()
		// Before waiting for data: the peer may wait for our FIN.
		l.runPending()
	}
	if l.rerr != nil {
		return 0, l.rerr
	}
	return r.Read(b)
}

// runPending carries out a close left for after the answer, once.
func (l *lazySelect) runPending() {
	if l.pending.Load() == pendingNone {
		return
	}
	if p := l.pending.Swap(pendingNone); p != pendingNone && l.rerr == nil {
		l.closeFn(p) // after a refusal, readAnswer has killed the stream
	}
}

// markPending leaves a close to the goroutine reading the answer; a
// Close outranks a CloseWrite.
func (l *lazySelect) markPending(action uint32) {
	for {
		old := l.pending.Load()
		if old >= action || l.pending.CompareAndSwap(old, action) {
			return
		}
	}
}

// awaitAnswer gets the answer before a close: it reads it itself, with
// setDeadline bounding the read, or, when another goroutine is reading
// it, leaves the close (action) to that goroutine and reports handed
// true. err is the answer's error or why it could not be had.
func (l *lazySelect) awaitAnswer(w io.Writer, r io.Reader, action uint32, setDeadline func(bool)) (handed bool, err error) {
	if err := l.flush(w); err != nil {
		return false, err
	}
	if !l.answered.Load() {
		if !l.rmu.TryLock() {
			// Whichever of us sees the other's mark does the close:
			// the reader after setting answered, or we after marking.
			l.markPending(action)
			if l.answered.Load() {
				l.runPending()
			}
			return true, nil
		}
		if !l.answered.Load() {
			setDeadline(true)
			l.readAnswer(r)
			setDeadline(false)
		}
		l.rmu.Unlock()
		l.runPending() // another close that came while we read
	}
	return false, l.rerr
}

// LazyStream wraps s so that proto is proposed with the first write and
// the answer read before the first read. Use it only for protocols the
// peer is known to support (from identify). A refusal (or a proposal that
// cannot be sent) resets s and is the error of every later call. Close
// and CloseWrite send the FIN only once the peer has answered, reading
// the answer themselves if no Read is doing so (at most AnswerWait), so
// set deadlines on the returned stream, not on s.
func LazyStream(s Stream, proto string) Stream {
	l := &lazyStream{s: s}
	l.sel = lazySelect{proto: proto, kill: func() { s.Reset() }, closeFn: l.finishClose}
	return l
}

type lazyStream struct {
	s   Stream
	sel lazySelect

	dmu sync.Mutex
	rdl time.Time // the caller's read deadline
}

func (l *lazyStream) Read(b []byte) (int, error)  { return l.sel.read(l.s, l.s, b) }
func (l *lazyStream) Write(b []byte) (int, error) { return l.sel.write(l.s, b) }

// finishClose carries out a close that waited for the answer.
func (l *lazyStream) finishClose(action uint32) {
	if action == pendingClose {
		l.s.Close()
		return
	}
	l.s.CloseWrite()
}

// answerDeadline bounds the answer's read during a close by AnswerWait
// or the caller's earlier read deadline, and restores the latter after.
func (l *lazyStream) answerDeadline(set bool) {
	l.dmu.Lock()
	defer l.dmu.Unlock()
	if !set {
		l.s.SetReadDeadline(l.rdl)
		return
	}
	dl := time.Now().Add(AnswerWait)
	if !l.rdl.IsZero() && l.rdl.Before(dl) {
		dl = l.rdl
	}
	l.s.SetReadDeadline(dl)
}

// closeAfterAnswer runs a close once the answer is in (action says
// which), unless the goroutine reading the answer took it over.
func (l *lazyStream) closeAfterAnswer(action uint32, do func() error) error {
	handed, err := l.sel.awaitAnswer(l.s, l.s, action, l.answerDeadline)
	switch {
	case handed:
		return nil
	case err != nil:
		l.s.Reset() // a refusal was reset already; a timeout is not
		return err
	}
	return do()
}

// CloseWrite sends our FIN once the peer has answered the proposal.
func (l *lazyStream) CloseWrite() error {
	return l.closeAfterAnswer(pendingCloseWrite, l.s.CloseWrite)
}

// Close closes both directions once the peer has answered the proposal,
// so that the peer's handler sees the protocol and a clean end.
func (l *lazyStream) Close() error {
	return l.closeAfterAnswer(pendingClose, l.s.Close)
}

func (l *lazyStream) Reset() error { return l.s.Reset() }

func (l *lazyStream) SetDeadline(t time.Time) error {
	l.dmu.Lock()
	defer l.dmu.Unlock()
	l.rdl = t
	return l.s.SetDeadline(t)
}

func (l *lazyStream) SetReadDeadline(t time.Time) error {
	l.dmu.Lock()
	defer l.dmu.Unlock()
	l.rdl = t
	return l.s.SetReadDeadline(t)
}

func (l *lazyStream) SetWriteDeadline(t time.Time) error { return l.s.SetWriteDeadline(t) }
