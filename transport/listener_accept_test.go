//go:build unix

package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// acceptErr is err as net.TCPListener.Accept returns it.
func acceptErr(err error) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", err)}
}

func TestAcceptRetryable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"EMFILE", acceptErr(syscall.EMFILE), true},
		{"ENFILE", acceptErr(syscall.ENFILE), true},
		{"ENOBUFS", acceptErr(syscall.ENOBUFS), true},
		{"ENOMEM", acceptErr(syscall.ENOMEM), true},
		{"ECONNABORTED", acceptErr(syscall.ECONNABORTED), true},
		{"EAGAIN", acceptErr(syscall.EAGAIN), true},
		{"bare errno", syscall.EMFILE, true},
		{"wrapped", fmt.Errorf("accept: %w", acceptErr(syscall.EMFILE)), true},
		{"deadline", &net.OpError{Op: "accept", Net: "tcp", Err: os.ErrDeadlineExceeded}, true},
		{"ETIMEDOUT", acceptErr(syscall.ETIMEDOUT), true},
		{"closed", &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}, false},
		{"EBADF", acceptErr(syscall.EBADF), false},
		{"EINVAL", acceptErr(syscall.EINVAL), false},
		{"unknown", errors.New("boom"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := AcceptRetryable(tc.err); got != tc.want {
				t.Errorf("AcceptRetryable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// wantBackoff is the pause before each retry of a run of temporary
// accept errors.
var wantBackoff = []time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond,
	80 * time.Millisecond, 160 * time.Millisecond, 320 * time.Millisecond, 640 * time.Millisecond,
	time.Second, time.Second,
}

func TestAcceptBackoff(t *testing.T) {
	var d time.Duration
	for i, want := range wantBackoff {
		if d = AcceptBackoff(d); d != want {
			t.Fatalf("pause %d = %v, want %v", i, d, want)
		}
	}
}

// acceptStep is what one Accept of a scriptedListener returns.
type acceptStep struct {
	c   net.Conn
	err error
}

// scriptedListener is a raw listener whose Accept returns the steps fed
// to it, in order, and reports when it is called on calls (if not nil).
type scriptedListener struct {
	steps  chan acceptStep
	calls  chan time.Time
	closed chan struct{}
	once   sync.Once
}

func newScriptedListener(calls bool, steps ...acceptStep) *scriptedListener {
	s := &scriptedListener{steps: make(chan acceptStep, len(steps)), closed: make(chan struct{})}
	if calls {
		s.calls = make(chan time.Time)
	}
	for _, st := range steps {
		s.steps <- st
	}
	return s
}

func (s *scriptedListener) Accept() (net.Conn, error) {
	if s.calls != nil {
		select {
		case s.calls <- time.Now():
		case <-s.closed:
			return nil, net.ErrClosed
		}
	}
	select {
	case st := <-s.steps:
		return st.c, st.err
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

func (s *scriptedListener) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

func (s *scriptedListener) Addr() net.Addr { return memAddr(1) }

// TestListenerAcceptRetries: temporary accept errors pause the accept loop
// for 5 ms doubling to 1 s, are counted, and accepting resumes; a success
// resets the pause, and Close ends a pause at once, leaving no goroutine.
func TestListenerAcceptRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lu, du := newUpgrader(t), newUpgrader(t)
		raw := newScriptedListener(true)
		ln, err := lu.Listen(raw, "memory", memMultiaddr)
		if err != nil {
			t.Fatal(err)
		}
		l := ln.(AcceptErrorCounter)
		temporary := []error{
			acceptErr(syscall.EMFILE), acceptErr(syscall.ENFILE), acceptErr(syscall.ENOBUFS),
			acceptErr(syscall.ENOMEM), acceptErr(syscall.ECONNABORTED), acceptErr(syscall.EAGAIN),
			&net.OpError{Op: "accept", Net: "tcp", Err: os.ErrDeadlineExceeded},
		}
		last := <-raw.calls
		for i, want := range wantBackoff {
			raw.steps <- acceptStep{err: temporary[i%len(temporary)]}
			at := <-raw.calls
			if got := at.Sub(last); got != want {
				t.Errorf("accept %d came %v after the error, want %v", i+1, got, want)
			}
			last = at
		}
		if n := l.AcceptErrors(); n != uint64(len(wantBackoff)) {
			t.Errorf("AcceptErrors = %d, want %d", n, len(wantBackoff))
		}

		// Accepting works again: a connection is upgraded and delivered.
		dc, lc := newPipe()
		raw.steps <- acceptStep{c: lc}
		out, err := du.UpgradeOutbound(t.Context(), dc, lu.LocalPeer(),
			Endpoint{Transport: "memory", Local: ma.StringCast("/memory/2"), Remote: ma.StringCast("/memory/1")})
		if err != nil {
			t.Fatal(err)
		}
		in, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if in.RemotePeer() != du.LocalPeer() {
			t.Errorf("accepted %s, want %s", in.RemotePeer(), du.LocalPeer())
		}
		in.Close()
		out.Close()

		// The success reset the pause.
		last = <-raw.calls
		raw.steps <- acceptStep{err: acceptErr(syscall.EMFILE)}
		if at := <-raw.calls; at.Sub(last) != wantBackoff[0] {
			t.Errorf("after a success, accept came %v after the error, want %v", at.Sub(last), wantBackoff[0])
		}

		// Close during a pause returns at once (in fake time: the pause is
		// not waited out).
		raw.steps <- acceptStep{err: acceptErr(syscall.EMFILE)}
		synctest.Wait() // the loop is paused
		start := time.Now()
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Close waited %v for the pause", d)
		}
		if _, err := ln.Accept(); !errors.Is(err, ErrListenerClosed) {
			t.Errorf("Accept after Close = %v, want ErrListenerClosed", err)
		}
		if n := l.AcceptErrors(); n != uint64(len(wantBackoff))+2 {
			t.Errorf("AcceptErrors = %d, want %d", n, len(wantBackoff)+2)
		}
	})
}

// TestListenerAcceptStops: an error that is not temporary ends the
// listener as before, Accept reporting it; an unknown one is logged, the
// raw listener being closed under us is not.
func TestListenerAcceptStops(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		logged bool
	}{
		{"unknown", errors.New("boom"), true},
		{"EBADF", acceptErr(syscall.EBADF), true},
		{"closed", &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			lu := newUpgrader(t, func(c *UpgraderConfig) {
				c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))
			})
			ln, err := lu.Listen(newScriptedListener(false, acceptStep{err: tc.err}), "memory", memMultiaddr)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if _, err := ln.Accept(); !errors.Is(err, tc.err) {
				t.Fatalf("Accept = %v, want %v", err, tc.err)
			}
			// Accept returned after the loop logged and stopped.
			if got := strings.Contains(logs.String(), "listener stopped"); got != tc.logged {
				t.Errorf("logged %v, want %v; log: %q", got, tc.logged, logs.String())
			}
			if n := ln.(AcceptErrorCounter).AcceptErrors(); n != 0 {
				t.Errorf("AcceptErrors = %d, want 0", n)
			}
		})
	}
}

