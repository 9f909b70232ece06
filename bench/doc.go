// Package bench holds end-to-end benchmarks of mote nodes on loopback TCP
// (real sockets on 127.0.0.1, Noise + yamux), measured the way
// docs/GO-LIBP2P-BASELINE.md measured go-libp2p so that the figures can be
// compared: A listens, B dials.
//
// The package has no non-test code; everything lives in node_test.go,
// which is Linux-only (it reads /proc/self/status and raises
// RLIMIT_NOFILE).
//
//   - BenchmarkDialFirstStream: per iteration a fresh dialer node (created
//     outside the timer, since it generates a key) connects to the
//     listener, opens a stream on an echo protocol, writes 1 byte and
//     reads it back. Reports p50/p99 of that whole round trip and the p50
//     of its two parts: Connect alone (TCP + multistream + Noise, muxer
//     agreed in the handshake) and the first stream (which waits for
//     identify, as go-libp2p's does). allocs/op and cpu-ms/op cover both
//     ends, which share the process, during the timed region only.
//   - BenchmarkThroughput: one stream to a sink protocol that discards and
//     finally replies with the byte count; each iteration writes one chunk
//     (64 KiB or 1 MiB). The timer stops when the count arrives, so MB/s
//     (10⁶ B) is end to end. cpu-ns/B is the CPU of both ends per byte.
//   - BenchmarkIdleConnMemory: the listener in this process accepts N
//     connections (default 1000; -conns or MOTE_BENCH_CONNS) from a child
//     process (this test binary re-executed) that runs N nodes, each with
//     its own identity. Every connection is identified and holds one idle
//     stream, as in the baseline. Reported per connection, as deltas after
//     GC at the listener only: HeapInuse, StackInuse, VmRSS and goroutines.
//     It measures once per process; further b.N rounds reuse the result.
//
// Run them all:
//
//	go test ./bench -run '^$' -bench . -benchmem
//
// or one, with options:
//
//	go test ./bench -run '^$' -bench DialFirstStream -benchtime 200x -benchmem
//	go test ./bench -run '^$' -bench IdleConnMemory -conns 500
//
// Without -bench, `go test ./bench` runs only TestBenchSmoke, a small
// version of each benchmark that checks the results are sane.
package bench
