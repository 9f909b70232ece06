package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Processes are started with os.StartProcess rather than os/exec, which
// would add about 150 KB to the mote binary for what two functions do.

// pipeDrain bounds the wait for a process's output after it exited (a
// grandchild may still hold the pipe).
const pipeDrain = time.Second

// runProcess runs bin with args in dir and returns its stdout (at most
// maxOut bytes: more is an error) and the tail of its stderr. ctx kills
// the process.
func runProcess(ctx context.Context, bin string, args, env []string, dir string, maxOut int) ([]byte, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, "", err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, "", err
	}
	p, err := startProcess(bin, args, env, dir, outW, errW)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, "", err
	}
	stop := context.AfterFunc(ctx, func() { p.Kill() })
	defer stop()
	// The reaper bounds the reads: output a grandchild still holds open
	// must not keep us once the process has exited.
	var state *os.ProcessState
	var werr error
	exited := make(chan struct{})
	go func() {
		state, werr = p.Wait()
		deadline := time.Now().Add(pipeDrain)
		outR.SetReadDeadline(deadline)
		errR.SetReadDeadline(deadline)
		close(exited)
	}()
	stderr := &tailBuffer{max: 8 << 10}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		drain(errR, stderr.Write)
	}()
	var stdout []byte
	rerr := drain(outR, func(b []byte) (int, error) {
		if len(stdout)+len(b) > maxOut {
			p.Kill()
			return 0, fmt.Errorf("stdout exceeded %d bytes", maxOut)
		}
		stdout = append(stdout, b...)
		return len(b), nil
	})
	<-exited
	wg.Wait()
	outR.Close()
	errR.Close()
	switch {
	case werr != nil:
		err = werr
	case !state.Success():
		err = errors.New(state.String())
	case rerr != nil:
		err = rerr
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return stdout, strings.TrimSpace(stderr.String()), err
}

// drain reads f to its end, handing what it reads to write, and returns
// write's error. (io.Copy from a file would link the splice and sendfile
// paths of package os into the binary.)
func drain(f *os.File, write func([]byte) (int, error)) error {
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			return nil
		}
	}
}

// startProcess starts bin with stdin from the null device and stdout and
// stderr to the given files.
func startProcess(bin string, args, env []string, dir string, stdout, stderr *os.File) (*os.Process, error) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	return os.StartProcess(bin, append([]string{bin}, args...), &os.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []*os.File{null, stdout, stderr},
		Sys:   sysProcAttr(),
	})
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent
// use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.cut = true
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut {
		return "[...]" + string(b.buf)
	}
	return string(b.buf)
}
