package quic

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"
)

func udpAddr(ip string) *net.UDPAddr {
	return &net.UDPAddr{IP: net.ParseIP(ip), Port: 4001}
}

// connCtx stands for the context quic-go gives ConnContext; end is the
// connection closing or its handshake failing.
type connCtx struct {
	context.Context
	end context.CancelFunc
}

func newConnCtx() connCtx {
	ctx, cancel := context.WithCancel(context.Background())
	return connCtx{ctx, cancel}
}

// admitN admits n handshakes from ip and returns their contexts.
func admitN(t *testing.T, h *handshakes, ip string, n int) []connCtx {
	t.Helper()
	var ctxs []connCtx
	for range n {
		ctx := newConnCtx()
		if _, err := h.admit(ctx, &quicgo.ClientInfo{RemoteAddr: udpAddr(ip)}); err != nil {
			t.Fatalf("admit %s: %v", ip, err)
		}
		ctxs = append(ctxs, ctx)
	}
	return ctxs
}

// wantHandshakes waits, up to a deadline, for the count of handshakes in
// progress to become want: ended ones give their slots back from the
// goroutine context.AfterFunc starts.
func wantHandshakes(t *testing.T, h *handshakes, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.stats().Handshakes != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d handshakes in progress, want %d", h.stats().Handshakes, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHandshakeLimits(t *testing.T) {
	cfg := Config{MaxHandshakes: 12, MaxHandshakesPerIP: 4, RetryThreshold: 6}.withDefaults()
	h := newHandshakes(cfg)
	try := func(ip string) error {
		_, err := h.admit(newConnCtx(), &quicgo.ClientInfo{RemoteAddr: udpAddr(ip)})
		return err
	}

	// A source is sent a Retry once it has half its share in progress.
	a := admitN(t, h, "192.0.2.1", 1)
	if h.mustValidate(udpAddr("192.0.2.1")) {
		t.Fatal("Retry with 1 of 4 in progress")
	}
	a = append(a, admitN(t, h, "192.0.2.1", 1)...)
	if !h.mustValidate(udpAddr("192.0.2.1")) {
		t.Fatal("no Retry with 2 of 4 in progress")
	}
	if h.mustValidate(udpAddr("192.0.2.2")) {
		t.Fatal("another source was sent a Retry")
	}
	// Validated, it may reach its share, and no more.
	a = append(a, admitN(t, h, "192.0.2.1", 2)...)
	if err := try("192.0.2.1"); !errors.Is(err, errHandshakesPerIP) {
		t.Fatalf("fifth handshake from one IP: %v", err)
	}
	// An IPv6 /64 counts as one address.
	v6 := admitN(t, h, "2001:db8::1", 2)
	if err := try("2001:db8::2:3"); err != nil {
		t.Fatal(err)
	}
	if !h.mustValidate(udpAddr("2001:db8::ffff")) {
		t.Fatal("no Retry for a /64 with half its share in progress")
	}
	// 7 in progress: past RetryThreshold, everyone gets a Retry.
	if !h.mustValidate(udpAddr("198.51.100.1")) {
		t.Fatal("no Retry past RetryThreshold")
	}
	// Loopback is exempt from the per-IP limit, not from MaxHandshakes.
	admitN(t, h, "127.0.0.1", 5)
	if err := try("127.0.0.1"); !errors.Is(err, errHandshakesFull) {
		t.Fatalf("past MaxHandshakes: %v", err)
	}
	if s := h.stats(); s.Handshakes != 12 || s.Refused != 2 || s.Retries != 3 {
		t.Fatalf("stats %+v", s)
	}

	// Ended handshakes give their slots back, once.
	for _, ctx := range a {
		ctx.end()
		ctx.end()
	}
	wantHandshakes(t, h, 8)
	if err := try("192.0.2.1"); err != nil {
		t.Fatalf("after the others ended: %v", err)
	}
	for _, ctx := range v6 {
		ctx.end()
	}
	wantHandshakes(t, h, 7)
	if n := len(h.byGroup); n != 2 { // 192.0.2.1 and the /64 with one left
		t.Fatalf("%d address groups counted, want 2", n)
	}
}

// A handshake whose connection a listener accepted gives its slot back
// then, and not again when the connection ends.
func TestHandshakeAccepted(t *testing.T) {
	h := newHandshakes(Config{}.withDefaults())
	ctx := newConnCtx()
	qctx, err := h.admit(ctx, &quicgo.ClientInfo{RemoteAddr: udpAddr("192.0.2.1")})
	if err != nil {
		t.Fatal(err)
	}
	s := qctx.Value(slotKey{}).(*slot)
	if s.stop() {
		s.release() // what accepted does
	}
	wantHandshakes(t, h, 0)
	ctx.end() // s.stop kept the AfterFunc from running
	wantHandshakes(t, h, 0)
	if len(h.byGroup) != 0 {
		t.Fatalf("address groups left: %v", h.byGroup)
	}
}

func TestHandshakeLimitLoopback(t *testing.T) {
	h := newHandshakes(Config{LimitLoopback: true}.withDefaults())
	admitN(t, h, "127.0.0.2", DefaultMaxHandshakesPerIP)
	if _, err := h.admit(newConnCtx(), &quicgo.ClientInfo{RemoteAddr: udpAddr("127.0.0.2")}); !errors.Is(err, errHandshakesPerIP) {
		t.Fatalf("loopback past MaxHandshakesPerIP with LimitLoopback: %v", err)
	}
	admitN(t, h, "127.0.0.3", 1)
}

func TestRetryAlways(t *testing.T) {
	h := newHandshakes(Config{RetryThreshold: -1}.withDefaults())
	if !h.mustValidate(udpAddr("192.0.2.1")) {
		t.Fatal("no Retry with RetryThreshold < 0")
	}
}
