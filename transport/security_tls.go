package transport

import (
	"context"
	"net"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure"
	"github.com/mote-p2p/mote/secure/noise"
	p2ptls "github.com/mote-p2p/mote/secure/tls"
)

const tlsID = p2ptls.ID

var defaultSecurity = []string{noise.ID, p2ptls.ID}

func newTLSSecurer(key peer.PrivateKey, id *p2ptls.Identity, muxers []string) (securer, error) {
	tt, err := p2ptls.New(p2ptls.Config{Key: key, Muxers: muxers, Identity: id})
	if err != nil {
		return securer{}, err
	}
	return securer{id: tlsID,
		outbound: func(ctx context.Context, c net.Conn, remote peer.ID) (secure.Conn, error) {
			return tt.SecureOutbound(ctx, c, remote)
		},
		inbound: func(ctx context.Context, c net.Conn) (secure.Conn, error) { return tt.SecureInbound(ctx, c) },
	}, nil
}
