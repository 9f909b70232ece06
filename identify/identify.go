package identify

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/wire/multiaddr"
	"github.com/mote-p2p/mote/wire/pb"
)

// Bounds on the strings kept from a peer. A whole message is already capped
// at MaxMessageSize, but Verify accepts any Message, and these values end up
// in logs and peer stores.
const (
	// MaxProtocolLen bounds one protocol ID; longer ones are dropped.
	// multistream-select cannot negotiate IDs this long anyway.
	MaxProtocolLen = 1024
	// MaxVersionLen bounds AgentVersion and ProtocolVersion; longer ones
	// are truncated (at a UTF-8 boundary).
	MaxVersionLen = 1024
)

// ErrPeerMismatch is wrapped when a peer's identify message carries a
// public key that does not belong to the peer the connection authenticated.
var ErrPeerMismatch = errors.New("identify: public key does not match the connection's peer")

// ErrBadRecord is wrapped when the signed peer record in an identify
// message does not open (bad signature, wrong domain or type, malformed) or
// is for a different peer.
var ErrBadRecord = errors.New("identify: invalid signed peer record")

// Info is what the local node says about itself. The node keeps one and
// passes it to Serve for every identify and push stream.
type Info struct {
	// Key is the node's identity key; only its public half is sent. Nil
	// omits the public key (insecure transports only).
	Key peer.PrivateKey
	// ListenAddrs are the node's addresses, most preferred first: if they
	// do not fit the 4 KiB go-libp2p budget, the tail is dropped.
	ListenAddrs []multiaddr.Multiaddr
	// Protocols are the protocol IDs the node accepts inbound streams for,
	// sent in this order (go-libp2p sends them sorted).
	Protocols []string
	// AgentVersion names the software, e.g. "mote/0.1.0".
	AgentVersion string
	// ProtocolVersion is free-form and usually empty (Kubo sends none).
	ProtocolVersion string
	// SignedRecord is the cached marshalled envelope of the node's signed
	// peer record (see peer.SealPeerRecord); nil sends none. It is cached
	// because signing on every connection would be wasteful.
	SignedRecord []byte
}

// Build assembles the identify message for one connection. observed is the
// remote address of that connection as we see it; it tells the peer how it
// looks from outside, which feeds its NAT detection. Like go-libp2p,
// loopback listen addresses are left out unless observed is itself a
// loopback address, and ListenAddrs are trimmed so the message without the
// signed record stays within 4 KiB.
func Build(info *Info, observed multiaddr.Multiaddr) *Message {
	m := new(Message)
	if info == nil {
		return m
	}
	if info.Key != nil {
		if pub := info.Key.Public(); pub != nil {
			m.PublicKey = peer.MarshalPublicKey(pub)
		}
	}
	if len(info.Protocols) > 0 {
		m.Protocols = append([]string(nil), info.Protocols...)
	}
	if len(observed) > 0 {
		m.ObservedAddr = observed.Bytes()
	}
	m.ProtocolVersion = info.ProtocolVersion
	m.AgentVersion = info.AgentVersion

	size := m.size()
	keepLoopback := len(observed) == 0 || isLoopback(observed)
	for _, a := range info.ListenAddrs {
		if len(a) == 0 || (!keepLoopback && isLoopback(a)) {
			continue
		}
		b := a.Bytes()
		n := pb.SizeBytes(fieldListenAddrs, len(b))
		if size+n > maxOwnMessageSize {
			break
		}
		size += n
		m.ListenAddrs = append(m.ListenAddrs, b)
	}
	if len(info.SignedRecord) > 0 {
		m.SignedPeerRecord = info.SignedRecord
	}
	return m
}

// isLoopback reports whether a starts with a loopback IP (127.0.0.0/8,
// ::1, or an IPv4-mapped loopback), skipping a leading IPv6 zone.
func isLoopback(a multiaddr.Multiaddr) bool {
	if len(a) > 0 && a[0].Code() == multiaddr.P_IP6ZONE {
		a = a[1:]
	}
	if len(a) == 0 {
		return false
	}
	switch a[0].Code() {
	case multiaddr.P_IP4, multiaddr.P_IP6:
		return net.IP(a[0].RawValue()).IsLoopback()
	}
	return false
}

// Serve answers an identify stream (or opens a push): it writes the
// message for info and closes s, which is how the reader learns the message
// is complete. s is closed even when writing fails.
func Serve(s io.WriteCloser, info *Info, observed multiaddr.Multiaddr) error {
	err := WriteMessage(s, Build(info, observed))
	cerr := s.Close()
	if err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("identify: close stream after writing: %w", cerr)
	}
	return nil
}

