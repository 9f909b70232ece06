package mux

import (
	"io"
	"os"
	"sync"
	"time"
)

// chunkSize is the size of the largest pooled chunks stream receive
// buffers are made of: one full frame of ours or go-yamux's fits one, so
// a Noise connection decrypts straight into it. Smaller frames take
// smaller chunks (chunkSizes), so that a stream holding a few unread
// bytes holds a few KiB, not 64: memory, and the Budget, are counted in
// the chunks held.
const chunkSize = 64 << 10

// chunkSizes are the pooled chunk sizes, smallest first.
var chunkSizes = [...]int{2 << 10, 16 << 10, chunkSize}

var chunkPools [len(chunkSizes)]sync.Pool

func init() {
	for i, size := range chunkSizes {
		chunkPools[i].New = func() any {
			b := make([]byte, 0, size)
			return &b
		}
	}
}

// getChunk returns a chunk for n bytes: the smallest that holds them, or
// a full-size one.
func getChunk(n int) *[]byte {
	for i, size := range chunkSizes {
		if n <= size || i == len(chunkSizes)-1 {
			return chunkPools[i].Get().(*[]byte)
		}
	}
	panic("unreachable")
}

func putChunk(c *[]byte) {
	for i, size := range chunkSizes {
		if cap(*c) == size {
			*c = (*c)[:0]
			chunkPools[i].Put(c)
			return
		}
	}
}

// Stream is one yamux stream. Read and Write may be called concurrently
// with each other and with the closing methods.
//
// Unread data lives in pooled chunks (2, 16 or 64 KiB, by frame size),
// taken when data arrives and given back as soon as it has been read: an
// idle stream holds no buffer.
type Stream struct {
	sess    *Session
	id      uint32
	inbound bool

	wlock sync.Mutex // serialises Write calls, so their frames don't interleave

	// mu guards the fields below. Lock order: a stream's mu may be held
	// while taking its session's mu, never the other way round; the
	// session's write lock may be held while taking mu.
	mu    sync.Mutex
	rcond sync.Cond // on mu: data, FIN, reset, deadline, close
	wcond sync.Cond // on mu: window, reset, deadline, close

	// Receive side. Unread bytes are chunks[0][head:] followed by the
	// other chunks; the receive goroutine appends to the last chunk
	// without holding mu while filling is set, so that chunk must stay.
	chunks     []*[]byte
	head       int
	buffered   uint32
	filling    bool
	rcredit    uint32        // bytes the peer may still send
	rwin       uint32        // receive window size, auto-tuned
	lastUpdate time.Duration // when we last sent a window update, since session start
	finRecv    bool
	readClosed bool
	reserved   uint32 // rwin's growth beyond InitialWindow, taken from the session's MaxSessionRecv
	held       uint32 // capacity of chunks: the memory the buffer holds
	charged    uint32 // what held takes from the session's Budget (see charge)

	// Send side.
	swin    uint32 // bytes we may still send
	finSent bool

	err error // set when reset, by either side, or aborted by the session

	// Deadlines as stamps since the session's start (Session.stamp): 0
	// is none. Durations rather than time.Time keep an idle stream 48
	// bytes smaller.
	rdl, wdl time.Duration
	closeBy  time.Duration // when a stream we closed resets if the peer has not (CloseTimeout)
	dlTimer  *time.Timer   // fires at the earliest of those; nil while none is set
}

func newStream(s *Session, id uint32, inbound bool) *Stream {
	st := &Stream{
		sess:    s,
		id:      id,
		inbound: inbound,
		rcredit: InitialWindow,
		rwin:    InitialWindow,
		swin:    InitialWindow,
	}
	st.rcond.L = &st.mu
	st.wcond.L = &st.mu
	return st
}

// ID is the stream's yamux stream ID: odd if the client opened it.
func (st *Stream) ID() uint32 { return st.id }

// Read reads stream data. It returns io.EOF after the peer's FIN, an
// error wrapping ErrReset once the stream was reset (buffered data is
// then dropped, as go-yamux does) or the session ended, and
// os.ErrDeadlineExceeded past the read deadline.
func (st *Stream) Read(b []byte) (int, error) {
	st.mu.Lock()
	for {
		switch {
		case st.err != nil:
			err := st.err
			st.mu.Unlock()
			return 0, err
		case st.readClosed:
			st.mu.Unlock()
			return 0, ErrStreamClosed
		case st.rdl != 0 && st.sess.since() >= st.rdl:
			st.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		case st.buffered > 0:
			n := st.copyOut(b)
			if st.finRecv && st.buffered == 0 {
				st.releaseRecv() // nothing more can arrive
			}
			delta := st.windowUpdate()
			st.mu.Unlock()
			if delta > 0 {
				// Queued, never written here: a Read must not block on
				// the connection.
				st.sess.queueCtrl(Header{Type: TypeWindowUpdate, StreamID: st.id, Length: delta}, false)
			}
			return n, nil
		case st.finRecv:
			st.mu.Unlock()
			return 0, io.EOF
		case len(b) == 0:
			st.mu.Unlock()
			return 0, nil
		}
		st.rcond.Wait()
	}
}

