// Package perf implements the libp2p perf protocol (/perf/1.0.0), a
// throughput benchmark between two peers (spec: libp2p/specs perf/perf.md).
//
// On one stream the client writes the number of bytes it wants back as a
// big-endian uint64, uploads any number of bytes and closes its write side;
// the server reads the number, reads (and discards) until EOF, and only then
// writes exactly that many bytes and closes. The client reads to EOF.
//
// A perf server does work on a stranger's behalf, without limit: the spec
// says it SHOULD NOT be enabled by default and should not run on publicly
// reachable nodes. This package therefore registers nothing; a node serves
// perf only if its owner installs Serve as a handler.
package perf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// ID is the protocol ID, as negotiated with multistream-select.
const ID = "/perf/1.0.0"

// BufferSize is the size of every read and write either side makes. Memory
// use per stream is this constant, whatever the amounts requested.
const BufferSize = 64 << 10

// StallTimeout is how long Serve waits for any progress (a successful read
// or write) before it gives up on the stream. It is the only limit Serve
// applies: it detects clients that went away without a reset, or that
// stopped reading, while never capping how much or how long a live client
// transfers (the spec allows requests of 2^64−1 bytes).
const StallTimeout = 30 * time.Second

// ErrWrongLength is wrapped by Run's error when the server sent more or
// fewer bytes than requested.
var ErrWrongLength = errors.New("perf: server sent a different number of bytes than requested")

// ErrStalled is wrapped by Serve's error when the stream made no progress
// for StallTimeout.
var ErrStalled = errors.New("perf: stream stalled")

// Stream is what both sides need from a muxed stream: node.Stream and
// transport.Stream satisfy it. If the value also has a Reset method, it is
// used to abandon the stream on failure so the peer sees an error rather
// than a clean end.
type Stream interface {
	io.ReadWriteCloser
	// CloseWrite half-closes: the peer reads EOF, we may still read.
	CloseWrite() error
}

// resetter is the optional abort of a Stream.
type resetter interface {
	Reset() error
}

// abort abandons s: a reset when the stream has one, else a close.
func abort(s Stream) {
	if r, ok := s.(resetter); ok {
		_ = r.Reset()
		return
	}
	_ = s.Close()
}

// payload is what both sides send. The content is arbitrary (the spec asks
// only that it be generated in advance); zeros shared read-only by every
// stream cost nothing per stream and leak nothing between streams.
var payload [BufferSize]byte

// readBufs holds scratch buffers for the reading side. They are never
// written to the peer, so a buffer's previous contents cannot leak.
var readBufs = sync.Pool{New: func() any { return new([BufferSize]byte) }}

// Serve answers one perf stream: it reads the requested length, discards
// the upload until EOF, sends the requested number of bytes and closes s.
// A request of 2^64−1 bytes is served until the client goes away (the
// timer-based benchmark). On any failure, including no progress for
// StallTimeout, Serve resets s (or closes it) and returns the error.
func Serve(s Stream) error {
	_, err := serve(s, StallTimeout)
	return err
}

// serve is Serve with an adjustable stall timeout; it also returns the
// number of upload bytes read, for tests.
func serve(s Stream, stall time.Duration) (uploaded uint64, err error) {
	g := startGuard(stall, func() { abort(s) })
	uploaded, err = serveStream(s, g)
	stalled := g.stop()
	if err != nil {
		if stalled {
			err = fmt.Errorf("%w (no progress for %v): %w", ErrStalled, stall, err)
		}
		abort(s)
		return uploaded, err
	}
	if err := s.Close(); err != nil {
		return uploaded, fmt.Errorf("perf: close stream: %w", err)
	}
	return uploaded, nil
}

// serveStream does the server's reads and writes, reporting progress to g.
func serveStream(s Stream, g *stallGuard) (uint64, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		return 0, fmt.Errorf("perf: read request: %w", err)
	}
	g.tick()
	want := binary.BigEndian.Uint64(hdr[:])

	// Step 2 of the spec: the upload is read to EOF before anything is
	// sent (never concurrently).
	buf := readBufs.Get().(*[BufferSize]byte)
	defer readBufs.Put(buf)
	var uploaded uint64
	for {
		n, err := s.Read(buf[:])
		if n > 0 {
			uploaded += uint64(n)
			g.tick()
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return uploaded, fmt.Errorf("perf: read upload after %d bytes: %w", uploaded, err)
		}
	}

	if err := writeN(s, want, g); err != nil {
		return uploaded, fmt.Errorf("perf: send %d bytes: %w", want, err)
	}
	return uploaded, nil
}

// writeN writes n payload bytes in BufferSize chunks, reporting progress
// to g (nil: no reporting).
func writeN(w io.Writer, n uint64, g *stallGuard) error {
	var sent uint64
	for sent < n {
		chunk := payload[:min(n-sent, BufferSize)]
		m, err := w.Write(chunk)
		sent += uint64(m)
		if m > 0 && g != nil {
			g.tick()
		}
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", sent, err)
		}
		if m < len(chunk) {
			return fmt.Errorf("after %d bytes: %w", sent, io.ErrShortWrite)
		}
	}
	return nil
}

