// Package abuse is mote's hardening proof suite. Its tests build the mote
// binary, run `mote daemon` with the server and iot presets, attack it from
// the outside over loopback (from 127.0.0.2–127.0.0.9, with the per-IP
// limits applied to loopback), and check what each attack costs the daemon
// (RSS from /proc, goroutines and limit counters from `mote stats`) and
// that a well-behaved peer from 127.0.0.1 is served during and after it.
//
// The attacks are those of the hardening issue: QUIC Initial junk,
// peerstore amplification, handshake slots, accept errors, the node-wide
// stream and connection budget, half-closed streams, the dial filter, the
// control API and interned protocol IDs. Each test logs its figures in one
// line per preset (go test -v), for docs/SECURITY.md.
//
// The package holds no code of its own: everything is in its tests.
package abuse
