package perf

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"testing"
	"time"
)

// testTimeout bounds every wait in these tests; reaching it is a failure.
const testTimeout = 10 * time.Second

var errReset = errors.New("test stream reset")

// pipeStream is one end of an in-memory stream pair built from two
// io.Pipes: it half-closes like a muxed stream, and Close and Reset make
// the peer's blocked writes fail as a muxer's would.
type pipeStream struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func newPipe() (client, server *pipeStream) {
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	return &pipeStream{r: cr, w: cw}, &pipeStream{r: sr, w: sw}
}

func (p *pipeStream) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipeStream) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipeStream) CloseWrite() error           { return p.w.Close() }

func (p *pipeStream) Close() error {
	p.r.CloseWithError(io.ErrClosedPipe)
	return p.w.Close()
}

func (p *pipeStream) Reset() error {
	p.r.CloseWithError(errReset)
	p.w.CloseWithError(errReset)
	return nil
}

// serveResult is what a serve goroutine returned.
type serveResult struct {
	uploaded uint64
	err      error
}

// goServe runs serve on s and returns where its result will arrive.
func goServe(s Stream, stall time.Duration) <-chan serveResult {
	ch := make(chan serveResult, 1)
	go func() {
		n, err := serve(s, stall)
		ch <- serveResult{n, err}
	}()
	return ch
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testTimeout):
		t.Fatalf("%s: nothing within %v", what, testTimeout)
		panic("unreachable")
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name             string
		upload, download uint64
	}{
		{"nothing", 0, 0},
		{"one byte each", 1, 1},
		{"small", 100, 70_000},
		{"upload only", 1 << 20, 0},
		{"download only", 0, 1 << 20},
		{"1 MiB each", 1 << 20, 1 << 20},
		{"not a multiple of the buffer", 3*BufferSize + 7, 2*BufferSize + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := newPipe()
			done := goServe(s, testTimeout)
			res, err := Run(context.Background(), c, tc.upload, tc.download)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			sr := wait(t, done, "serve")
			if sr.err != nil {
				t.Fatalf("serve: %v", sr.err)
			}
			if res.Upload != tc.upload || res.Download != tc.download {
				t.Errorf("Result: %d up, %d down; want %d, %d", res.Upload, res.Download, tc.upload, tc.download)
			}
			if sr.uploaded != tc.upload {
				t.Errorf("server read %d upload bytes, want %d", sr.uploaded, tc.upload)
			}
			if res.Total != res.UploadTime+res.DownloadTime || res.UploadTime <= 0 || res.DownloadTime < 0 {
				t.Errorf("times: upload %v + download %v, total %v", res.UploadTime, res.DownloadTime, res.Total)
			}
			if tc.download == 0 && res.DownloadTime != 0 {
				t.Errorf("download time %v with nothing downloaded", res.DownloadTime)
			}
		})
	}
}

// TestClientWire checks the client's bytes: the request as a big-endian
// uint64, then the upload, then EOF.
func TestClientWire(t *testing.T) {
	c, s := newPipe()
	got := make(chan []byte, 1)
	go func() {
		b, err := io.ReadAll(s)
		if err != nil {
			b = nil
		}
		got <- b
		s.Write([]byte("abc"))
		s.Close()
	}()
	res, err := Run(context.Background(), c, 5, 3)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []byte{0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0}
	if b := wait(t, got, "server read"); !bytes.Equal(b, want) {
		t.Errorf("client sent % x, want % x", b, want)
	}
	if res.Upload != 5 || res.Download != 3 {
		t.Errorf("Result %+v", res)
	}
}

// TestServerWire checks the server's bytes: exactly the requested amount,
// sent only after the upload ended, then EOF.
func TestServerWire(t *testing.T) {
	c, s := newPipe()
	done := goServe(s, testTimeout)
	req := binary.BigEndian.AppendUint64(nil, 5)
	if _, err := c.Write(append(req, "upload"...)); err != nil {
		t.Fatal(err)
	}
	// The upload is still open, so the server must still be reading: an
	// io.Pipe write completes only when the other end reads it, and a
	// server that answered early would be stuck in its own write.
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("more"))
		wrote <- err
	}()
	if err := wait(t, wrote, "write while the upload is open"); err != nil {
		t.Fatalf("server stopped reading the upload: %v", err)
	}
	c.CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	if !bytes.Equal(b, make([]byte, 5)) {
		t.Errorf("server sent % x, want 5 bytes", b)
	}
	if sr := wait(t, done, "serve"); sr.err != nil || sr.uploaded != 10 {
		t.Errorf("serve: %d bytes, %v; want 10, nil", sr.uploaded, sr.err)
	}
}

