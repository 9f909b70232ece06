package check

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mote-p2p/mote/identify"
	"github.com/mote-p2p/mote/ping"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/wire"
)

// served are the protocols mote serves on the connections it dials.
var served = []string{identify.ID, identify.PushID, ping.ID}

// server serves the peer's streams on a connection the runner dialed
// itself (outside the node, so that a peer failing a check is not
// disconnected before the other checks ran): identify from mote's
// identity, identify push and ping. It records what the peer asked.
type server struct {
	tc      transport.Conn
	info    atomic.Pointer[identify.Info]
	timeout time.Duration
	wg      sync.WaitGroup // run and the stream handlers
	pushes  pushLog

	mu     sync.Mutex
	asked1 chan struct{} // closed at the first identify answer written
	asked  int           // identify answers written
	askErr error         // why the last answer failed
	pinged int           // ping streams served to the end
}

func newServer(tc transport.Conn, info *identify.Info, timeout time.Duration) *server {
	s := &server{tc: tc, timeout: timeout, asked1: make(chan struct{})}
	s.info.Store(info)
	return s
}

// start serves tc until it closes; wait waits for that.
func (s *server) start() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			st, err := s.tc.AcceptStream()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go s.handle(st)
		}
	}()
}

func (s *server) wait() { s.wg.Wait() }

func (s *server) handle(st transport.Stream) {
	defer s.wg.Done()
	st.SetDeadline(time.Now().Add(s.timeout))
	proto, err := wire.Negotiate(st, served, nil)
	if err != nil {
		st.Reset()
		return
	}
	switch proto {
	case identify.ID:
		err := identify.Serve(st, s.info.Load(), s.tc.RemoteMultiaddr())
		s.mu.Lock()
		if err == nil {
			if s.asked == 0 {
				close(s.asked1)
			}
			s.asked++
		} else {
			s.askErr = err
		}
		s.mu.Unlock()
	case identify.PushID:
		res, err := identify.Request(st, s.tc.RemotePeer())
		if err != nil {
			st.Reset()
			s.pushes.add(nil, err)
			return
		}
		st.Close()
		s.pushes.add(res.Protocols, nil)
	case ping.ID:
		if ping.Serve(st) == nil {
			s.mu.Lock()
			s.pinged++
			s.mu.Unlock()
		}
	}
}

func (s *server) counts() (asked, pinged int, askErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked, s.pinged, s.askErr
}

// pushLog collects the protocol lists of the peer's identify pushes.
type pushLog struct {
	mu     sync.Mutex
	lists  [][]string
	err    error         // the last push that failed
	signal chan struct{} // capacity 1, made by the first use
}

func (p *pushLog) ch() chan struct{} {
	if p.signal == nil {
		p.signal = make(chan struct{}, 1)
	}
	return p.signal
}

func (p *pushLog) add(protos []string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.err = err
	} else {
		p.lists = append(p.lists, slices.Clone(protos))
	}
	select {
	case p.ch() <- struct{}{}:
	default:
	}
}

// state returns the pushes so far and the last error.
func (p *pushLog) state() (n int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lists), p.err
}

// waitFor waits until a push lists proto, or ctx ends.
func (p *pushLog) waitFor(ctx context.Context, proto string) bool {
	for {
		p.mu.Lock()
		found := slices.ContainsFunc(p.lists, func(l []string) bool { return slices.Contains(l, proto) })
		ch := p.ch()
		p.mu.Unlock()
		if found {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}
