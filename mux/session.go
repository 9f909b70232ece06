package mux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxPayload is the largest Data payload we put in one frame. go-yamux
// accepts any length up to the window; 64 KiB makes a 64 KiB application
// write one frame and one Write on the connection.
const maxPayload = 64 << 10

// maxCtrl bounds the control queue, in bytes (1024 frames). It fills only
// if the peer keeps sending frames that need an answer while not reading
// ours; ping answers beyond it are dropped (as go-yamux does), and any
// other frame beyond it ends the session.
const maxCtrl = 1024 * HeaderSize

// goAwayTimeout bounds the write of the GoAway frame that precedes closing
// a session on a protocol error.
const goAwayTimeout = time.Second

// writeBufs holds buffers for one frame write: queued control frames, a
// header and up to maxPayload bytes, so every frame is a single Write on
// the connection (a Noise connection seals each Write separately).
var writeBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, maxCtrl+HeaderSize+maxPayload)
	return &b
}}

// Session is a yamux session over one connection (usually a secured one).
// Its methods are safe for concurrent use.
type Session struct {
	conn   net.Conn
	cfg    Config
	client bool
	start  time.Time // origin of the monotonic stamps below

	// Receive goroutine only.
	hdr [HeaderSize]byte

	frames atomic.Uint64 // frames received, to tell a live peer from a dead one

	closeTimeouts atomic.Uint64 // streams reset for want of the peer's FIN (CloseTimeout)
	rtt           atomic.Int64  // last measured round-trip time, ns; 0 if unknown
	ended         atomic.Bool   // mirrors closed, for lock-free checks

	// recvReserved is the window growth streams hold, in bytes, at most
	// cfg.MaxSessionRecv; see reserveRecv.
	recvReserved atomic.Int64

	// wmu serialises frames on the connection. It is held for exactly one
	// Write call, never by the receive goroutine.
	wmu sync.Mutex
	wdl time.Duration // write deadline set on conn, since start; under wmu

	// ctrlMu guards the control queue. It is a leaf lock.
	ctrlMu   sync.Mutex
	ctrl     []byte // encoded control frames waiting for a writer
	flushing bool   // a flush goroutine is running

	mu           sync.Mutex
	acceptCond   sync.Cond // on mu: acceptQ grew or session closed
	streams      map[uint32]*Stream
	nextID       uint32
	inbound      uint32 // streams in streams that the peer opened
	acceptQ      []*Stream
	handler      func(*Stream)
	onClose      func()
	closed       bool
	recvDone     bool // receive goroutine has exited
	err          error
	streamErr    error // error of streams aborted by the session's end
	remoteGoAway bool
	pingSeq      uint32
	userPing     *pingCall
	ka           *time.Timer   // keepalive; nil when disabled or closed
	kaDue        time.Duration // when ka is meant to act, since start
	kaWaiting    bool          // a keepalive ping is unanswered
	kaID         uint32
	kaSent       time.Duration
	kaFrames     uint64 // frames received when the ping was sent

	done chan struct{}
}

// pingCall is a Ping in flight; concurrent Ping calls share it.
type pingCall struct {
	id   uint32
	sent time.Duration
	rtt  time.Duration // set before done is closed
	done chan struct{}
}

// Client starts a session as the dialing side (odd stream IDs).
func Client(conn net.Conn, cfg Config) (*Session, error) {
	return newSession(conn, cfg, true)
}

// Server starts a session as the listening side (even stream IDs).
func Server(conn net.Conn, cfg Config) (*Session, error) {
	return newSession(conn, cfg, false)
}

