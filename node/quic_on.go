//go:build !noquic

package node

import (
	"github.com/mote-p2p/mote/transport"
	"github.com/mote-p2p/mote/transport/quic"
)

// newQUIC builds the QUIC transport with the node's limits. Built unless
// the noquic tag drops QUIC (and quic-go) from the binary.
func newQUIC(env TransportEnv) (transport.Transport, error) {
	cfg := env.Config
	l := cfg.Limits
	qc := quic.Config{
		Key:                env.Key,
		Identity:           env.TLS,
		MaxIncomingStreams: l.QUICMaxStreams,
		StreamWindow:       l.QUICStreamWindow,
		ConnWindow:         l.QUICConnWindow,
		KeepAlivePeriod:    l.KeepAlive,
		MaxHandshakes:      l.MaxInboundHandshakes,
		MaxHandshakesPerIP: l.MaxHandshakesPerIP,
		LimitLoopback:      cfg.LimitLoopback,
		Logger:             cfg.Logger,
	}
	if env.Budget != nil {
		qc.Memory = env.Budget
	}
	return quic.New(qc)
}

// quicCounters adds the QUIC transports' handshake refusals and Retries
// to m.
func quicCounters(ts []transport.Transport, m map[string]uint64) {
	for _, t := range ts {
		if q, ok := t.(*quic.Transport); ok {
			st := q.Stats()
			m[LimitQUICHandshakes] += st.Refused
			m[CounterQUICRetries] += st.Retries
		}
	}
}
