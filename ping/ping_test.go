package ping

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// startServe runs serve on one end of a pipe and returns the other end and
// a channel with serve's result.
func startServe(t *testing.T, idle, total time.Duration) (net.Conn, <-chan error) {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close() })
	done := make(chan error, 1)
	go func() { done <- serve(server, idle, total) }()
	return client, done
}

func TestServeRounds(t *testing.T) {
	tests := []struct {
		name   string
		rounds int
	}{
		{"no payload", 0},
		{"one", 1},
		{"several", 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, done := startServe(t, IdleTimeout, StreamTimeout)
			for i := range tc.rounds {
				rtt, err := Once(client, nil)
				if err != nil {
					t.Fatalf("round %d: %v", i, err)
				}
				if rtt < 0 {
					t.Fatalf("round %d: negative RTT %v", i, rtt)
				}
			}
			client.Close()
			if err := <-done; err != nil {
				t.Fatalf("Serve after clean close: %v", err)
			}
		})
	}
}

func TestServeEchoesExactBytes(t *testing.T) {
	client, done := startServe(t, IdleTimeout, StreamTimeout)
	payload := bytes.Repeat([]byte{0xa5}, PayloadSize)
	if _, err := Once(client, bytes.NewReader(payload)); err != nil {
		t.Fatal(err)
	}
	// Two payloads written back to back are echoed in order.
	two := append(bytes.Repeat([]byte{1}, PayloadSize), bytes.Repeat([]byte{2}, PayloadSize)...)
	go client.Write(two)
	got := make([]byte, len(two))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, two) {
		t.Fatalf("echo = %x, want %x", got, two)
	}
	client.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestServePartialPayload(t *testing.T) {
	client, done := startServe(t, IdleTimeout, StreamTimeout)
	if _, err := client.Write(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	client.Close()
	err := <-done
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if !strings.Contains(err.Error(), "10 of 32") {
		t.Errorf("error %q does not say how much arrived", err)
	}
}

func TestServeTimeouts(t *testing.T) {
	tests := []struct {
		name        string
		idle, total time.Duration
		rounds      bool // keep pinging until the server gives up
		wantInError string
	}{
		{"idle before first payload", 20 * time.Millisecond, time.Minute, false, "idle limit"},
		{"stream limit while busy", time.Minute, 50 * time.Millisecond, true, "stream limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, done := startServe(t, tc.idle, tc.total)
			if tc.rounds {
				// Ping until the server closes; each round is fast, so
				// only the total limit can end the stream.
				for {
					if _, err := Once(client, nil); err != nil {
						break
					}
				}
			}
			err := <-done
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("err = %v, want a deadline error", err)
			}
			if !strings.Contains(err.Error(), tc.wantInError) {
				t.Errorf("error %q does not mention %q", err, tc.wantInError)
			}
			// The stream is closed: the client sees the end.
			if _, err := client.Read(make([]byte, 1)); err == nil {
				t.Error("stream still open after timeout")
			}
		})
	}
}

// badEcho answers one payload with a modified copy.
func badEcho(t *testing.T, s net.Conn) {
	t.Helper()
	buf := make([]byte, PayloadSize)
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Error(err)
		return
	}
	buf[7] ^= 1
	if _, err := s.Write(buf); err != nil {
		t.Error(err)
	}
}

func TestOnceErrors(t *testing.T) {
	tests := []struct {
		name   string
		remote func(t *testing.T, s net.Conn)
		rnd    io.Reader
		want   error
	}{
		{"mismatching echo", badEcho, nil, ErrMismatch},
		{"closed before echo", func(t *testing.T, s net.Conn) {
			io.ReadFull(s, make([]byte, PayloadSize))
			s.Close()
		}, nil, io.ErrUnexpectedEOF},
		{"short echo", func(t *testing.T, s net.Conn) {
			io.ReadFull(s, make([]byte, PayloadSize))
			s.Write(make([]byte, 5))
			s.Close()
		}, nil, io.ErrUnexpectedEOF},
		{"no randomness", func(t *testing.T, s net.Conn) {}, strings.NewReader("short"), io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			defer server.Close()
			finished := make(chan struct{})
			go func() {
				defer close(finished)
				tc.remote(t, server)
			}()
			_, err := Once(client, tc.rnd)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			client.Close()
			<-finished
		})
	}
}