func newSession(conn net.Conn, cfg Config, client bool) (*Session, error) {
	if conn == nil {
		return nil, errors.New("yamux: nil connection")
	}
	s := &Session{
		conn:   conn,
		cfg:    cfg.withDefaults(),
		client: client,
		start:  time.Now(),
		nextID: 2,
		done:   make(chan struct{}),
	}
	if client {
		s.nextID = 1
	}
	s.acceptCond.L = &s.mu
	if s.cfg.KeepAlive > 0 {
		// The first ping goes out at once: go-yamux does the same, and the
		// round-trip time drives window auto-tuning.
		s.mu.Lock()
		s.ka = time.AfterFunc(0, s.keepalive)
		s.mu.Unlock()
	}
	go s.recvLoop()
	return s, nil
}

// since is the monotonic time since the session started.
func (s *Session) since() time.Duration { return time.Since(s.start) }

// stamp turns a deadline into a stamp since the session's start: 0 for
// none, and at least 1 for one already past (before the session began).
func (s *Session) stamp(t time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return max(t.Sub(s.start), 1)
}

// OpenStream opens a new stream, announcing it to the peer with a
// WindowUpdate+SYN frame, as go-yamux does. Yamux opens without a round
// trip: data may be written at once. ctx is only checked on entry.
func (s *Session) OpenStream(ctx context.Context) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return nil, fmt.Errorf("yamux open stream: %w", s.err)
	case s.remoteGoAway:
		s.mu.Unlock()
		return nil, ErrRemoteGoAway
	case len(s.streams) >= s.cfg.MaxStreams:
		s.mu.Unlock()
		return nil, fmt.Errorf("%w (MaxStreams=%d)", ErrStreamLimit, s.cfg.MaxStreams)
	case s.nextID >= math.MaxUint32-1:
		s.mu.Unlock()
		return nil, ErrStreamsExhausted
	}
	st := newStream(s, s.nextID, false)
	s.nextID += 2
	if s.streams == nil {
		s.streams = make(map[uint32]*Stream)
	}
	s.streams[st.id] = st
	s.mu.Unlock()
	if err := s.writeFrame(&Header{Type: TypeWindowUpdate, Flags: FlagSYN, StreamID: st.id}, nil, nil); err != nil {
		st.abort(err)
		s.forget(st)
		return nil, fmt.Errorf("yamux open stream: %w", err)
	}
	return st, nil
}

// AcceptStream waits for the next inbound stream. Inbound streams are
// acknowledged as they arrive, whether or not they are accepted yet, so
// a go-yamux peer never stalls waiting for ACKs; at most AcceptBacklog
// wait here. With a stream handler set, AcceptStream only returns streams
// that were queued before the handler was set, then waits for the end.
func (s *Session) AcceptStream() (*Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.acceptQ) == 0 {
		if s.closed {
			return nil, fmt.Errorf("yamux accept stream: %w", s.err)
		}
		s.acceptCond.Wait()
	}
	st := s.acceptQ[0]
	n := copy(s.acceptQ, s.acceptQ[1:])
	s.acceptQ[n] = nil
	s.acceptQ = s.acceptQ[:n]
	return st, nil
}

// SetStreamHandler hands every new inbound stream to h instead of queuing
// it for AcceptStream, which saves a goroutine blocked in AcceptStream
// per session. h is called on the session's receive goroutine: it must
// not block (start a goroutine for anything that reads or writes), or the
// whole session stalls. Streams already queued are handed to h at once,
// on the caller's goroutine, so h may run concurrently with itself. h is
// never called after Done is closed.
func (s *Session) SetStreamHandler(h func(*Stream)) {
	s.mu.Lock()
	s.handler = h
	queued := s.acceptQ
	s.acceptQ = nil
	s.mu.Unlock()
	if h == nil {
		return
	}
	for _, st := range queued {
		h(st)
	}
}

// OnClose arranges for f to be called once the session has ended and its
// receive goroutine is done, right after Done is closed; so f runs after
// the last call of the stream handler. f runs on the receive goroutine,
// or at once on the caller's goroutine if the session has already ended.
// Several functions may be registered; they run in order.
func (s *Session) OnClose(f func()) {
	s.mu.Lock()
	if s.recvDone {
		s.mu.Unlock()
		f()
		return
	}
	if prev := s.onClose; prev != nil {
		s.onClose = func() { prev(); f() }
	} else {
		s.onClose = f
	}
	s.mu.Unlock()
}

