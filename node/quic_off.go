//go:build noquic

package node

import "github.com/mote-p2p/mote/transport"

// newQUIC returns no transport: this binary was built with the noquic tag,
// so QUIC addresses have no transport and are neither listened on nor dialed.
func newQUIC(TransportEnv) (transport.Transport, error) { return nil, nil }

// quicCounters has no QUIC transport to count.
func quicCounters([]transport.Transport, map[string]uint64) {}
