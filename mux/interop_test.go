package mux

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// TestInteropHashicorp runs our sessions against hashicorp/yamux, in both
// roles, to cross-check the wire format with an independent
// implementation: streams opened from either side carry data well beyond
// the window both ways, pings are answered, FIN and RST arrive.
func TestInteropHashicorp(t *testing.T) {
	for _, weAreClient := range []bool{true, false} {
		name := "we-client"
		if !weAreClient {
			name = "we-server"
		}
		t.Run(name, func(t *testing.T) {
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
				s, _ = Client(ours, Config{KeepAlive: 20 * time.Millisecond, MaxStreamWindow: 4 << 20})
			} else {
				h, err = yamux.Client(theirs, hcfg)
				s, _ = Server(ours, Config{KeepAlive: 20 * time.Millisecond, MaxStreamWindow: 4 << 20})
			}
			if err != nil {
				t.Fatal(err)
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
			s.SetStreamHandler(func(st *Stream) {
				echoes.Add(1)
				go func() {
					defer echoes.Done()
					io.Copy(st, st)
					st.Close()
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
		})
	}
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
