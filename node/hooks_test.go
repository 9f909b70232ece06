package node

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// lifecycle follows one node's hooks as a service would and records
// every call that breaks the documented order.
type lifecycle struct {
	mu                          sync.Mutex
	connected                   map[peer.ID]bool
	open                        map[*Conn]bool
	identified                  map[*Conn]bool
	faults                      []string
	opened, closed, ids, protos int
	nodeClosed                  int
}

func newLifecycle() *lifecycle {
	return &lifecycle{connected: map[peer.ID]bool{}, open: map[*Conn]bool{}, identified: map[*Conn]bool{}}
}

func (l *lifecycle) fault(format string, args ...any) {
	l.faults = append(l.faults, fmt.Sprintf(format, args...))
}

func (l *lifecycle) openOf(id peer.ID) int {
	k := 0
	for c := range l.open {
		if c.RemotePeer() == id {
			k++
		}
	}
	return k
}

func (l *lifecycle) hooks() Hooks {
	return Hooks{
		PeerConnected: func(c *Conn) {
			l.mu.Lock()
			defer l.mu.Unlock()
			id := c.RemotePeer()
			if l.connected[id] || l.openOf(id) > 0 {
				l.fault("PeerConnected %s while connected", id)
			}
			l.connected[id] = true
		},
		ConnOpened: func(c *Conn) {
			l.mu.Lock()
			defer l.mu.Unlock()
			if !l.connected[c.RemotePeer()] {
				l.fault("ConnOpened before PeerConnected")
			}
			if l.open[c] {
				l.fault("ConnOpened twice")
			}
			l.open[c] = true
			l.opened++
		},
		Identified: func(c *Conn, err error) {
			l.mu.Lock()
			defer l.mu.Unlock()
			if !l.open[c] {
				l.fault("Identified on a connection not open (err %v)", err)
			}
			if l.identified[c] {
				l.fault("Identified twice")
			}
			l.identified[c] = true
			l.ids++
		},
		ProtocolsChanged: func(c *Conn, protos []string) {
			l.mu.Lock()
			defer l.mu.Unlock()
			if !l.open[c] {
				l.fault("ProtocolsChanged on a connection not open")
			}
			if len(protos) == 0 {
				l.fault("ProtocolsChanged with no protocols")
			}
			l.protos++
		},
		ConnClosed: func(c *Conn) {
			l.mu.Lock()
			defer l.mu.Unlock()
			if !l.open[c] {
				l.fault("ConnClosed of a connection not open")
			}
			delete(l.open, c)
			delete(l.identified, c)
			l.closed++
		},
		PeerDisconnected: func(id peer.ID) {
			l.mu.Lock()
			defer l.mu.Unlock()
			if !l.connected[id] || l.openOf(id) > 0 {
				l.fault("PeerDisconnected %s with %d connections open", id, l.openOf(id))
			}
			delete(l.connected, id)
		},
		Closed: func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if len(l.connected) > 0 || len(l.open) > 0 {
				l.fault("Closed with %d peers and %d connections open", len(l.connected), len(l.open))
			}
			l.nodeClosed++
		},
	}
}

func (l *lifecycle) check(t *testing.T, name string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.faults) > 0 {
		t.Errorf("%s: %d faults, first ones:\n%s", name, len(l.faults), strings.Join(l.faults[:min(len(l.faults), 10)], "\n"))
	}
	if l.opened != l.closed || len(l.open) > 0 || len(l.connected) > 0 {
		t.Errorf("%s: %d opened, %d closed, %d still open, %d peers still connected", name, l.opened, l.closed, len(l.open), len(l.connected))
	}
}

