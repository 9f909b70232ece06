package multiaddr

import (
	"encoding/base32"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/mote-p2p/mote/wire/multibase"
)

// appendValue appends the binary form of text, a value of p in text form.
// It only converts; readComponent validates the result, so text and binary
// input are held to the same rules.
func appendValue(dst []byte, p *Protocol, text string) ([]byte, error) {
	switch p.kind {
	case kindIP4:
		a, err := netip.ParseAddr(text)
		if err != nil {
			return nil, err
		}
		if !a.Is4() {
			return nil, errors.New("not an IPv4 address")
		}
		b := a.As4()
		return append(dst, b[:]...), nil
	case kindIP6:
		a, err := netip.ParseAddr(text)
		if err != nil {
			return nil, err
		}
		// A zone has its own component (ip6zone), and go-multiaddr reads
		// plain IPv4 text here as the mapped address; we refuse both
		// rather than guess.
		if !a.Is6() || a.Zone() != "" {
			return nil, errors.New("not an IPv6 address without zone")
		}
		b := a.As16()
		return append(dst, b[:]...), nil
	case kindPort:
		n, err := parseUint(text, 16)
		return append(dst, byte(n>>8), byte(n)), err
	case kindCIDR:
		n, err := parseUint(text, 8)
		return append(dst, byte(n)), err
	case kindMemory:
		n, err := parseUint(text, 64)
		for shift := 56; shift >= 0; shift -= 8 {
			dst = append(dst, byte(n>>shift))
		}
		return dst, err
	case kindName, kindUnix:
		return append(dst, text...), nil
	case kindP2P:
		b, err := decodePeerID(text)
		return append(dst, b...), err
	case kindCertHash:
		b, err := multibase.Decode(text)
		return append(dst, b...), err
	case kindHTTPPath:
		s, err := url.QueryUnescape(text)
		return append(dst, s...), err
	case kindOnion3:
		return appendOnion3(dst, text)
	}
	if text != "" {
		return nil, errors.New("protocol takes no value")
	}
	return dst, nil
}

// parseUint parses a decimal number of at most bits bits, returning the
// bare strconv reason on failure since callers quote the text themselves.
func parseUint(s string, bits int) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, errors.Unwrap(err)
	}
	return n, nil
}

// onion3KeyLen is the length of an onion service v3 address without its
// port: an ed25519 key, a checksum and a version byte.
const onion3KeyLen = 35

// appendOnion3 parses "<56 base32 characters>:<port>".
func appendOnion3(dst []byte, text string) ([]byte, error) {
	host, port, ok := strings.Cut(text, ":")
	if !ok || strings.Contains(port, ":") || len(host) != 56 {
		return nil, errors.New("want 56 base32 characters, ':' and a port")
	}
	key, err := multibase.DecodeBase32(base32.StdEncoding, host)
	if err != nil {
		return nil, err
	}
	if len(key) != onion3KeyLen {
		return nil, fmt.Errorf("onion key of %d bytes, want %d", len(key), onion3KeyLen)
	}
	n, err := parseUint(port, 16)
	return append(append(dst, key...), byte(n>>8), byte(n)), err
}

// checkValue validates v, a value of p whose size readComponent checked.
func checkValue(p *Protocol, v string) error {
	switch p.kind {
	case kindName:
		// A slash could not be written in the text form.
		if strings.Contains(v, "/") {
			return errors.New("contains '/'")
		}
	case kindUnix:
		// These keep the text form, "/unix" followed by the path, parsable.
		if len(v) < 2 || v[0] != '/' {
			return errors.New("path must start with '/' and not be '/'")
		}
		if v[len(v)-1] == '/' {
			return errors.New("path must not end with '/'")
		}
	case kindP2P:
		return checkPeerID(v)
	case kindCertHash:
		_, _, err := checkMultihash(v)
		return err
	case kindOnion3:
		if v[onion3KeyLen] == 0 && v[onion3KeyLen+1] == 0 {
			return errors.New("onion port 0")
		}
	}
	return nil
}

// appendText appends the text form of v, a valid value of p.
func appendText(dst []byte, p *Protocol, v string) []byte {
	switch p.kind {
	case kindIP4:
		return netip.AddrFrom4([4]byte{v[0], v[1], v[2], v[3]}).AppendTo(dst)
	case kindIP6:
		var b [16]byte
		copy(b[:], v)
		// netip prints a mapped IPv4 address as ::ffff:1.2.3.4, as
		// go-multiaddr does.
		return netip.AddrFrom16(b).AppendTo(dst)
	case kindPort:
		return strconv.AppendUint(dst, uint64(v[0])<<8|uint64(v[1]), 10)
	case kindCIDR:
		return strconv.AppendUint(dst, uint64(v[0]), 10)
	case kindMemory:
		var n uint64
		for i := range 8 {
			n = n<<8 | uint64(v[i])
		}
		return strconv.AppendUint(dst, n, 10)
	case kindName, kindUnix:
		return append(dst, v...)
	case kindP2P:
		return multibase.AppendBase58(dst, v)
	case kindCertHash:
		return appendBase64URL(append(dst, 'u'), v)
	case kindHTTPPath:
		return append(dst, url.QueryEscape(v)...)
	case kindOnion3:
		start := len(dst)
		for i := 0; i < onion3KeyLen; i += 5 {
			dst = base32.StdEncoding.AppendEncode(dst, []byte(v[i:i+5]))
		}
		for i := start; i < len(dst); i++ {
			if c := dst[i]; 'A' <= c && c <= 'Z' {
				dst[i] = c + 'a' - 'A'
			}
		}
		dst = append(dst, ':')
		return strconv.AppendUint(dst, uint64(v[onion3KeyLen])<<8|uint64(v[onion3KeyLen+1]), 10)
	}
	return dst
}
