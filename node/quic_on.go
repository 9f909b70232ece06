//go:build !noquic

package node

import (
	"github.com/mote-p2p/mote/peer"
	p2ptls "github.com/mote-p2p/mote/secure/tls"
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/transport/quic"
)

// newQUIC builds the QUIC transport with the node's limits. Built unless
// the noquic tag drops QUIC (and quic-go) from the binary.
func newQUIC(key peer.PrivateKey, id *p2ptls.Identity, cfg *Config) (transport.Transport, error) {
	l := cfg.Limits
	return quic.New(quic.Config{
		Key:                key,
		Identity:           id,
		MaxIncomingStreams: l.QUICMaxStreams,
		StreamWindow:       l.QUICStreamWindow,
		ConnWindow:         l.QUICConnWindow,
		KeepAlivePeriod:    l.KeepAlive,
		Logger:             cfg.Logger,
	})
}