// fakeServer reads a request and the upload, then sends n bytes and
// closes (or, if n is negative, waits for release and closes).
func fakeServer(s *pipeStream, n int64, drained chan<- struct{}, release <-chan struct{}) {
	io.ReadAll(s)
	if drained != nil {
		close(drained)
	}
	if n < 0 {
		<-release
	}
	writeN(s, uint64(max(n, 0)), nil)
	s.Close()
}

func TestLyingServer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		request   uint64
		sent      int64
		wantCount uint64
	}{
		{"short", 1 << 20, 1<<20 - 1, 1<<20 - 1},
		{"none", 10, 0, 0},
		{"long", 10, 1 << 20, 11}, // stops at the first excess byte
		{"any for zero", 0, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := newPipe()
			go fakeServer(s, tc.sent, nil, nil)
			res, err := Run(context.Background(), c, 100, tc.request)
			if !errors.Is(err, ErrWrongLength) {
				t.Fatalf("Run: %v, want ErrWrongLength", err)
			}
			if res.Download != tc.wantCount {
				t.Errorf("downloaded %d, want %d", res.Download, tc.wantCount)
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	c, s := newPipe()
	drained, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	go fakeServer(s, -1, drained, release)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-drained // the client is now waiting for the answer
		cancel()
	}()
	res, err := Run(ctx, c, 1000, 10)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
	if res.Upload != 1000 || res.Download != 0 {
		t.Errorf("Result %+v", res)
	}
}

func TestServeBadRequest(t *testing.T) {
	c, s := newPipe()
	done := goServe(s, testTimeout)
	c.Write([]byte{0, 0, 1})
	c.CloseWrite()
	if sr := wait(t, done, "serve"); !errors.Is(sr.err, io.ErrUnexpectedEOF) {
		t.Errorf("serve of a 3-byte request: %v, want ErrUnexpectedEOF", sr.err)
	}
	if _, err := io.ReadAll(c); !errors.Is(err, errReset) {
		t.Errorf("client read after a bad request: %v, want a reset", err)
	}
}

// TestServeStopsWhenClientResets: a request for 2^64−1 bytes is served
// until the client resets.
func TestServeStopsWhenClientResets(t *testing.T) {
	c, s := newPipe()
	done := goServe(s, testTimeout)
	c.Write(binary.BigEndian.AppendUint64(nil, math.MaxUint64))
	c.CloseWrite()
	if n, err := io.CopyN(io.Discard, c, 4<<20); err != nil {
		t.Fatalf("read %d bytes of the answer: %v", n, err)
	}
	c.Reset()
	sr := wait(t, done, "serve after the client reset")
	if !errors.Is(sr.err, errReset) {
		t.Errorf("serve: %v, want the reset", sr.err)
	}
}

// TestServeStall: the server gives up on a client that stops reading, and
// on one that never sends its request.
func TestServeStall(t *testing.T) {
	const stall = 20 * time.Millisecond
	t.Run("not reading", func(t *testing.T) {
		c, s := newPipe()
		done := goServe(s, stall)
		c.Write(binary.BigEndian.AppendUint64(nil, math.MaxUint64))
		c.CloseWrite()
		// Errors do not matter here: on a slow machine the guard may fire
		// before the client is done with its part.
		io.CopyN(io.Discard, c, 1<<20)
		sr := wait(t, done, "serve of a client that stopped reading")
		if !errors.Is(sr.err, ErrStalled) {
			t.Errorf("serve: %v, want ErrStalled", sr.err)
		}
	})
	t.Run("no request", func(t *testing.T) {
		_, s := newPipe()
		sr := wait(t, goServe(s, stall), "serve of a silent client")
		if !errors.Is(sr.err, ErrStalled) {
			t.Errorf("serve: %v, want ErrStalled", sr.err)
		}
	})
}

func TestThroughput(t *testing.T) {
	r := Result{Upload: 125_000_000, Download: 1_000_000, UploadTime: time.Second, DownloadTime: 2 * time.Second}
	if got := r.UploadMbps(); got != 1000 {
		t.Errorf("UploadMbps %v, want 1000", got)
	}
	if got := r.DownloadMbps(); got != 4 {
		t.Errorf("DownloadMbps %v, want 4", got)
	}
	if got := r.UploadMBps(); got != 125 {
		t.Errorf("UploadMBps %v, want 125", got)
	}
	if got := r.DownloadMBps(); got != 0.5 {
		t.Errorf("DownloadMBps %v, want 0.5", got)
	}
	if got := (Result{Download: 5}).DownloadMbps(); got != 0 {
		t.Errorf("DownloadMbps with no time: %v, want 0", got)
	}
}