// Environment of the child process of TestListenerAcceptEMFILE.
const envAcceptChild = "MOTE_ACCEPT_CHILD" // "1": run as the listening child

// acceptChildSpare is how many file descriptors the child leaves itself
// free after listening: a few connections get in, and then accept fails
// with EMFILE.
const acceptChildSpare = 3

// TestListenerAcceptEMFILE: a TCP listener that runs out of file
// descriptors keeps listening, and accepts again once some are free. The
// listener runs in a child process (this test re-executed) whose fd limit
// is lowered to just above what it uses; the parent fills it with silent
// connections until the child reports accept errors, closes them, and
// then dials and upgrades a connection.
func TestListenerAcceptEMFILE(t *testing.T) {
	if os.Getenv(envAcceptChild) == "1" {
		acceptChild(t)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("counts open file descriptors in /proc/self/fd")
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ch := startAcceptChild(t, ctx)

	f := strings.Fields(ch.line(t, ctx, "listening"))
	if len(f) != 3 {
		t.Fatalf("child said %q", f)
	}
	addr, err := ma.NewMultiaddr(f[1])
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.Decode(f[2])
	if err != nil {
		t.Fatal(err)
	}
	na := addr[0].Value() + ":" + addr[1].Value()

	// Far more connections than the child has fds for: the first few sit
	// in their handshake, the rest wait in the kernel's accept queue.
	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	for range 8 * acceptChildSpare {
		c, err := net.Dial("tcp", na)
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for ch.acceptErrors(t, ctx) == 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("the child's accepts did not fail")
		}
	}
	for _, c := range silent {
		c.Close()
	}
	silent = nil

	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	defer dcancel()
	du := newUpgrader(t)
	c, err := NewTCP(du).Dial(dctx, addr, id)
	if err != nil {
		t.Fatalf("dial after fd exhaustion: %v", err)
	}
	defer c.Close()
	if got := strings.TrimPrefix(ch.line(t, ctx, "accepted"), "accepted "); got != du.LocalPeer().String() {
		t.Errorf("child accepted %s, want %s", got, du.LocalPeer())
	}
	n := ch.acceptErrors(t, ctx)
	if n == 0 {
		t.Error("child counted no accept errors")
	}
	t.Logf("child retried %d accept errors", n)
	c.Close()
	if err := ch.finish(); err != nil {
		t.Errorf("child: %v\n%s", err, ch.stderr.String())
	}
}

