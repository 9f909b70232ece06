package transport

import (
	"errors"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure/noise"
)

// TEMPORARY until secure/tls lands.
const tlsID = "/tls/1.0.0"

var defaultSecurity = []string{noise.ID}

func newTLSSecurer(key peer.PrivateKey, muxers []string) (securer, error) {
	return securer{}, errors.New("tls: not available")
}
