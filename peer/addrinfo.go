package peer

import (
	"fmt"
	"strings"

	"github.com/mote-p2p/mote/wire/multiaddr"
)

// AddrInfo is a peer and the addresses it may be reached at, as
// go-libp2p's peer.AddrInfo: what a bootstrap list, a DHT answer or a
// `/p2p/<id>` address names.
type AddrInfo struct {
	ID    ID
	Addrs []multiaddr.Multiaddr
}

// SplitP2P separates a trailing /p2p/<id> from addr; id is "" if there
// is none. A relayed address keeps its relay's /p2p: only the last one
// names the peer.
func SplitP2P(addr multiaddr.Multiaddr) (multiaddr.Multiaddr, ID, error) {
	n := len(addr)
	if n == 0 || addr[n-1].Protocol().Code != multiaddr.P_P2P {
		return addr, "", nil
	}
	id, err := IDFromBytes(addr[n-1].RawValue())
	if err != nil {
		return nil, "", fmt.Errorf("address %s: %w", addr, err)
	}
	return addr[:n-1], id, nil
}

// AddrInfoFromP2pAddr reads an address ending in /p2p/<id>; the address
// may be that component alone (the peer, no address).
func AddrInfoFromP2pAddr(addr multiaddr.Multiaddr) (AddrInfo, error) {
	rest, id, err := SplitP2P(addr)
	if err != nil {
		return AddrInfo{}, err
	}
	if id == "" {
		return AddrInfo{}, fmt.Errorf("address %s: no /p2p/<peer ID> at its end", addr)
	}
	ai := AddrInfo{ID: id}
	if len(rest) > 0 {
		ai.Addrs = []multiaddr.Multiaddr{rest}
	}
	return ai, nil
}

// AddrInfosFromP2pAddrs groups addresses ending in /p2p/<id> by peer, in
// the order the peers first appear.
func AddrInfosFromP2pAddrs(addrs ...multiaddr.Multiaddr) ([]AddrInfo, error) {
	var out []AddrInfo
	index := map[ID]int{}
	for _, a := range addrs {
		ai, err := AddrInfoFromP2pAddr(a)
		if err != nil {
			return nil, err
		}
		i, ok := index[ai.ID]
		if !ok {
			i = len(out)
			index[ai.ID] = i
			out = append(out, AddrInfo{ID: ai.ID})
		}
		out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
	}
	return out, nil
}

// P2pAddrs returns the addresses each with /p2p/<ID> appended (the peer's
// /p2p component alone if it has none), as they are written to share.
func (ai AddrInfo) P2pAddrs() ([]multiaddr.Multiaddr, error) {
	p2p, err := multiaddr.NewComponent("p2p", ai.ID.String())
	if err != nil {
		return nil, fmt.Errorf("address of %s: %w", ai.ID, err)
	}
	if len(ai.Addrs) == 0 {
		return []multiaddr.Multiaddr{{p2p}}, nil
	}
	out := make([]multiaddr.Multiaddr, len(ai.Addrs))
	for i, a := range ai.Addrs {
		out[i] = append(a[:len(a):len(a)], p2p)
	}
	return out, nil
}

// String writes the peer and its addresses, e.g. "{12D3Koo…: [/ip4/…]}".
func (ai AddrInfo) String() string {
	s := make([]string, len(ai.Addrs))
	for i, a := range ai.Addrs {
		s[i] = a.String()
	}
	return "{" + ai.ID.String() + ": [" + strings.Join(s, " ") + "]}"
}