// windowUpdate returns the window update to send after a read, or 0: an
// update is due once half of the window has been read. If the previous
// update went out less than four round trips ago, the window is the
// bottleneck and is doubled, up to MaxStreamWindow (go-yamux's rule), if
// the session's MaxSessionRecv has room for the growth; else the update
// only re-grants what was read. Called with mu held.
func (st *Stream) windowUpdate() uint32 {
	if st.finRecv || st.readClosed || st.err != nil {
		return 0
	}
	delta := st.rwin - st.rcredit - st.buffered
	if delta < st.rwin/2 {
		return 0
	}
	now := st.sess.since()
	if rtt := time.Duration(st.sess.rtt.Load()); rtt > 0 && st.lastUpdate > 0 &&
		now-st.lastUpdate < 4*rtt && st.rwin < st.sess.cfg.MaxStreamWindow {
		grown := uint32(min(uint64(st.rwin)*2, uint64(st.sess.cfg.MaxStreamWindow)))
		if grow := grown - st.rwin; st.sess.reserveRecv(grow) {
			delta += grow
			st.rwin = grown
			st.reserved += grow
		}
	}
	st.lastUpdate = now
	st.rcredit += delta
	return delta
}

// releaseRecv gives the window growth back to the session, once the
// stream can buffer no more data: windowUpdate grows nothing after that.
// Called with mu held.
func (st *Stream) releaseRecv() {
	if st.reserved > 0 {
		st.sess.recvReserved.Add(-int64(st.reserved))
		st.reserved = 0
	}
}

// copyOut moves buffered data to b, giving drained chunks back.
func (st *Stream) copyOut(b []byte) int {
	n := 0
	for n < len(b) && st.buffered > 0 {
		c := st.chunks[0]
		k := copy(b[n:], (*c)[st.head:])
		n += k
		st.head += k
		st.buffered -= uint32(k)
		if st.head < len(*c) {
			break
		}
		if len(st.chunks) == 1 {
			if !st.filling {
				st.dropChunks()
			}
			break
		}
		st.held -= uint32(cap(*c))
		putChunk(c)
		m := copy(st.chunks, st.chunks[1:])
		st.chunks[m] = nil
		st.chunks = st.chunks[:m]
		st.head = 0
	}
	st.uncharge()
	return n
}

// uncharge gives back to the Budget what the buffer no longer needs, once
// it shrank. Called with mu held.
func (st *Stream) uncharge() {
	if b := st.sess.cfg.Budget; b != nil {
		if want := charge(st.held); st.charged > want {
			b.Release(int64(st.charged - want))
			st.charged = want
		}
	}
}

// dropChunks gives back all chunks, except one the receive goroutine is
// filling; buffered data is gone.
func (st *Stream) dropChunks() {
	keep := 0
	if st.filling && len(st.chunks) > 0 {
		keep = 1
	}
	last := len(st.chunks) - keep
	for i := range last {
		st.held -= uint32(cap(*st.chunks[i]))
		putChunk(st.chunks[i])
		st.chunks[i] = nil
	}
	if keep == 1 {
		tail := st.chunks[last]
		st.chunks[last] = nil
		st.chunks[0] = tail
		st.head = len(*tail)
	} else {
		st.head = 0
	}
	st.chunks = st.chunks[:keep]
	if keep == 0 && cap(st.chunks) > 4 {
		st.chunks = nil
	}
	st.buffered = 0
	st.uncharge()
}

// tailSpace returns the chunk to receive into and its free space, at most
// max bytes, and marks it as being filled. A new chunk is charged to the
// session's Budget first; ok is false, and nothing taken, if the budget
// cannot cover it. Called with mu held.
func (st *Stream) tailSpace(max int) (c *[]byte, space []byte, ok bool) {
	if k := len(st.chunks); k > 0 && len(*st.chunks[k-1]) < cap(*st.chunks[k-1]) {
		c = st.chunks[k-1]
	} else {
		c = getChunk(max)
		held := st.held + uint32(cap(*c))
		if b := st.sess.cfg.Budget; b != nil {
			if want := charge(held); want > st.charged {
				if !b.Reserve(int64(want - st.charged)) {
					putChunk(c)
					return nil, nil, false
				}
				st.charged = want
			}
		}
		st.held = held
		st.chunks = append(st.chunks, c)
	}
	st.filling = true
	l := len(*c)
	return c, (*c)[l:min(cap(*c), l+max)], true
}