// Result is a peer's identify message after verification, in parsed form.
// Byte slices may be shared with the Message it came from.
type Result struct {
	// Peer is the authenticated remote peer the message was checked against.
	Peer peer.ID
	// PublicKey is the peer's key, or nil if the message carried none.
	PublicKey peer.PublicKey
	// ListenAddrs are the peer's addresses: those of the signed record if
	// it had a valid one, else the unsigned ones; deduplicated, unparsable
	// and empty entries dropped, at most MaxAddrs.
	ListenAddrs []multiaddr.Multiaddr
	// Protocols are deduplicated; empty or over-long IDs are dropped.
	Protocols []string
	// ObservedAddr is our address as the peer sees it, or nil if absent
	// or unparsable.
	ObservedAddr multiaddr.Multiaddr
	// AgentVersion and ProtocolVersion are bounded to MaxVersionLen bytes.
	AgentVersion    string
	ProtocolVersion string
	// SignedRecord is the opened signed peer record, or nil.
	SignedRecord *peer.PeerRecord
	// SignedEnvelope is the marshalled envelope SignedRecord came from, so
	// the node can store or forward it; nil when SignedRecord is nil.
	SignedEnvelope []byte
}

// Verify checks a peer's identify message against remote, the peer the
// secure channel authenticated, and parses it.
//
// It fails if the public key is present but unparsable or not remote's
// (ErrPeerMismatch), or if a signed peer record is present but does not
// open or is for another peer (ErrBadRecord). go-libp2p only logs these
// cases; we refuse them because a correct peer never sends them and
// accepting them would let a peer vouch for addresses it cannot sign.
//
// As in go-libp2p, when a valid signed record is present its addresses are
// the only ones used: the peer committed to them under its own key, and
// they can be passed on to third parties verifiably, unlike field 2.
func Verify(m *Message, remote peer.ID) (*Result, error) {
	if m == nil {
		return nil, errors.New("identify: verify: nil message")
	}
	res := &Result{Peer: remote}

	if len(m.PublicKey) > 0 {
		pub, err := peer.UnmarshalPublicKey(m.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("identify: public key sent by %s: %w", remote, err)
		}
		if !remote.MatchesPublicKey(pub) {
			return nil, fmt.Errorf("%w: peer %s sent the public key of %s", ErrPeerMismatch, remote, peer.IDFromPublicKey(pub))
		}
		res.PublicKey = pub
	}

	if len(m.SignedPeerRecord) > 0 {
		rec, _, err := peer.OpenPeerRecord(m.SignedPeerRecord)
		if err != nil {
			return nil, fmt.Errorf("%w from %s: %w", ErrBadRecord, remote, err)
		}
		if rec.ID != remote {
			return nil, fmt.Errorf("%w: peer %s sent a record for %s", ErrBadRecord, remote, rec.ID)
		}
		res.SignedRecord = rec
		res.SignedEnvelope = m.SignedPeerRecord
		res.ListenAddrs = uniqueAddrs(rec.Addrs)
	} else {
		parsed := make([]multiaddr.Multiaddr, 0, min(len(m.ListenAddrs), MaxAddrs))
		for _, b := range m.ListenAddrs {
			a, err := multiaddr.NewMultiaddrBytes(b)
			if err != nil {
				continue // one bad address must not hide the others
			}
			parsed = append(parsed, a)
		}
		res.ListenAddrs = uniqueAddrs(parsed)
	}

	res.Protocols = cleanProtocols(m.Protocols)
	if len(m.ObservedAddr) > 0 {
		if a, err := multiaddr.NewMultiaddrBytes(m.ObservedAddr); err == nil && len(a) > 0 {
			res.ObservedAddr = a
		}
	}
	res.AgentVersion = boundString(m.AgentVersion, MaxVersionLen)
	res.ProtocolVersion = boundString(m.ProtocolVersion, MaxVersionLen)
	return res, nil
}

// uniqueAddrs drops empty and repeated addresses, keeping the first
// MaxAddrs distinct ones in order. It returns a new slice.
func uniqueAddrs(in []multiaddr.Multiaddr) []multiaddr.Multiaddr {
	out := make([]multiaddr.Multiaddr, 0, min(len(in), MaxAddrs))
	seen := make(map[string]struct{}, min(len(in), MaxAddrs))
	for _, a := range in {
		if len(out) == MaxAddrs {
			break
		}
		if len(a) == 0 {
			continue
		}
		k := string(a.Bytes())
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, a)
	}
	return out
}

// cleanProtocols drops empty, over-long and repeated protocol IDs, keeping
// at most MaxProtocols in order. It returns a new slice.
func cleanProtocols(in []string) []string {
	out := make([]string, 0, min(len(in), MaxProtocols))
	seen := make(map[string]struct{}, min(len(in), MaxProtocols))
	for _, p := range in {
		if len(out) == MaxProtocols {
			break
		}
		if p == "" || len(p) > MaxProtocolLen {
			continue
		}
		if _, dup := seen[p]; dup {
			continue
		}
		seen[p] = struct{}{}
		out = append(out, p)
	}
	return out
}

// boundString truncates s to at most n bytes without leaving a partial
// UTF-8 sequence at the end.
func boundString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// Request reads a peer's identify message from s (the stream we opened
// with ID, or the push stream the peer opened with PushID) until the peer
// closes it, and verifies it against remote. The caller closes s.
func Request(s io.Reader, remote peer.ID) (*Result, error) {
	m, err := ReadMessage(s)
	if err != nil {
		return nil, err
	}
	return Verify(m, remote)
}
