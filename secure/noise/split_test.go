package noise

import (
	"bytes"
	"io"
	"testing"
)

// TestWriteSplit: head and body arrive in order, head in a frame of its
// own, so that a reader asking for exactly the head gets it without
// buffering the body, and reads the body straight into its buffer.
func TestWriteSplit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		head, body int
	}{
		{"head and one frame", 12, 4 << 10},
		{"head and several frames", 36, 3*MaxPlaintext + 17},
		{"head alone", 12, 0},
		{"body alone", 0, 2*MaxPlaintext + 1},
		{"more than one buffer", 12, (framesPerWrite + 1) * MaxPlaintext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ci, cr := tcpPair(t)
			a, b := mustSecure(t, newTransport(t), newTransport(t), ci, cr)
			head, body := randBytes(tc.head), randBytes(tc.body)
			errc := make(chan error, 1)
			go func() {
				n, err := a.WriteSplit(head, body)
				if err == nil && n != len(body) {
					err = io.ErrShortWrite
				}
				errc <- err
			}()
			if len(head) > 0 {
				got := make([]byte, len(head))
				if _, err := io.ReadFull(b, got); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, head) {
					t.Fatal("head differs")
				}
				// Ciphertext read ahead may wait in rbuf; plaintext must not.
				if len(b.rdata) != 0 {
					t.Fatalf("reading the head left %d plaintext bytes buffered", len(b.rdata))
				}
			}
			got := make([]byte, len(body))
			if _, err := io.ReadFull(b, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, body) {
				t.Fatal("body differs")
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestWriteSplitHeadTooLarge: a head that does not fit a frame is refused
// before anything is sent.
func TestWriteSplitHeadTooLarge(t *testing.T) {
	ci, cr := pipePair(t)
	a, _ := mustSecure(t, newTransport(t), newTransport(t), ci, cr)
	if _, err := a.WriteSplit(make([]byte, MaxPlaintext+1), []byte("x")); err == nil {
		t.Fatal("an oversized head was accepted")
	}
	if a.werr != nil {
		t.Fatalf("the refusal broke the connection: %v", a.werr)
	}
}
