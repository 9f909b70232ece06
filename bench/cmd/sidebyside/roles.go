package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mote-p2p/mote/bench/internal/procstat"

	"github.com/mote-p2p/mote/bench/internal/benchproto"
)

// A child process runs one role of one stack, talking to the parent in
// lines: commands on standard input, one JSON object per line on standard
// output (an "error" field reports a failure).
//
//   - listen (A): listens on one transport; prints {"id","addr"}, then
//     answers "stats" (runtime figures after GC), "count" (accepted
//     connections and CPU time, no GC) and "wait N" (until it holds N
//     identified connections with one idle hold stream each).
//   - hold (B): answers "grow N" by opening connections, each from a node
//     of its own identity with one hold stream that has echoed a byte,
//     until it has N.
//   - latency (B): N times, a fresh node dials, opens an echo stream and
//     echoes one byte; prints the times.
//   - tput (B): writes -bytes to a sink stream in 64 KiB writes; prints
//     the time from the sink's ready byte to its byte count.
//   - rate (B): -c nodes dial, wait for identify and disconnect in a loop
//     for -dur; prints {"event":"start"} and {"event":"stop"} around the
//     window, then the totals.
//
// Either ends when standard input ends.

// roleArgs are the flags of a child.
type roleArgs struct {
	role, stack, transport string
	peer, addr             string
	n                      int
	bytes                  int64
	concurrency            int
	dur                    time.Duration
	preset                 string
	classic                bool
}

// out writes JSON lines to standard output; safe for concurrent use.
type out struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (o *out) emit(v any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.enc.Encode(v)
}

func (o *out) fail(err error) {
	o.emit(map[string]string{"error": strings.ReplaceAll(err.Error(), "\n", "; ")})
}

// runRole runs a child role; its errors are reported on standard output.
func runRole(a roleArgs) int {
	procstat.RaiseNoFile()
	o := &out{enc: json.NewEncoder(os.Stdout)}
	st, ok := stacks[a.stack]
	if !ok {
		o.fail(fmt.Errorf("stack %q is not in this binary (have %v)", a.stack, stackNames()))
		return 1
	}
	if a.classic {
		c, ok := st.(interface{ withClassic() stack })
		if !ok {
			o.fail(fmt.Errorf("stack %q has no -classic setting", a.stack))
			return 1
		}
		st = c.withClassic()
	}
	var err error
	switch a.role {
	case "listen":
		err = roleListen(o, st, a)
	case "hold":
		err = roleHold(o, st, a)
	case "latency":
		err = roleLatency(o, st, a)
	case "tput":
		err = roleTput(o, st, a)
	case "rate":
		err = roleRate(o, st, a)
	default:
		err = fmt.Errorf("unknown role %q", a.role)
	}
	if err != nil {
		o.fail(fmt.Errorf("%s %s/%s: %w", a.role, a.stack, a.transport, err))
		return 1
	}
	return 0
}

// listenStats is A's answer to "stats" and "count".
type listenStats struct {
	procstat.Go
	Conns    int    `json:"conns"`
	Held     int64  `json:"held"`
	Accepted uint64 `json:"accepted"`
}

func roleListen(o *out, st stack, a roleArgs) error {
	srv, err := st.listen(a.transport, a.preset)
	if err != nil {
		return err
	}
	defer srv.close()
	o.emit(map[string]string{"id": srv.id(), "addr": srv.addr()})
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "stats":
			g := procstat.Settled()
			o.emit(listenStats{g, srv.conns(), srv.held(), srv.accepted()})
		case "count":
			o.emit(listenStats{Go: procstat.Go{CPU: int64(procstat.CPUTime())}, Accepted: srv.accepted()})
		case "wait":
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil || len(f) != 2 {
				o.fail(fmt.Errorf("bad command %q", sc.Text()))
				continue
			}
			timeout := time.Minute + time.Duration(n)*20*time.Millisecond
			deadline := time.Now().Add(timeout)
			for srv.conns() != n || srv.held() != int64(n) {
				if time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if c, h := srv.conns(), srv.held(); c != n || h != int64(n) {
				o.fail(fmt.Errorf("after %v: %d connections, %d held streams; want %d", timeout, c, h, n))
				continue
			}
			o.emit(listenStats{Conns: srv.conns(), Held: srv.held()})
		default:
			o.fail(fmt.Errorf("unknown command %q", sc.Text()))
		}
	}
	return nil
}

