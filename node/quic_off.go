//go:build noquic

package node

import (
	"github.com/mote-p2p/mote/peer"
	p2ptls "github.com/mote-p2p/mote/secure/tls"
	"github.com/mote-p2p/mote/transport"
)

// newQUIC returns no transport: this binary was built with the noquic tag,
// so QUIC addresses have no transport and are neither listened on nor dialed.
func newQUIC(peer.PrivateKey, *p2ptls.Identity, *Config) (transport.Transport, error) {
	return nil, nil
}