// acceptChild is the child's side of TestListenerAcceptEMFILE: it listens,
// lowers its fd limit, says where it listens, and then answers the
// parent's questions (one a line on stdin) until stdin ends.
func acceptChild(t *testing.T) {
	lu := newUpgrader(t, func(c *UpgraderConfig) {
		c.HandshakeTimeout = time.Minute // only the parent frees the fds
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	})
	l, err := NewTCP(lu).Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				fmt.Println("accept stopped:", err)
				return
			}
			fmt.Println("accepted", c.RemotePeer())
		}
	}()
	// The entries include the directory's own fd, closed again by now.
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = uint64(len(fds) + acceptChildSpare)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	fmt.Println("listening", l.Multiaddr(), lu.LocalPeer())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "count":
			fmt.Println("errors", l.(AcceptErrorCounter).AcceptErrors())
		default:
			t.Fatalf("unknown request %q", sc.Text())
		}
	}
}

// acceptChildProc is the running child of TestListenerAcceptEMFILE.
type acceptChildProc struct {
	cmd    *exec.Cmd
	stdin  io.Closer
	in     *bufio.Writer
	lines  chan string // the child's stdout, by line; closed at its end
	stderr lockedBuffer
	wait   func() error
}

// lockedBuffer is a bytes.Buffer safe to read while exec writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startAcceptChild starts the child, and ends it (killing it if need be)
// when the test ends.
func startAcceptChild(t *testing.T, ctx context.Context) *acceptChildProc {
	t.Helper()
	cctx, kill := context.WithCancel(ctx)
	ch := &acceptChildProc{lines: make(chan string, 64)}
	ch.cmd = exec.CommandContext(cctx, os.Args[0], "-test.run=^TestListenerAcceptEMFILE$", "-test.count=1")
	ch.cmd.Env = append(os.Environ(), envAcceptChild+"=1")
	ch.cmd.Stderr = &ch.stderr
	stdin, err := ch.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := ch.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch.stdin, ch.in = stdin, bufio.NewWriter(stdin)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(ch.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case ch.lines <- sc.Text():
			case <-cctx.Done():
				return
			}
		}
	}()
	// Reading stdout must end before Wait; the child ends when its stdin
	// does.
	ch.wait = sync.OnceValue(func() error {
		ch.stdin.Close()
		select {
		case <-readDone:
		case <-cctx.Done():
		}
		err := ch.cmd.Wait()
		<-readDone
		return err
	})
	t.Cleanup(func() {
		kill()
		ch.wait()
	})
	return ch
}

// line waits for the child's next line starting with prefix, skipping
// others.
func (ch *acceptChildProc) line(t *testing.T, ctx context.Context, prefix string) string {
	t.Helper()
	for {
		select {
		case l, ok := <-ch.lines:
			if !ok {
				t.Fatalf("child ended before saying %q\n%s", prefix, ch.stderr.String())
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
			t.Logf("child: %s", l)
		case <-ctx.Done():
			t.Fatalf("child did not say %q", prefix)
		}
	}
}

// acceptErrors asks the child for its listener's AcceptErrors.
func (ch *acceptChildProc) acceptErrors(t *testing.T, ctx context.Context) uint64 {
	t.Helper()
	ch.in.WriteString("count\n")
	if err := ch.in.Flush(); err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(ch.line(t, ctx, "errors"), "errors "), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// finish ends the child's stdin and waits for it to exit.
func (ch *acceptChildProc) finish() error { return ch.wait() }