// Close ends the session and closes the connection. As go-yamux, it sends
// no GoAway: the peer sees the connection end. Blocked calls on the
// session and its streams return; Done is closed once the receive
// goroutine has noticed.
func (s *Session) Close() error {
	s.shutdown(nil, false, 0)
	return nil
}

// CloseTimeouts counts the streams reset because the peer did not close
// them within Config.CloseTimeout of our close.
func (s *Session) CloseTimeouts() uint64 { return s.closeTimeouts.Load() }

// IsClosed reports whether the session has ended (or is ending).
func (s *Session) IsClosed() bool { return s.ended.Load() }

// Done is closed when the session has ended and its receive goroutine has
// exited.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why the session ended, wrapping ErrSessionClosed (and the cause:
// ErrProtocol, *GoAwayError, ErrKeepAliveTimeout, a connection error); nil
// while it is open.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// NumStreams is the number of open streams, including streams we closed
// whose peer has not closed yet.
func (s *Session) NumStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// RecvReserved is how many bytes of Config.MaxSessionRecv the streams'
// receive windows have grown by, as granted to the peer and not given
// back yet.
func (s *Session) RecvReserved() int { return int(s.recvReserved.Load()) }

// reserveRecv takes n bytes of window growth from MaxSessionRecv, all or
// nothing. A stream calls it only when its window doubles, never per
// frame, and gives the bytes back with Stream.releaseRecv.
func (s *Session) reserveRecv(n uint32) bool {
	budget := int64(max(s.cfg.MaxSessionRecv, 0))
	for {
		cur := s.recvReserved.Load()
		if cur+int64(n) > budget {
			return false
		}
		if s.recvReserved.CompareAndSwap(cur, cur+int64(n)) {
			return true
		}
	}
}

// Ping sends a yamux ping and returns the round-trip time. It fails after
// WriteTimeout without an answer. Concurrent calls share one ping.
func (s *Session) Ping() (time.Duration, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, fmt.Errorf("yamux ping: %w", s.err)
	}
	p := s.userPing
	send := p == nil
	if send {
		s.pingSeq++
		p = &pingCall{id: s.pingSeq, sent: s.since(), done: make(chan struct{})}
		s.userPing = p
	}
	s.mu.Unlock()
	if send {
		if err := s.writeFrame(&Header{Type: TypePing, Flags: FlagSYN, Length: p.id}, nil, nil); err != nil {
			return 0, fmt.Errorf("yamux ping: %w", err)
		}
	}
	t := time.NewTimer(s.cfg.WriteTimeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.rtt, nil
	case <-s.done:
		return 0, fmt.Errorf("yamux ping: %w", s.Err())
	case <-t.C:
		s.mu.Lock()
		if s.userPing == p {
			s.userPing = nil
		}
		s.mu.Unlock()
		return 0, fmt.Errorf("yamux ping: no answer within %v: %w", s.cfg.WriteTimeout, errPingTimeout)
	}
}

var errPingTimeout = errors.New("ping timeout")

