package mux

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// TestInteropHashicorp runs our sessions against hashicorp/yamux, in both
// roles, to cross-check the wire format with an independent
// implementation: streams opened from either side carry data well beyond
// the window both ways, pings are answered, FIN and RST arrive. The
// capped run forces our windows to grow whenever MaxSessionRecv allows
// (so it runs without our keepalive, which would measure the round trip
// again), with a budget much smaller than the streams' windows.
func TestInteropHashicorp(t *testing.T) {
	for _, run := range []struct {
		name   string
		cfg    Config
		force  bool
		budget int
	}{
		{"default", Config{KeepAlive: 20 * time.Millisecond, MaxStreamWindow: 4 << 20}, false, 16 << 20},
		{"capped", Config{KeepAlive: -1, MaxStreamWindow: 4 << 20, MaxSessionRecv: 512 << 10}, true, 512 << 10},
	} {
		for _, weAreClient := range []bool{true, false} {
			name := run.name + "/we-client"
			if !weAreClient {
				name = run.name + "/we-server"
			}
			t.Run(name, func(t *testing.T) { interopHashicorp(t, weAreClient, run.cfg, run.force, run.budget) })
		}
	}
}

func interopHashicorp(t *testing.T, weAreClient bool, cfg Config, force bool, budget int) {
	ours, theirs := tcpPair(t)
	if !weAreClient {
		ours, theirs = theirs, ours
	}
	hcfg := yamux.DefaultConfig()
	hcfg.LogOutput = io.Discard
	hcfg.KeepAliveInterval = 50 * time.Millisecond // they ping us a lot
	var h *yamux.Session
	var err error
	var s *Session
	if weAreClient {
		h, err = yamux.Server(theirs, hcfg)
		s, _ = Client(ours, cfg)
	} else {
		h, err = yamux.Client(theirs, hcfg)
		s, _ = Server(ours, cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	if force {
		forceGrowth(s)
	}
	var echoes sync.WaitGroup
	defer echoes.Wait()
	defer h.Close()
	defer s.Close()

	// They echo every stream we open; we echo theirs.
	echoes.Add(1)
	go func() {
		defer echoes.Done()
		for {
			st, err := h.AcceptStream()
			if err != nil {
				return
			}
			echoes.Add(1)
			go func() {
				defer echoes.Done()
				io.Copy(st, st)
				st.Close()
			}()
		}
	}()
	var peak atomic.Int64 // most bytes reserved seen by our echoes
	s.SetStreamHandler(func(st *Stream) {
		echoes.Add(1)
		go func() {
			defer echoes.Done()
			defer st.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := st.Read(buf)
				r := s.RecvReserved()
				if r > budget {
					t.Errorf("%d bytes reserved, budget %d", r, budget)
				}
				for p := peak.Load(); int64(r) > p && !peak.CompareAndSwap(p, int64(r)); p = peak.Load() {
				}
				if _, werr := st.Write(buf[:n]); err != nil || werr != nil {
					return
				}
			}
		}()
	})

	const size = 2 << 20
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 5 {
		wg.Add(2)
		go func() { defer wg.Done(); errs <- roundTrip(s, size, 40<<10) }()
		go func() { defer wg.Done(); errs <- hashicorpRoundTrip(h, size) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if rtt, err := s.Ping(); err != nil || rtt <= 0 {
		t.Fatalf("our ping: %v, %v", rtt, err)
	}
	if _, err := h.Ping(); err != nil {
		t.Fatalf("their ping: %v", err)
	}

	// Keepalives both ways for a while: sessions stay up.
	for range 5 {
		if _, err := h.Ping(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Ping(); err != nil {
			t.Fatal(err)
		}
	}
	if s.IsClosed() || h.IsClosed() {
		t.Fatal("session ended")
	}
	if n := s.NumStreams(); n != 0 {
		t.Errorf("%d streams left open", n)
	}
	if r := s.RecvReserved(); r != 0 {
		t.Errorf("%d bytes reserved with every stream closed", r)
	}
	if force && peak.Load() == 0 {
		t.Error("no window grew")
	}
	t.Logf("at most %d bytes reserved seen, budget %d", peak.Load(), budget)
}

// hashicorpRoundTrip is roundTrip with hashicorp as the opener.
func hashicorpRoundTrip(h *yamux.Session, size int) error {
	st, err := h.OpenStream()
	if err != nil {
		return err
	}
	data := make([]byte, size)
	rand.Read(data)
	go func() {
		st.Write(data)
		st.Close() // hashicorp's Close is a half-close (FIN)
	}()
	got, err := io.ReadAll(st)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return errors.New("hashicorp opener: echo differs")
	}
	return nil
}

// TestInteropHashicorpReset: a RST from us makes hashicorp's reads fail
// with its connection-reset error.
func TestInteropHashicorpReset(t *testing.T) {
	ours, theirs := tcpPair(t)
	hcfg := yamux.DefaultConfig()
	hcfg.LogOutput = io.Discard
	h, err := yamux.Server(theirs, hcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	s, _ := Client(ours, Config{})
	defer s.Close()
	st, _ := s.OpenStream(context.Background())
	st.Write([]byte("x"))
	hs, err := h.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(hs, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	st.Reset()
	hs.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := hs.Read(make([]byte, 1)); !errors.Is(err, yamux.ErrConnectionReset) {
		t.Fatalf("hashicorp read after our RST: %v", err)
	}
	// And their FIN reaches us as EOF.
	st2, _ := s.OpenStream(context.Background())
	st2.Write([]byte("y"))
	hs2, _ := h.AcceptStream()
	hs2.Write([]byte("z"))
	hs2.Close()
	if got, err := io.ReadAll(st2); err != nil || string(got) != "z" {
		t.Fatalf("read %q, %v", got, err)
	}
}