// commit makes n bytes received into c readable. Called with mu held.
func (st *Stream) commit(c *[]byte, n int) {
	*c = (*c)[:len(*c)+n]
	st.buffered += uint32(n)
	st.rcredit -= uint32(n)
	st.filling = false
	if st.err != nil || st.readClosed {
		st.dropChunks()
		return
	}
	st.rcond.Broadcast()
}

// Write writes stream data in frames of at most 64 KiB, each sent as soon
// as the peer's window allows, blocking while it is full. It fails with
// ErrStreamClosed after CloseWrite or Close, an error wrapping ErrReset
// once the stream was reset or the session ended, and
// os.ErrDeadlineExceeded past the write deadline (a frame already being
// written to a stalled connection is bounded by Config.WriteTimeout
// instead).
func (st *Stream) Write(b []byte) (int, error) {
	st.wlock.Lock()
	defer st.wlock.Unlock()
	total := 0
	for {
		if len(b) == 0 && total > 0 {
			return total, nil
		}
		st.mu.Lock()
		for {
			var err error
			switch {
			case st.err != nil:
				err = st.err
			case st.finSent:
				err = ErrStreamClosed
			case st.wdl != 0 && st.sess.since() >= st.wdl:
				err = os.ErrDeadlineExceeded
			case len(b) == 0:
				st.mu.Unlock()
				return total, nil
			}
			if err != nil {
				st.mu.Unlock()
				return total, err
			}
			if st.swin > 0 {
				break
			}
			st.wcond.Wait()
		}
		n := min(uint32(min(len(b), maxPayload)), st.swin)
		st.swin -= n
		st.mu.Unlock()
		if err := st.sess.writeFrame(&Header{Type: TypeData, StreamID: st.id, Length: n}, b[:n], st); err != nil {
			return total, err
		}
		total += int(n)
		b = b[n:]
	}
}

// sendable reports why data may no longer be sent, or nil.
func (st *Stream) sendable() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.err != nil:
		return st.err
	case st.finSent:
		return ErrStreamClosed
	}
	return nil
}

// CloseWrite half-closes the stream with a FIN: the peer reads EOF, and
// we can still read what it sends. The stream is freed once both sides
// have closed.
func (st *Stream) CloseWrite() error {
	st.mu.Lock()
	if st.finSent || st.err != nil {
		st.mu.Unlock()
		return nil
	}
	st.finSent = true
	done := st.finRecv
	st.wcond.Broadcast()
	if done {
		st.stopTimer()
	} else {
		st.awaitPeerClose()
	}
	st.mu.Unlock()
	st.sess.sendCtrl(Header{Type: TypeWindowUpdate, Flags: FlagFIN, StreamID: st.id})
	if done {
		st.sess.forget(st)
	}
	return nil
}

// Close closes our write side (FIN) and stops reading, as go-libp2p's
// Close does: unread and later data is dropped, without telling the
// peer, which normally closes too. The stream is freed when it does.
func (st *Stream) Close() error {
	st.mu.Lock()
	if st.err != nil {
		st.mu.Unlock()
		return nil
	}
	st.readClosed = true
	st.dropChunks()
	st.releaseRecv()
	sendFin := !st.finSent
	st.finSent = true
	done := st.finRecv
	st.rdl, st.wdl = 0, 0 // nothing more to read or write
	if done {
		st.stopTimer()
	} else {
		st.awaitPeerClose()
	}
	st.rcond.Broadcast()
	st.wcond.Broadcast()
	st.mu.Unlock()
	if sendFin {
		st.sess.sendCtrl(Header{Type: TypeWindowUpdate, Flags: FlagFIN, StreamID: st.id})
	}
	if done {
		st.sess.forget(st)
	}
	return nil
}

// Reset abandons the stream in both directions with a RST (code 0):
// local reads and writes fail with ErrReset at once. Reset never blocks:
// the RST is queued, so it may be called from a stream handler.
func (st *Stream) Reset() error { return st.ResetWithError(0) }

// ResetWithError is Reset with an error code in the RST, as go-libp2p's
// ResetWithError (see its stream error codes, e.g. 0x1001 protocol
// negotiation failed).
func (st *Stream) ResetWithError(code uint32) error {
	st.mu.Lock()
	if st.err != nil {
		st.mu.Unlock()
		return nil
	}
	st.err = &StreamError{Code: code}
	finished := st.finSent && st.finRecv // nothing left to abandon on the wire
	st.dropChunks()
	st.releaseRecv()
	st.stopTimer()
	st.rcond.Broadcast()
	st.wcond.Broadcast()
	st.mu.Unlock()
	if !finished {
		st.sess.queueCtrl(Header{Type: TypeWindowUpdate, Flags: FlagRST, StreamID: st.id, Length: code}, false)
	}
	st.sess.forget(st)
	return nil
}