// keepalive runs on the keepalive timer. It alternates between sending a
// ping (then waiting WriteTimeout) and, when the wait ends without an
// answer, checking whether the peer sent anything at all: a peer busy
// sending data may answer late, but a silent one is gone.
func (s *Session) keepalive() {
	s.mu.Lock()
	if s.closed || s.ka == nil {
		s.mu.Unlock()
		return
	}
	now := s.since()
	if now < s.kaDue { // an earlier schedule firing late
		s.ka.Reset(s.kaDue - now)
		s.mu.Unlock()
		return
	}
	if s.kaWaiting {
		if s.frames.Load() == s.kaFrames {
			s.mu.Unlock()
			s.shutdown(ErrKeepAliveTimeout, false, 0)
			return
		}
		s.kaWaiting = false
		s.kaDue = now + s.cfg.KeepAlive
		s.ka.Reset(s.cfg.KeepAlive)
		s.mu.Unlock()
		return
	}
	s.pingSeq++
	id := s.pingSeq
	s.kaWaiting, s.kaID, s.kaSent, s.kaFrames = true, id, now, s.frames.Load()
	s.kaDue = now + s.cfg.WriteTimeout
	s.ka.Reset(s.cfg.WriteTimeout)
	s.mu.Unlock()
	// This is the timer's own short-lived goroutine: it may block on the
	// write, which the connection's write deadline bounds.
	s.writeFrame(&Header{Type: TypePing, Flags: FlagSYN, Length: id}, nil, nil)
}

// shutdown ends the session once: it records why, stops the keepalive,
// optionally sends a GoAway (only the receive goroutine may ask for one),
// closes the connection and aborts all streams. It never blocks on the
// network beyond goAwayTimeout.
func (s *Session) shutdown(cause error, goAway bool, code uint32) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.ended.Store(true)
	switch {
	case cause == nil || errors.Is(cause, net.ErrClosed):
		s.err = ErrSessionClosed
	case errors.Is(cause, io.EOF):
		s.err = fmt.Errorf("%w: connection closed by peer", ErrSessionClosed)
	default:
		s.err = fmt.Errorf("%w: %w", ErrSessionClosed, cause)
	}
	s.streamErr = fmt.Errorf("yamux: %w: %w", ErrReset, s.err)
	streams := s.streams
	s.streams = nil
	s.acceptQ = nil
	ka := s.ka
	s.ka = nil
	s.mu.Unlock()

	if ka != nil {
		ka.Stop()
	}
	s.acceptCond.Broadcast()
	if goAway {
		// Only the receive goroutine asks for a GoAway, and it never holds
		// wmu. The deadline bounds the write in progress, if any; writers
		// waiting for wmu see the session ended and do not write.
		s.conn.SetWriteDeadline(time.Now().Add(min(goAwayTimeout, s.cfg.WriteTimeout)))
		s.wmu.Lock()
		var b [HeaderSize]byte
		s.conn.Write(Header{Type: TypeGoAway, Length: code}.Append(b[:0]))
		s.wmu.Unlock()
	}
	s.conn.Close()
	for _, st := range streams {
		st.abort(s.streamErr)
	}
}

// forget removes a finished stream from the session.
func (s *Session) forget(st *Stream) {
	s.mu.Lock()
	if s.streams[st.id] == st {
		delete(s.streams, st.id)
		if st.inbound {
			s.inbound--
		}
		if len(s.streams) == 0 {
			s.streams = nil // Go maps never shrink; drop it, a new one is cheap
		}
	}
	s.mu.Unlock()
}

func (s *Session) sessionStreamErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streamErr != nil {
		return s.streamErr
	}
	return fmt.Errorf("yamux: %w: %w", ErrReset, ErrSessionClosed)
}

// ---------------------------------------------------------------------------
// Writing

// writeFrame writes queued control frames, then h (if not nil) and body,
// in one Write on the connection. If st is not nil the frame is st's data
// and is left out if st was closed or reset meanwhile (its FIN or RST may
// be among the control frames just taken: data must never follow them).
func (s *Session) writeFrame(h *Header, body []byte, st *Stream) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeLocked(h, body, st)
}

