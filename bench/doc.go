// Package bench holds end-to-end benchmarks of mote nodes on loopback
// (real sockets on 127.0.0.1), measured the way go-libp2p was measured
// for docs/BENCHMARKS.md so that the figures can be compared: A listens,
// B dials.
//
// Every benchmark runs once per transport, as sub-benchmarks side by side:
//
//   - tcp: TCP + Noise + yamux. Both nodes are built with DisableQUIC and
//     the listener listens on /ip4/127.0.0.1/tcp/0 only.
//   - quic: QUIC v1 with libp2p TLS 1.3 and QUIC's own streams. The
//     listener listens on /ip4/127.0.0.1/udp/0/quic-v1 only, so every dial
//     to it is QUIC.
//   - quic-classic: the same with Config.ClassicKeyExchange on both nodes
//     (TLS key agreement with X25519 alone, no X25519MLKEM768).
//
// Every connection is checked to report the transport (State().Transport
// "tcp" or "quic-v1") and security ("/noise" or "/tls/1.0.0") of its
// sub-benchmark; any other fails it.
//
// The package has no non-test code; the benchmarks live in node_test.go and
// shortstream_test.go, which are Linux-only (node_test.go reads
// /proc/self/status and raises RLIMIT_NOFILE).
//
//   - BenchmarkDialFirstStream/{tcp,quic,quic-classic}: per iteration a fresh dialer
//     node (created outside the timer, since it generates keys) connects to
//     the listener, opens a stream on an echo protocol, writes 1 byte and
//     reads it back. Reports p50/p99 of that whole round trip and the p50
//     of its two parts: Connect alone (TCP: TCP + multistream + Noise,
//     muxer agreed in the handshake; QUIC: the QUIC + TLS handshake) and
//     the first stream (which proposes its protocol at once; it does not
//     wait for identify).
//     allocs/op and cpu-ms/op cover both ends, which share the process,
//     during the timed region only.
//   - BenchmarkThroughput/{tcp,quic,quic-classic}/write={64,1024}KiB: one stream to a
//     sink protocol that sends a ready byte (read before the timer starts),
//     discards, and finally replies with the byte count; each iteration
//     writes one chunk (64 KiB or 1 MiB). The timer stops when the count
//     arrives, so MB/s (10⁶ B) is end to end. cpu-ns/B is the CPU of both
//     ends per byte.
//   - BenchmarkIdleConnMemory/{tcp,quic,quic-classic}: the listener in this process
//     accepts N connections (default 1000; -conns or MOTE_BENCH_CONNS) from
//     a child process (this test binary re-executed, told the transport in
//     MOTE_BENCH_TRANS) that runs N nodes, each with its own identity.
//     Every connection is identified and holds one idle stream, as in the
//     baseline. Reported per connection, as deltas after GC at the
//     listener only: HeapInuse, StackInuse, VmRSS and goroutines. It
//     measures once per process and transport; further b.N rounds reuse the
//     result.
//   - BenchmarkShortStream/{mote,golibp2p}-{tcp,quic}: on one identified
//     connection, per iteration a stream opened optimistically, 32 bytes
//     written, the write side closed at once, the echo read to EOF; mote to
//     mote and go-libp2p to go-libp2p (TCP with Noise, QUIC). Reports the
//     p50 of an iteration; allocs/op cover both ends.
//
// bench is a module of its own (github.com/mote-p2p/mote/bench), so that
// it can require go-libp2p for cmd/sidebyside, which measures mote and
// go-libp2p side by side in one run, while the main module never does.
// Run the commands below in this directory.
//
// Run them all (every transport):
//
//	go test . -run '^$' -bench . -benchmem
//
// or one, or one transport, with options (-bench takes a regular
// expression per level of sub-benchmark, separated by slashes):
//
//	go test . -run '^$' -bench DialFirstStream -benchtime 200x -benchmem
//	go test . -run '^$' -bench 'DialFirstStream/quic' -benchmem
//	go test . -run '^$' -bench '/tcp' -benchmem
//	go test . -run '^$' -bench 'Throughput/quic/write=64KiB' -benchmem
//	go test . -run '^$' -bench 'IdleConnMemory/quic' -conns 500
//
// Without -bench, `go test .` runs TestBenchSmoke, a small version of
// each benchmark over each transport that checks the results are sane
// (-run 'BenchSmoke/.*/quic' for QUIC alone), and two interop tests
// against go-libp2p in-process: TestIdentifyPushFromGoLibp2p and
// TestMatrixGoLibp2p, `mote interop`'s matrix (interop/check) against a
// go-libp2p host driven as a check.Peer, every cell asserted
// (docs/INTEROP.md; -run Matrix -v prints it).
//
// The DHT has two more (docs/BENCHMARKS.md):
//
//	go run ./cmd/kadside        # 50 servers, mote and go-libp2p-kad-dht side by side
//	go test ./kadsim -run TestSimulation -v -timeout 2h -args -nodes 2000 -json FILE
//
// kadsim runs the real kademlia code on the simulated network in fake
// time; without -args its test runs a small network and asserts the
// issue's goals, and go run ./cmd/kadsim runs the same in real time.
package bench
