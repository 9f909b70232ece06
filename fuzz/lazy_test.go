package fuzz

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/mote-p2p/mote/internal/testconn"
	"github.com/mote-p2p/mote/mux"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/wire"
)

const lazyProto = "/fuzz/lazy/1.0.0"

// script is a byte source for a schedule; it yields zeros once spent.
type script []byte

func (s *script) next() byte {
	if len(*s) == 0 {
		return 0
	}
	b := (*s)[0]
	*s = (*s)[1:]
	return b
}

// Peer answers.
const (
	answerAccept = iota
	answerRefuse
	answerGarbage
	answerKinds
)

// peerLog is what the scripted listener saw.
type peerLog struct {
	got       []byte // application bytes received
	finEarly  bool   // our FIN came before it had answered
	headerErr error
}

// lazyPeer plays a listener on s: it reads the header and the proposal,
// keeps reading for delay (a FIN then is a fault of the opener), answers,
// then reads until EOF, echoing what it reads when it accepted and echo
// is set, or resets as a refusing go-libp2p or mote listener does.
func lazyPeer(s *mux.Stream, answer int, delay time.Duration, echo bool) peerLog {
	var log peerLog
	s.SetDeadline(time.Now().Add(10 * time.Second))
	for _, want := range []string{wire.ProtocolID, lazyProto} {
		m, err := wire.ReadMessage(s)
		if err == nil && m != want {
			err = errors.New("unexpected message " + m)
		}
		if err != nil {
			log.headerErr = err
			s.Reset()
			return log
		}
	}
	buf := make([]byte, 32<<10)
	if delay > 0 {
		s.SetReadDeadline(time.Now().Add(delay))
		for {
			n, err := s.Read(buf)
			log.got = append(log.got, buf[:n]...)
			if err == io.EOF {
				log.finEarly = true
			}
			if err != nil {
				break
			}
		}
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
	}
	out := wire.AppendMessage(nil, wire.ProtocolID)
	switch answer {
	case answerAccept:
		out = wire.AppendMessage(out, lazyProto)
	case answerRefuse:
		out = wire.AppendMessage(out, "na")
	default:
		out = wire.AppendMessage(out, "/something/else")
	}
	if _, err := s.Write(out); err != nil {
		s.Reset()
		return log
	}
	echo = echo && answer == answerAccept
	if echo {
		if _, err := s.Write(log.got); err != nil {
			s.Reset()
			return log
		}
	}
	for {
		n, err := s.Read(buf)
		log.got = append(log.got, buf[:n]...)
		if echo && n > 0 {
			if _, err := s.Write(buf[:n]); err != nil {
				s.Reset()
				return log
			}
		}
		if err != nil {
			if err == io.EOF && answer == answerAccept {
				s.Close()
			} else {
				s.Reset()
			}
			return log
		}
	}
}