// writeLocked is writeFrame with wmu held.
func (s *Session) writeLocked(h *Header, body []byte, st *Stream) error {
	bp := writeBufs.Get().(*[]byte)
	buf := s.takeCtrl((*bp)[:0])
	var err error
	if st != nil {
		err = st.sendable()
	}
	var split []byte
	if err == nil && h != nil {
		buf = h.Append(buf)
		// buf is at most maxCtrl+HeaderSize bytes, within one Noise frame.
		if _, ok := s.conn.(splitWriter); ok && len(body) >= splitMin {
			split = body
		} else {
			buf = append(buf, body...)
		}
	}
	if len(buf) > 0 {
		if werr := s.send(buf, split); werr != nil {
			err = werr
		}
	}
	*bp = buf[:0]
	writeBufs.Put(bp)
	return err
}

// splitWriter is a connection that can write a frame header apart from
// its payload (noise.Conn), so that the payload is not copied behind the
// header here, nor, on the peer, out of the secure channel's buffer.
type splitWriter interface {
	WriteSplit(head, body []byte) (int, error)
}

// splitMin is the smallest payload written apart from its header: below
// it, the copy costs less than the secure channel's per-frame overhead.
const splitMin = 4 << 10

// send writes buf, then body if not nil (with WriteSplit), on the
// connection, with wmu held. The write deadline is
// pushed WriteTimeout ahead, but only once half of it has passed, which
// keeps deadline updates rare on a busy session. A failed write ends the
// session: a partial frame cannot be taken back.
func (s *Session) send(buf, body []byte) error {
	if s.ended.Load() {
		return s.sessionStreamErr()
	}
	if now := s.since(); now+s.cfg.WriteTimeout/2 > s.wdl {
		s.wdl = now + s.cfg.WriteTimeout
		s.conn.SetWriteDeadline(s.start.Add(s.wdl))
	}
	var err error
	if body != nil {
		_, err = s.conn.(splitWriter).WriteSplit(buf, body)
	} else {
		_, err = s.conn.Write(buf)
	}
	if err != nil {
		s.shutdown(fmt.Errorf("write: %w", err), false, 0)
		return s.sessionStreamErr()
	}
	return nil
}

// takeCtrl appends the queued control frames to b and empties the queue.
func (s *Session) takeCtrl(b []byte) []byte {
	s.ctrlMu.Lock()
	if len(s.ctrl) > 0 {
		b = append(b, s.ctrl...)
		s.ctrl = s.ctrl[:0]
		if cap(s.ctrl) > 16*HeaderSize {
			s.ctrl = nil // a burst is over; idle sessions keep no big queue
		}
	}
	s.ctrlMu.Unlock()
	return b
}

// queueCtrl queues a control frame without blocking, and makes sure a
// flush goroutine is running. The frame goes out with the next frame
// anyone writes, at the latest when the flush goroutine gets the write
// lock. droppable frames (ping answers) are dropped when the queue is
// full; anything else then ends the session, whose peer floods us with
// requests while not reading our answers.
func (s *Session) queueCtrl(h Header, droppable bool) {
	if s.ended.Load() {
		return
	}
	s.ctrlMu.Lock()
	if len(s.ctrl) >= maxCtrl {
		s.ctrlMu.Unlock()
		if !droppable {
			s.shutdown(errors.New("control frame queue full: peer is not reading"), false, 0)
		}
		return
	}
	s.ctrl = h.Append(s.ctrl)
	start := !s.flushing
	s.flushing = true
	s.ctrlMu.Unlock()
	if start {
		go s.flush()
	}
}

// sendCtrl sends a control frame from an application goroutine: at once
// if the connection is free, else through the queue, so a Close never
// waits behind another stream's frame.
func (s *Session) sendCtrl(h Header) {
	if s.wmu.TryLock() {
		s.writeLocked(&h, nil, nil)
		s.wmu.Unlock()
		return
	}
	s.queueCtrl(h, false)
}

// flush writes the control queue until it is empty, then exits.
func (s *Session) flush() {
	for {
		s.wmu.Lock()
		s.ctrlMu.Lock()
		if len(s.ctrl) == 0 || s.ended.Load() {
			s.ctrl = nil
			s.flushing = false
			s.ctrlMu.Unlock()
			s.wmu.Unlock()
			return
		}
		s.ctrlMu.Unlock()
		s.writeLocked(nil, nil, nil)
		s.wmu.Unlock()
	}
}