// Result is what Run measured. Byte counts are what was actually
// transferred, which on error may be less than asked for.
type Result struct {
	// Upload is the number of bytes uploaded (after the 8-byte request).
	Upload uint64
	// Download is the number of bytes received from the server.
	Download uint64
	// UploadTime runs from just before the request is written until the
	// first downloaded byte arrives (or, with nothing to download, until
	// the server's EOF). The server sends nothing before it has read the
	// whole upload, so this covers the upload's delivery, not merely its
	// buffering, plus the server's turnaround and one one-way trip.
	UploadTime time.Duration
	// DownloadTime runs from the arrival of the first downloaded byte to
	// the server's EOF: it counts every byte but the first read's travel.
	DownloadTime time.Duration
	// Total runs from just before the request is written to the server's
	// EOF; it equals UploadTime + DownloadTime.
	Total time.Duration
}

// UploadMbps is the upload throughput in megabits (10^6 bits) per second;
// 0 if nothing was timed.
func (r Result) UploadMbps() float64 { return mbps(r.Upload, r.UploadTime) }

// DownloadMbps is the download throughput in megabits (10^6 bits) per
// second; 0 if nothing was timed.
func (r Result) DownloadMbps() float64 { return mbps(r.Download, r.DownloadTime) }

// UploadMBps is the upload throughput in megabytes (10^6 bytes) per second.
func (r Result) UploadMBps() float64 { return r.UploadMbps() / 8 }

// DownloadMBps is the download throughput in megabytes (10^6 bytes) per
// second.
func (r Result) DownloadMBps() float64 { return r.DownloadMbps() / 8 }

func mbps(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) * 8 / d.Seconds() / 1e6
}

// Run performs one perf exchange as the client on s: it requests download
// bytes, uploads upload bytes, closes its write side and reads to EOF. It
// fails with an error wrapping ErrWrongLength if the server sends more or
// fewer bytes than requested (it stops reading at the first excess byte).
//
// Run owns s: it closes it after success and resets it (or closes it) on
// failure. Cancelling ctx aborts the exchange; the Result then holds what
// was transferred so far, which is how a timer-based benchmark (download
// 2^64−1, cancel after the timer) reads its figures.
func Run(ctx context.Context, s Stream, upload, download uint64) (Result, error) {
	stop := context.AfterFunc(ctx, func() { abort(s) })
	res, err := runStream(s, upload, download)
	if !stop() && err == nil {
		err = fmt.Errorf("perf: %w", ctx.Err())
	} else if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	if err != nil {
		abort(s)
		return res, err
	}
	if err := s.Close(); err != nil {
		return res, fmt.Errorf("perf: close stream: %w", err)
	}
	return res, nil
}

// runStream does the client's reads and writes and the timing.
func runStream(s Stream, upload, download uint64) (res Result, err error) {
	start := time.Now()
	var first, end time.Time
	// Durations are filled in on every return, so a failed or cancelled
	// run still reports what it measured.
	defer func() {
		if end.IsZero() {
			end = time.Now()
		}
		if first.IsZero() {
			first = end
		}
		res.UploadTime = first.Sub(start)
		res.DownloadTime = end.Sub(first)
		res.Total = end.Sub(start)
	}()

	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], download)
	if _, err := s.Write(hdr[:]); err != nil {
		return res, fmt.Errorf("perf: write request: %w", err)
	}
	cw := &countingWriter{w: s}
	err = writeN(cw, upload, nil)
	res.Upload = cw.n
	if err != nil {
		return res, fmt.Errorf("perf: upload %d bytes: %w", upload, err)
	}
	if err := s.CloseWrite(); err != nil {
		return res, fmt.Errorf("perf: close write side: %w", err)
	}

	buf := readBufs.Get().(*[BufferSize]byte)
	defer readBufs.Put(buf)
	for {
		// Never ask for more than one byte beyond the request, so an
		// overlong answer is caught without reading it all.
		limit := BufferSize
		if left := download - res.Download; left < uint64(limit) {
			limit = int(left) + 1
		}
		n, err := s.Read(buf[:limit])
		if n > 0 {
			if first.IsZero() {
				first = time.Now()
			}
			res.Download += uint64(n)
			if res.Download > download {
				return res, fmt.Errorf("%w: got more than the %d bytes requested", ErrWrongLength, download)
			}
		}
		if errors.Is(err, io.EOF) {
			end = time.Now()
			break
		}
		if err != nil {
			return res, fmt.Errorf("perf: download after %d bytes: %w", res.Download, err)
		}
	}
	if res.Download != download {
		return res, fmt.Errorf("%w: got %d bytes, requested %d", ErrWrongLength, res.Download, download)
	}
	return res, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n uint64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += uint64(n)
	return n, err
}

// stallGuard aborts a stream when a whole period passes without progress.
// Progress is a counter bumped after each successful read or write, so the
// hot path costs one atomic add per BufferSize bytes.
type stallGuard struct {
	progress atomic.Uint64
	period   time.Duration
	abort    func()

	mu      sync.Mutex
	timer   *time.Timer
	seen    uint64 // progress at the previous check
	stopped bool
	stalled bool
}

// startGuard calls abort once if period passes without a tick.
func startGuard(period time.Duration, abort func()) *stallGuard {
	g := &stallGuard{period: period, abort: abort}
	g.mu.Lock()
	g.timer = time.AfterFunc(period, g.check)
	g.mu.Unlock()
	return g
}

// tick records progress.
func (g *stallGuard) tick() { g.progress.Add(1) }

func (g *stallGuard) check() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	if p := g.progress.Load(); p != g.seen {
		g.seen = p
		g.timer.Reset(g.period)
		return
	}
	g.stalled, g.stopped = true, true
	g.abort()
}

// stop ends the guard and reports whether it fired.
func (g *stallGuard) stop() (stalled bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopped = true
	g.timer.Stop()
	return g.stalled
}