// FuzzLazySelect runs an optimistically negotiated stream on a real yamux
// session against a scripted listener, with the input choosing the
// listener's answer and delay, the opener's writes (some larger than the
// stream window, so that they block until the echo is read), pauses, and
// how and when it closes and reads. Whatever the schedule, nothing hangs,
// no byte is lost or duplicated when the listener accepts, a refusal or a
// broken answer reaches the reader, and our FIN never precedes the answer.
func FuzzLazySelect(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 10})
	f.Add([]byte{0, 2, 3, 1, 255, 0, 1, 1, 200})
	f.Add([]byte{1, 1, 2, 0, 5, 1, 4})
	f.Add([]byte{2, 0, 1, 1, 3})
	f.Add([]byte{0, 3, 0})
	f.Add([]byte{1, 0, 0, 2})
	f.Add([]byte{0, 1, 4, 1, 255, 1, 255, 1, 255, 1, 255, 6})
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := script(data)
		answer := int(sc.next()) % answerKinds
		delay := time.Duration(sc.next()%4) * time.Millisecond
		nops := int(sc.next() % 9)
		type op struct {
			kind byte
			size int
		}
		ops := make([]op, nops)
		for i := range ops {
			k := sc.next() % 4
			size := 0
			switch k {
			case 0:
				size = int(sc.next())
			case 1:
				size = int(sc.next()) << 12 // up to 1 MiB: past the 256 KiB window
			}
			ops[i] = op{k, size}
		}
		tail := sc.next()
		closeFull := tail&1 != 0
		readFirst := tail&2 != 0

		a, b := testconn.TCPPair(t)
		ca, err := mux.Client(a, mux.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer ca.Close()
		cb, err := mux.Server(b, mux.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer cb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		raw, err := ca.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		peerDone := make(chan peerLog, 1)
		go func() {
			s, err := cb.AcceptStream()
			if err != nil {
				peerDone <- peerLog{headerErr: err}
				return
			}
			// An opener that closes both ways stops reading: an echo
			// would fill its window and stall.
			peerDone <- lazyPeer(s, answer, delay, !closeFull)
		}()

		s := transport.LazyStream(raw, lazyProto)
		s.SetDeadline(time.Now().Add(8 * time.Second))
		var sent []byte
		type result struct {
			got []byte
			err error
		}
		readDone := make(chan result, 1)
		read := func() {
			got, err := io.ReadAll(s)
			readDone <- result{got, err}
		}
		if readFirst {
			go read()
		}
		writeDone := make(chan error, 1)
		go func() {
			for i, o := range ops {
				switch o.kind {
				case 0, 1:
					msg := bytes.Repeat([]byte{byte(i + 1)}, o.size)
					n, err := s.Write(msg)
					sent = append(sent, msg[:n]...)
					if err != nil {
						writeDone <- err
						return
					}
				case 2:
					runtime.Gosched()
				case 3:
					time.Sleep(time.Duration(o.size%3) * 100 * time.Microsecond)
				}
			}
			if closeFull {
				writeDone <- s.Close()
			} else {
				writeDone <- s.CloseWrite()
			}
		}()
		if !readFirst {
			go read()
		}

		var werr error
		var r result
		var plog peerLog
		for range 3 {
			select {
			case werr = <-writeDone:
				writeDone = nil
			case r = <-readDone:
				readDone = nil
			case plog = <-peerDone:
				peerDone = nil
			case <-time.After(20 * time.Second):
				t.Fatalf("hung: writer done %v, reader done %v, peer done %v",
					writeDone == nil, readDone == nil, peerDone == nil)
			}
		}

		if plog.finEarly {
			t.Fatal("our FIN reached the peer before it answered the proposal")
		}
		if plog.headerErr != nil {
			t.Fatalf("the peer did not get the proposal: %v", plog.headerErr)
		}
		switch answer {
		case answerAccept:
			if werr != nil {
				t.Fatalf("write or close: %v", werr)
			}
			if !bytes.Equal(plog.got, sent) {
				t.Fatalf("the peer got %d bytes, %d were written", len(plog.got), len(sent))
			}
			if closeFull {
				return // no echo: reading stopped at Close
			}
			if r.err != nil {
				t.Fatalf("read: %v", r.err)
			}
			if !bytes.Equal(r.got, sent) {
				t.Fatalf("read %d bytes of an echo of %d", len(r.got), len(sent))
			}
		case answerRefuse:
			if r.err == nil {
				t.Fatal("a refused stream read to a clean EOF")
			}
			if _, err := s.Write([]byte("x")); err == nil {
				t.Fatal("write after a refusal succeeded")
			}
		default:
			if r.err == nil {
				t.Fatal("a stream with a broken answer read to a clean EOF")
			}
			if !errors.Is(r.err, wire.ErrProtocolViolation) && !errors.Is(r.err, mux.ErrReset) && !closeFull {
				t.Fatalf("read: %v, want a protocol violation", r.err)
			}
		}
	})
}
