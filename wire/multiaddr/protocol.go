package multiaddr

// Protocol codes from the multicodec table. The names match go-multiaddr's
// so callers migrate by changing the import path.
const (
	P_IP4               = 0x0004
	P_TCP               = 0x0006
	P_DCCP              = 0x0021
	P_IP6               = 0x0029
	P_IP6ZONE           = 0x002a
	P_IPCIDR            = 0x002b
	P_DNS               = 0x0035
	P_DNS4              = 0x0036
	P_DNS6              = 0x0037
	P_DNSADDR           = 0x0038
	P_SCTP              = 0x0084
	P_UDP               = 0x0111
	P_P2P_WEBRTC_DIRECT = 0x0114 // Deprecated: use P_WEBRTC_DIRECT.
	P_WEBRTC_DIRECT     = 0x0118
	P_WEBRTC            = 0x0119
	P_CIRCUIT           = 0x0122
	P_UDT               = 0x012d
	P_UTP               = 0x012e
	P_UNIX              = 0x0190
	P_P2P               = 0x01a5
	P_IPFS              = P_P2P // the old name of p2p, still accepted in text
	P_HTTPS             = 0x01bb
	P_ONION3            = 0x01bd
	P_TLS               = 0x01c0
	P_SNI               = 0x01c1
	P_NOISE             = 0x01c6
	P_QUIC              = 0x01cc
	P_QUIC_V1           = 0x01cd
	P_WEBTRANSPORT      = 0x01d1
	P_CERTHASH          = 0x01d2
	P_WS                = 0x01dd
	P_WSS               = 0x01de
	P_HTTP              = 0x01e0
	P_HTTP_PATH         = 0x01e1
	P_MEMORY            = 0x0309
	P_PLAINTEXTV2       = 0x706c61
)

// LengthPrefixedVarSize is the Size of protocols whose value is preceded by
// its length as a varint.
const LengthPrefixedVarSize = -1

// Protocol describes one multiaddr protocol.
type Protocol struct {
	// Name is the protocol's name in the text form, such as "ip4".
	Name string
	// Code is the protocol's multicodec, written as a varint in the binary form.
	Code int
	// Size is the size of the value in bits: 0 for none, positive for a
	// fixed size, LengthPrefixedVarSize for a varint-length-prefixed value.
	Size int
	// Path reports that the value is the rest of the text address, slashes
	// included (unix).
	Path bool

	kind kind
}

// kind selects how a protocol's value is converted and validated.
type kind uint8

const (
	kindNone     kind = iota
	kindIP4           // 4 bytes, dotted quad
	kindIP6           // 16 bytes, RFC 5952 text
	kindPort          // 2 bytes big endian, decimal
	kindCIDR          // 1 byte, decimal
	kindName          // non-empty bytes without '/', printed as they are
	kindUnix          // absolute path
	kindP2P           // peer ID multihash, base58btc
	kindCertHash      // any multihash, multibase
	kindHTTPPath      // non-empty bytes, query-escaped
	kindMemory        // 8 bytes big endian, decimal
	kindOnion3        // 35-byte onion key and port, base32:port
)

// protocols is every protocol this package knows, sorted by code so that
// binary input can be looked up by binary search.
var protocols = [...]Protocol{
	{Name: "ip4", Code: P_IP4, Size: 32, kind: kindIP4},
	{Name: "tcp", Code: P_TCP, Size: 16, kind: kindPort},
	{Name: "dccp", Code: P_DCCP, Size: 16, kind: kindPort},
	{Name: "ip6", Code: P_IP6, Size: 128, kind: kindIP6},
	{Name: "ip6zone", Code: P_IP6ZONE, Size: LengthPrefixedVarSize, kind: kindName},
	{Name: "ipcidr", Code: P_IPCIDR, Size: 8, kind: kindCIDR},
	{Name: "dns", Code: P_DNS, Size: LengthPrefixedVarSize, kind: kindName},
	{Name: "dns4", Code: P_DNS4, Size: LengthPrefixedVarSize, kind: kindName},
	{Name: "dns6", Code: P_DNS6, Size: LengthPrefixedVarSize, kind: kindName},
	{Name: "dnsaddr", Code: P_DNSADDR, Size: LengthPrefixedVarSize, kind: kindName},
	{Name: "sctp", Code: P_SCTP, Size: 16, kind: kindPort},
	{Name: "udp", Code: P_UDP, Size: 16, kind: kindPort},
	{Name: "p2p-webrtc-direct", Code: P_P2P_WEBRTC_DIRECT},
	{Name: "webrtc-direct", Code: P_WEBRTC_DIRECT},
	{Name: "webrtc", Code: P_WEBRTC},
	{Name: "p2p-circuit", Code: P_CIRCUIT},
	{Name: "udt", Code: P_UDT},
	{Name: "utp", Code: P_UTP},
	{Name: "unix", Code: P_UNIX, Size: LengthPrefixedVarSize, Path: true, kind: kindUnix},
	{Name: "p2p", Code: P_P2P, Size: LengthPrefixedVarSize, kind: kindP2P},
	{Name: "https", Code: P_HTTPS},
	{Name: "onion3", Code: P_ONION3, Size: 296, kind: kindOnion3},
	{Name: "tls", Code: P_TLS},
	{Name: "sni", Code: P_SNI, Size: LengthPrefixedVarSize, kind: kindName},
	{Name: "noise", Code: P_NOISE},
	{Name: "quic", Code: P_QUIC},
	{Name: "quic-v1", Code: P_QUIC_V1},
	{Name: "webtransport", Code: P_WEBTRANSPORT},
	{Name: "certhash", Code: P_CERTHASH, Size: LengthPrefixedVarSize, kind: kindCertHash},
	{Name: "ws", Code: P_WS},
	{Name: "wss", Code: P_WSS},
	{Name: "http", Code: P_HTTP},
	{Name: "http-path", Code: P_HTTP_PATH, Size: LengthPrefixedVarSize, kind: kindHTTPPath},
	{Name: "memory", Code: P_MEMORY, Size: 64, kind: kindMemory},
	{Name: "plaintextv2", Code: P_PLAINTEXTV2},
}

// ProtocolWithCode returns the protocol with the given code, and false if
// this package does not know it.
func ProtocolWithCode(code int) (Protocol, bool) {
	if code >= 0 {
		if p := protocolByCode(uint64(code)); p != nil {
			return *p, true
		}
	}
	return Protocol{}, false
}

// ProtocolWithName returns the protocol with the given text name, and false
// if this package does not know it. "ipfs" is the old name of p2p.
func ProtocolWithName(name string) (Protocol, bool) {
	if p := protocolByName(name); p != nil {
		return *p, true
	}
	return Protocol{}, false
}

func protocolByCode(code uint64) *Protocol {
	lo, hi := 0, len(protocols)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		switch c := uint64(protocols[mid].Code); {
		case c == code:
			return &protocols[mid]
		case c < code:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return nil
}

func protocolByName(name string) *Protocol {
	if name == "ipfs" {
		name = "p2p"
	}
	for i := range protocols {
		if protocols[i].Name == name {
			return &protocols[i]
		}
	}
	return nil
}