func roleHold(o *out, st stack, a roleArgs) error {
	var (
		clients []client
		streams []stream
	)
	defer func() {
		// Close in parallel: thousands of nodes take a while one by one.
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(clients) {
						return
					}
					if streams[i] != nil {
						streams[i].Close()
					}
					if clients[i] != nil {
						clients[i].close()
					}
				}
			})
		}
		wg.Wait()
	}()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || f[0] != "grow" {
			o.fail(fmt.Errorf("bad command %q", sc.Text()))
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < len(clients) {
			o.fail(fmt.Errorf("bad command %q (have %d connections)", sc.Text(), len(clients)))
			continue
		}
		from := len(clients)
		clients = append(clients, make([]client, n-from)...)
		streams = append(streams, make([]stream, n-from)...)
		if err := grow(st, a, clients[from:], streams[from:]); err != nil {
			o.fail(err) // what was made is closed on exit
			continue
		}
		o.emit(map[string]int{"n": len(clients)})
	}
	return nil
}

// grow fills clients and streams: one node, connection and echoed hold
// stream each, eight at a time, since a mote listener keeps at most that
// many handshakes in progress from one IP, closing the oldest for a newer
// one (MaxHandshakesPerIP, default 8).
func grow(st stack, a roleArgs, clients []client, streams []stream) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var next atomic.Int64
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(clients) {
					return
				}
				err := func() error {
					c, err := st.newPeer(a.transport)
					if err != nil {
						return err
					}
					mu.Lock()
					clients[i] = c
					mu.Unlock()
					if err := c.connect(ctx, a.peer, a.addr, true); err != nil {
						return err
					}
					s, err := c.open(ctx, benchproto.Hold)
					if err != nil {
						return err
					}
					mu.Lock()
					streams[i] = s
					mu.Unlock()
					return benchproto.EchoByte(s)
				}()
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("connection %d: %w", i, err))
					mu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

func roleLatency(o *out, st stack, a roleArgs) error {
	const warmup = 2
	samples := make([]int64, 0, a.n)
	for i := range a.n + warmup {
		c, err := st.newPeer(a.transport) // key generation: untimed
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t0 := time.Now()
		err = func() error {
			if err := c.connect(ctx, a.peer, a.addr, false); err != nil {
				return err
			}
			s, err := c.open(ctx, benchproto.Echo)
			if err != nil {
				return err
			}
			defer s.Close()
			return benchproto.EchoByte(s)
		}()
		d := time.Since(t0)
		cancel()
		c.close()
		if err != nil {
			return fmt.Errorf("iteration %d: %w", i, err)
		}
		if i >= warmup {
			samples = append(samples, d.Nanoseconds())
		}
	}
	o.emit(map[string][]int64{"samples_ns": samples})
	return nil
}

func roleTput(o *out, st stack, a roleArgs) error {
	c, err := st.newPeer(a.transport)
	if err != nil {
		return err
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.connect(ctx, a.peer, a.addr, true); err != nil {
		return err
	}
	s, err := c.open(ctx, benchproto.Sink)
	if err != nil {
		return err
	}
	// The ready byte also takes in the answer to a lazy protocol proposal,
	// keeping its round trip out of the timed transfer.
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err != nil {
		return fmt.Errorf("sink ready: %w", err)
	}
	buf := make([]byte, 64<<10)
	cpu0 := procstat.CPUTime()
	t0 := time.Now()
	for left := a.bytes; left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := s.Write(buf[:k]); err != nil {
			s.Reset()
			return err
		}
		left -= k
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	var cnt [8]byte
	if _, err := io.ReadFull(s, cnt[:]); err != nil {
		return fmt.Errorf("sink count: %w", err)
	}
	d := time.Since(t0)
	cpu := procstat.CPUTime() - cpu0
	s.Close()
	if got := binary.BigEndian.Uint64(cnt[:]); got != uint64(a.bytes) {
		return fmt.Errorf("sink received %d bytes, sent %d", got, a.bytes)
	}
	o.emit(map[string]int64{"bytes": a.bytes, "ns": d.Nanoseconds(), "cpu_ns": cpu.Nanoseconds()})
	return nil
}

func roleRate(o *out, st stack, a roleArgs) error {
	clients := make([]client, a.concurrency)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.close()
			}
		}
	}()
	for i := range clients {
		c, err := st.newPeer(a.transport)
		if err != nil {
			return err
		}
		clients[i] = c
	}
	var stop atomic.Bool
	var dials, fails atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	o.emit(map[string]string{"event": "start"})
	t0 := time.Now()
	for _, c := range clients {
		wg.Go(func() {
			for !stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := c.connect(ctx, a.peer, a.addr, true)
				cancel()
				if err != nil {
					fails.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					time.Sleep(10 * time.Millisecond)
					continue
				}
				dials.Add(1)
				c.disconnect()
			}
		})
	}
	time.Sleep(a.dur)
	stop.Store(true)
	o.emit(map[string]string{"event": "stop"})
	elapsed := time.Since(t0)
	wg.Wait()
	res := map[string]any{"dials": dials.Load(), "failed": fails.Load(), "ns": elapsed.Nanoseconds()}
	if e := firstErr.Load(); e != nil {
		res["first_failure"] = e
	}
	o.emit(res)
	return nil
}