// ---------------------------------------------------------------------------
// Receiving

// recvLoop is the session's only long-lived goroutine.
func (s *Session) recvLoop() {
	err := s.receive()
	s.shutdown(err, errors.Is(err, ErrProtocol), GoAwayProtocolError)
	s.mu.Lock()
	s.recvDone = true
	f := s.onClose
	s.onClose = nil
	s.mu.Unlock()
	close(s.done)
	if f != nil {
		f()
	}
}

// receive reads and handles frames until the connection fails or the
// peer breaks the protocol.
func (s *Session) receive() error {
	for !s.ended.Load() {
		if _, err := io.ReadFull(s.conn, s.hdr[:]); err != nil {
			return err
		}
		s.frames.Add(1)
		h, err := ParseHeader(s.hdr[:])
		if err != nil {
			return err
		}
		switch h.Type {
		case TypeData, TypeWindowUpdate:
			err = s.handleStreamFrame(h)
		case TypePing:
			s.handlePing(h)
		case TypeGoAway:
			err = s.handleGoAway(h)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

// handleStreamFrame handles a Data or WindowUpdate frame: opening,
// payload, window, then closing flags.
func (s *Session) handleStreamFrame(h Header) error {
	var payload uint32
	if h.Type == TypeData {
		payload = h.Length
	}
	var st *Stream
	isNew := false
	if h.Flags&FlagSYN != 0 {
		var err error
		if st, err = s.incoming(h); err != nil {
			return err
		}
		isNew = true
	} else {
		s.mu.Lock()
		st = s.streams[h.StreamID]
		s.mu.Unlock()
	}
	if st == nil {
		// A stream we reset or refused, or never heard of: the peer may
		// still have had data in flight. Any frame is within a window we
		// granted, so the length is bounded.
		return s.discard(payload)
	}
	if payload > 0 {
		if err := s.readData(st, payload); err != nil {
			return err
		}
	}
	if h.Type == TypeWindowUpdate && h.Flags&FlagRST == 0 {
		st.addSendWindow(h.Length)
	}
	switch {
	case h.Flags&FlagRST != 0:
		var code uint32
		if h.Type == TypeWindowUpdate {
			code = h.Length // go sends RST with an error code, not a delta
		}
		st.remoteReset(code)
		return nil
	case h.Flags&FlagFIN != 0:
		st.remoteFin()
	}
	if isNew {
		s.dispatch(st)
	}
	return nil
}

// incoming registers a stream the peer opens and queues its ACK, or
// queues a RST if a limit is reached (then it returns nil, nil).
func (s *Session) incoming(h Header) (*Stream, error) {
	id := h.StreamID
	if id == 0 || (id%2 == 1) == s.client {
		return nil, protoErr("peer opened stream %d, of our parity (are both ends clients, or both servers?)", id)
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return nil, nil
	case s.streams[id] != nil:
		s.mu.Unlock()
		return nil, protoErr("duplicate SYN for stream %d", id)
	case len(s.streams) >= s.cfg.MaxStreams,
		s.cfg.MaxInboundStreams > 0 && s.inbound >= s.cfg.MaxInboundStreams,
		s.handler == nil && len(s.acceptQ) >= s.cfg.AcceptBacklog:
		s.mu.Unlock()
		s.cfg.Budget.streamRefused()
		s.queueCtrl(Header{Type: TypeWindowUpdate, Flags: FlagRST, StreamID: id, Length: ResetCodeLimit}, false)
		return nil, nil
	}
	st := newStream(s, id, true)
	if s.streams == nil {
		s.streams = make(map[uint32]*Stream)
	}
	s.streams[id] = st
	s.inbound++
	s.mu.Unlock()
	// ACK at once, not on accept: go-yamux stops opening streams after
	// 256 unacknowledged SYNs.
	s.queueCtrl(Header{Type: TypeWindowUpdate, Flags: FlagACK, StreamID: id}, false)
	return st, nil
}

// dispatch hands a new inbound stream to the handler or the accept queue.
func (s *Session) dispatch(st *Stream) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	h := s.handler
	if h == nil {
		s.acceptQ = append(s.acceptQ, st)
		s.mu.Unlock()
		s.acceptCond.Signal()
		return
	}
	s.mu.Unlock()
	h(st)
}

// readData reads a Data payload into st's receive buffer, straight from
// the connection, after checking it fits the window we granted.
func (s *Session) readData(st *Stream, n uint32) error {
	st.mu.Lock()
	if n > st.rcredit {
		credit := st.rcredit
		st.mu.Unlock()
		return protoErr("stream %d: %d bytes of data exceed the receive window (%d)", st.id, n, credit)
	}
	if st.err != nil || st.readClosed || st.finRecv {
		st.rcredit -= n
		st.mu.Unlock()
		return s.discard(n)
	}
	// commit takes each piece out of rcredit as it lands, so that a Read
	// between pieces does not count the rest of the frame as consumed;
	// the budget is charged as chunks are taken, released as they are
	// read or dropped.
	for n > 0 {
		c, space, ok := st.tailSpace(int(n))
		if !ok {
			// Other streams, likely of other peers, hold the node's
			// receive memory: this one is reset rather than the budget
			// overdrawn.
			st.rcredit -= n
			st.mu.Unlock()
			st.ResetWithError(ResetCodeLimit)
			return s.discard(n)
		}
		st.mu.Unlock()
		k, err := io.ReadFull(s.conn, space)
		st.mu.Lock()
		st.commit(c, k)
		n -= uint32(k)
		if err != nil {
			st.uncharge() // for what never arrived
			st.mu.Unlock()
			return unexpectedEOF(err)
		}
	}
	st.mu.Unlock()
	return nil
}

// discard reads and drops n payload bytes.
func (s *Session) discard(n uint32) error {
	if n == 0 {
		return nil
	}
	if n > s.cfg.MaxStreamWindow {
		return protoErr("data frame of %d bytes exceeds any window we grant", n)
	}
	c := getChunk(chunkSize)
	defer putChunk(c)
	buf := (*c)[:cap(*c)]
	for n > 0 {
		k := min(int(n), len(buf))
		if _, err := io.ReadFull(s.conn, buf[:k]); err != nil {
			return unexpectedEOF(err)
		}
		n -= uint32(k)
	}
	return nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// handlePing answers ping requests and matches answers to our pings.
func (s *Session) handlePing(h Header) {
	if h.Flags&FlagSYN != 0 {
		s.queueCtrl(Header{Type: TypePing, Flags: FlagACK, Length: h.Length}, true)
		return
	}
	if h.Flags&FlagACK == 0 {
		return
	}
	s.mu.Lock()
	now := s.since()
	if s.kaWaiting && h.Length == s.kaID {
		s.kaWaiting = false
		s.rtt.Store(int64(now - s.kaSent))
		if s.ka != nil {
			s.kaDue = now + s.cfg.KeepAlive
			s.ka.Reset(s.cfg.KeepAlive)
		}
	}
	if p := s.userPing; p != nil && p.id == h.Length {
		p.rtt = max(now-p.sent, 1)
		s.rtt.Store(int64(p.rtt))
		s.userPing = nil
		close(p.done)
	}
	s.mu.Unlock()
}

// handleGoAway: code 0 stops new streams; any other code ends the session.
func (s *Session) handleGoAway(h Header) error {
	if h.Length == GoAwayNormal {
		s.mu.Lock()
		s.remoteGoAway = true
		s.mu.Unlock()
		return nil
	}
	return &GoAwayError{Code: h.Length}
}