// abort ends the stream because the session ended or could not open it.
func (st *Stream) abort(err error) {
	st.mu.Lock()
	if st.err == nil {
		st.err = err
	}
	st.dropChunks()
	st.releaseRecv()
	st.stopTimer()
	st.rcond.Broadcast()
	st.wcond.Broadcast()
	st.mu.Unlock()
}

// remoteFin records the peer's FIN.
func (st *Stream) remoteFin() {
	st.mu.Lock()
	if st.err != nil || st.finRecv {
		st.mu.Unlock()
		return
	}
	st.finRecv = true
	if st.buffered == 0 {
		st.releaseRecv()
	}
	if st.closeBy != 0 {
		st.closeBy = 0
		st.armTimer()
	}
	if st.finSent {
		// Freed before readers wake, so that a reader seeing EOF also
		// sees the stream gone.
		st.sess.forget(st)
		if st.readClosed {
			st.stopTimer()
		}
	}
	st.rcond.Broadcast()
	st.mu.Unlock()
}

// remoteReset records the peer's RST.
func (st *Stream) remoteReset(code uint32) {
	st.mu.Lock()
	if st.err == nil {
		st.err = &StreamError{Code: code, Remote: true}
	}
	st.dropChunks()
	st.releaseRecv()
	st.stopTimer()
	st.sess.forget(st)
	st.rcond.Broadcast()
	st.wcond.Broadcast()
	st.mu.Unlock()
}

// addSendWindow adds a window update's delta to the send window.
func (st *Stream) addSendWindow(delta uint32) {
	if delta == 0 {
		return
	}
	st.mu.Lock()
	st.swin = uint32(min(uint64(st.swin)+uint64(delta), 1<<32-1))
	st.wcond.Broadcast()
	st.mu.Unlock()
}

// SetDeadline sets the read and write deadlines.
func (st *Stream) SetDeadline(t time.Time) error {
	st.mu.Lock()
	st.rdl = st.sess.stamp(t)
	st.wdl = st.rdl
	st.deadlinesChanged()
	st.mu.Unlock()
	return nil
}

// SetReadDeadline sets the deadline of pending and future reads; a zero
// value clears it.
func (st *Stream) SetReadDeadline(t time.Time) error {
	st.mu.Lock()
	st.rdl = st.sess.stamp(t)
	st.deadlinesChanged()
	st.mu.Unlock()
	return nil
}

// SetWriteDeadline sets the deadline of pending and future writes; a zero
// value clears it.
func (st *Stream) SetWriteDeadline(t time.Time) error {
	st.mu.Lock()
	st.wdl = st.sess.stamp(t)
	st.deadlinesChanged()
	st.mu.Unlock()
	return nil
}

// deadlinesChanged wakes waiters to recheck their deadline, and arms the
// stream's one timer for the earlier future deadline. Called with mu held.
func (st *Stream) deadlinesChanged() {
	st.rcond.Broadcast()
	st.wcond.Broadcast()
	if st.err == nil {
		st.armTimer()
	}
}

// awaitPeerClose starts the wait for the peer's FIN after ours (mu held).
func (st *Stream) awaitPeerClose() {
	if d := st.sess.cfg.CloseTimeout; d > 0 && st.closeBy == 0 {
		st.closeBy = st.sess.since() + d
		st.armTimer()
	}
}

func (st *Stream) armTimer() {
	now := st.sess.since()
	var next time.Duration
	for _, t := range [3]time.Duration{st.rdl, st.wdl, st.closeBy} {
		if t > now && (next == 0 || t < next) {
			next = t
		}
	}
	switch {
	case next == 0:
		st.stopTimer()
	case st.dlTimer == nil:
		st.dlTimer = time.AfterFunc(next-now, st.deadlineFired)
	default:
		st.dlTimer.Reset(next - now)
	}
}

// stopTimer stops the deadline timer and lets it go: most streams have a
// deadline only while their protocol is negotiated, and an idle stream
// should not keep a timer for the rest of its life.
func (st *Stream) stopTimer() {
	if st.dlTimer != nil {
		st.dlTimer.Stop()
		st.dlTimer = nil
	}
}

// deadlineFired wakes waiters, which compare the clock to their deadline
// themselves, so a late or stale firing is harmless; and resets a stream
// whose peer did not close within CloseTimeout of our close.
func (st *Stream) deadlineFired() {
	st.mu.Lock()
	expired := st.err == nil && st.closeBy != 0 && st.sess.since() >= st.closeBy
	st.rcond.Broadcast()
	st.wcond.Broadcast()
	if !expired {
		st.armTimer()
	}
	st.mu.Unlock()
	if expired {
		st.sess.closeTimeouts.Add(1)
		st.Reset()
	}
}