// TestHooksOrder: while peers connect, push new protocols and
// disconnect from both ends concurrently, the hooks of the listener see
// every peer's life in order, and hooks added midway first hear the
// present replayed.
func TestHooksOrder(t *testing.T) {
	const dialers, rounds = 8, 25
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true)
	early := newLifecycle()
	a.AddHooks(early.hooks())

	var late *lifecycle
	var lateOnce sync.Once
	var wg sync.WaitGroup
	for d := range dialers {
		b := newNode(t, mn, false)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				c, err := b.Connect(ctx, a.ID(), a.Addrs()...)
				if err != nil {
					t.Errorf("dialer %d round %d: %v", d, r, err)
					return
				}
				if r%3 == 0 {
					<-c.Identified()
					// A push changes what a hears b supports.
					b.SetHandler(fmt.Sprintf("/test/round/%d", r), func(s *Stream) { s.Reset() })
				}
				if d == 0 && r == rounds/2 {
					lateOnce.Do(func() {
						late = newLifecycle()
						a.AddHooks(late.hooks())
					})
				}
				if r%2 == 0 {
					c.Close()
				} else {
					// Close from a's side, once a has registered it (the
					// previous round's may still be there).
					var ac *Conn
					waitFor(t, func() bool {
						for _, x := range a.Conns(b.ID()) {
							if x.RemoteMultiaddr().Equal(c.LocalMultiaddr()) {
								ac = x
							}
						}
						return ac != nil
					})
					ac.Close()
				}
				waitFor(t, func() bool { return len(b.Conns(a.ID())) == 0 })
			}
		}()
	}
	wg.Wait()
	waitFor(t, func() bool { return len(a.Conns("")) == 0 })
	a.Close()
	early.check(t, "hooks added before the first connection")
	late.check(t, "hooks added midway")
	for name, l := range map[string]*lifecycle{"early": early, "late": late} {
		l.mu.Lock()
		if l.nodeClosed != 1 {
			t.Errorf("%s hooks: Closed called %d times", name, l.nodeClosed)
		}
		if l.ids == 0 || l.protos == 0 {
			t.Errorf("%s hooks: %d identified, %d protocol changes", name, l.ids, l.protos)
		}
		l.mu.Unlock()
	}
	if early.opened != dialers*rounds {
		t.Errorf("%d connections opened, want %d", early.opened, dialers*rounds)
	}
}

// TestHooksReplay: hooks added after connections were identified hear
// of them at once, in order, and our addresses; removed hooks hear
// nothing more.
func TestHooksReplay(t *testing.T) {
	mn := transport.NewMemNetwork()
	ctx := testCtx(t)
	a := newNode(t, mn, true)
	b := newNode(t, mn, false)
	connect(t, ctx, a, newNode(t, mn, true))
	c := connect(t, ctx, b, a)
	waitFor(t, func() bool { return len(a.Conns(b.ID())) == 1 })
	ac := a.Conns(b.ID())[0]
	<-ac.Identified()

	var calls []string
	var addrs []ma.Multiaddr
	remove := a.AddHooks(Hooks{
		PeerConnected:    func(c *Conn) { calls = append(calls, "peer "+c.RemotePeer().String()) },
		ConnOpened:       func(c *Conn) { calls = append(calls, "conn "+c.RemotePeer().String()) },
		Identified:       func(c *Conn, err error) { calls = append(calls, fmt.Sprint("identified ", c.RemotePeer(), " ", err)) },
		ProtocolsChanged: func(c *Conn, p []string) { calls = append(calls, "protocols "+c.RemotePeer().String()) },
		AddrsChanged:     func(a []ma.Multiaddr) { addrs = a },
		ConnClosed:       func(c *Conn) { calls = append(calls, "closed") },
	})
	bid := b.ID().String()
	want := []string{"peer " + bid, "conn " + bid, "identified " + bid + " <nil>", "protocols " + bid}
	got := strings.Join(calls, "|")
	if !strings.Contains(got, strings.Join(want, "|")) || len(calls) != 8 {
		t.Errorf("replay = %q, want %q among the calls for 2 peers", calls, want)
	}
	if len(addrs) != 1 || !addrs[0].Equal(a.Addrs()[0]) {
		t.Errorf("replayed addresses %v, want %v", addrs, a.Addrs())
	}
	remove()
	calls = nil
	c.Close()
	waitFor(t, func() bool { return len(a.Conns(b.ID())) == 0 })
	if len(calls) > 0 {
		t.Errorf("removed hooks were called: %q", calls)
	}
}

// TestHooksAfterClose: hooks added to a closed node get Closed at once;
// a transport added after Close is closed.
func TestHooksAfterClose(t *testing.T) {
	a := newNode(t, transport.NewMemNetwork(), true)
	a.Close()
	closed := 0
	a.AddHooks(Hooks{Closed: func() { closed++ }})
	if closed != 1 {
		t.Errorf("Closed called %d times on a closed node", closed)
	}
	select {
	case <-a.Done():
	default:
		t.Error("Done is open after Close")
	}
	tr := &closeCounter{}
	a.AddTransport(tr)
	if tr.closed != 1 {
		t.Errorf("a transport added after Close was closed %d times", tr.closed)
	}
}

type closeCounter struct {
	transport.Transport
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }
