// Package multiaddr implements multiaddrs, the self-describing network
// addresses of libp2p, with the standard library only, together with the
// net helpers of go-multiaddr/net. The text and binary forms match
// go-multiaddr's byte for byte, and the API keeps its names and mostly its
// shapes, so code written against go-multiaddr mostly needs a new import.
//
// Binary addresses come from untrusted peers (identify, peer records), so
// parsing bounds every length, never panics and copies its input.
package multiaddr

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MaxAddrLen is the longest binary address accepted, in bytes. Real
// addresses are well under 200 bytes; the bound keeps hostile input cheap.
// Text input may be up to 16 times longer, enough for the text form of any
// address within the limit (the worst is p2p-webrtc-direct: 18 characters
// for 2 bytes).
const MaxAddrLen = 1024

const maxTextLen = 16 * MaxAddrLen

// MaxComponents is the most components an accepted address may have. Real
// addresses have at most about 10 (Kubo's longest is
// /ip4/x/udp/y/quic-v1/webtransport/certhash/A/certhash/B/p2p/Z, and a
// relayed one adds /p2p-circuit/p2p/Z); 32 leaves room for a relay hop more.
// The bound matters because a parsed component costs more in memory (a
// 32-byte Component) than on the wire (as little as 2 bytes): without it, a
// MaxAddrLen address of 512 /ipcidr components would cost 16 KiB to hold.
// NewMultiaddr and NewMultiaddrBytes enforce it; Join and Encapsulate do not,
// as they do not enforce MaxAddrLen either.
const MaxComponents = 32

// ErrProtocolNotFound is returned by ValueForProtocol when the address has no
// component with the code asked for.
var ErrProtocolNotFound = errors.New("multiaddr: protocol not found in address")

var errEmpty = errors.New("empty address")

func errTooLong(n int) error {
	return fmt.Errorf("address of %d bytes is over the %d-byte limit", n, MaxAddrLen)
}

var errTooMany = fmt.Errorf("address of more than %d components is over the limit", MaxComponents)

// Multiaddr is an address: a sequence of components. The zero value (nil) is
// the empty address, which NewMultiaddr and NewMultiaddrBytes refuse.
//
// Components are immutable, so Multiaddrs may share them freely; a
// Multiaddr's own backing array should not be changed once others hold it.
type Multiaddr []Component

// NewMultiaddr parses the text form of an address, such as
// "/ip4/1.2.3.4/tcp/4001". Trailing slashes are ignored, "ipfs" is read as
// "p2p", and the empty string is an error.
func NewMultiaddr(s string) (Multiaddr, error) {
	if len(s) > maxTextLen {
		return nil, fmt.Errorf("multiaddr: %d characters is over the %d-character limit", len(s), maxTextLen)
	}
	var buf [128]byte
	b, err := textToBytes(buf[:0], s)
	if err != nil {
		// Errors quote input cut short: it may be long, and it may be
		// hostile.
		return nil, fmt.Errorf("multiaddr %.128q: %w", s, err)
	}
	m, err := parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("multiaddr %.128q: %w", s, err)
	}
	return m, nil
}

// textToBytes appends the binary form of the text address s.
func textToBytes(dst []byte, s string) ([]byte, error) {
	s = strings.TrimRight(s, "/")
	if s == "" {
		return nil, errEmpty
	}
	if s[0] != '/' {
		return nil, errors.New("does not start with '/'")
	}
	rest := s[1:]
	for n := 1; ; n++ {
		// Checked here too so that hostile text fails before it is all
		// converted.
		if n > MaxComponents {
			return nil, errTooMany
		}
		name, after, more := strings.Cut(rest, "/")
		p := protocolByName(name)
		if p == nil {
			return nil, fmt.Errorf("%w %.64q", ErrUnknownProtocol, name)
		}
		value := ""
		if p.Size != 0 {
			if !more {
				return nil, fmt.Errorf("%s needs a value", p.Name)
			}
			if p.Path {
				// The value is everything left, with its leading slash.
				value, more = rest[len(name):], false
			} else {
				value, after, more = strings.Cut(after, "/")
			}
		}
		var err error
		if dst, err = appendComponent(dst, p, value); err != nil {
			return nil, err
		}
		if len(dst) > MaxAddrLen {
			return nil, errTooLong(len(dst))
		}
		if !more {
			return dst, nil
		}
		rest = after
	}
}

// NewMultiaddrBytes parses the binary form of an address. The result does
// not share memory with b.
func NewMultiaddrBytes(b []byte) (Multiaddr, error) {
	// Checked before string(b) copies the input.
	if len(b) > MaxAddrLen {
		return nil, fmt.Errorf("multiaddr: %w", errTooLong(len(b)))
	}
	m, err := parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("multiaddr: %w", err)
	}
	return m, nil
}

// parse reads the binary address s. Components are substrings of s, so an
// address costs two allocations: s and the component slice.
func parse(s string) (Multiaddr, error) {
	if s == "" {
		return nil, errEmpty
	}
	if len(s) > MaxAddrLen {
		return nil, errTooLong(len(s))
	}
	var buf [8]Component
	cs := buf[:0]
	for off := 0; off < len(s); {
		if n := len(cs); n > 0 && cs[n-1].p.Path {
			return nil, fmt.Errorf("%s must be the last component", cs[n-1].p.Name)
		}
		if len(cs) == MaxComponents {
			return nil, fmt.Errorf("at byte %d: %w", off, errTooMany)
		}
		c, err := readComponent(s[off:])
		if err != nil {
			return nil, fmt.Errorf("at byte %d: %w", off, err)
		}
		cs = append(cs, c)
		off += len(c.enc)
	}
	m := make(Multiaddr, len(cs))
	copy(m, cs)
	return m, nil
}

// StringCast is NewMultiaddr for constants and tests: it panics if s does
// not parse.
func StringCast(s string) Multiaddr {
	m, err := NewMultiaddr(s)
	if err != nil {
		panic(err)
	}
	return m
}

// Join returns a new address with the components of ms in order, or nil if
// there are none.
func Join(ms ...Multiaddr) Multiaddr {
	n := 0
	for _, m := range ms {
		n += len(m)
	}
	if n == 0 {
		return nil
	}
	out := make(Multiaddr, 0, n)
	for _, m := range ms {
		out = append(out, m...)
	}
	return out
}

// Bytes returns the binary form of m.
func (m Multiaddr) Bytes() []byte {
	n := 0
	for _, c := range m {
		n += len(c.enc)
	}
	b := make([]byte, 0, n)
	for _, c := range m {
		b = append(b, c.enc...)
	}
	return b
}

// String returns the text form of m, "" for the empty address.
func (m Multiaddr) String() string {
	var buf [256]byte
	b := buf[:0]
	for _, c := range m {
		b = c.appendTo(b)
	}
	return string(b)
}

// Equal reports whether m and o have the same components.
func (m Multiaddr) Equal(o Multiaddr) bool {
	if len(m) != len(o) {
		return false
	}
	for i := range m {
		if m[i].enc != o[i].enc {
			return false
		}
	}
	return true
}

// Compare orders addresses by their binary forms, returning -1, 0 or +1.
func (m Multiaddr) Compare(o Multiaddr) int {
	// Component encodings are prefix-free, so comparing them one by one
	// orders the same as comparing the concatenations.
	for i := range min(len(m), len(o)) {
		if c := strings.Compare(m[i].enc, o[i].enc); c != 0 {
			return c
		}
	}
	switch {
	case len(m) < len(o):
		return -1
	case len(m) > len(o):
		return 1
	}
	return 0
}

// Protocols returns the protocol of each component.
func (m Multiaddr) Protocols() []Protocol {
	out := make([]Protocol, len(m))
	for i, c := range m {
		out[i] = c.Protocol()
	}
	return out
}

// ValueForProtocol returns the text value of the first component with the
// given code, or ErrProtocolNotFound.
func (m Multiaddr) ValueForProtocol(code int) (string, error) {
	for _, c := range m {
		if c.Code() == code {
			return c.Value(), nil
		}
	}
	return "", ErrProtocolNotFound
}

// Encapsulate returns a new address: m followed by o.
func (m Multiaddr) Encapsulate(o Multiaddr) Multiaddr {
	return Join(m, o)
}

// Decapsulate returns m up to the last occurrence of o, or m itself if o
// does not occur (or is empty). As in go-multiaddr, the result is nil when
// o starts m, and it shares m's array, capped so appending to it copies.
func (m Multiaddr) Decapsulate(o Multiaddr) Multiaddr {
	if len(o) == 0 {
		return m
	}
	for i := len(m) - len(o); i >= 0; i-- {
		if m[i : i+len(o)].Equal(o) {
			if i == 0 {
				return nil
			}
			return m[:i:i]
		}
	}
	return m
}

// SplitFirst returns the first component and a copy of the rest, or nil
// and nil for the empty address.
func SplitFirst(m Multiaddr) (*Component, Multiaddr) {
	if len(m) == 0 {
		return nil, nil
	}
	first := m[0]
	return &first, Join(m[1:])
}

// SplitLast returns a copy of all but the last component, and the last
// component, or nil and nil for the empty address.
func SplitLast(m Multiaddr) (Multiaddr, *Component) {
	if len(m) == 0 {
		return nil, nil
	}
	last := m[len(m)-1]
	return Join(m[:len(m)-1]), &last
}

// MarshalText returns the text form.
func (m Multiaddr) MarshalText() ([]byte, error) {
	return []byte(m.String()), nil
}

// UnmarshalText parses the text form. Unlike NewMultiaddr it reads empty
// text as the empty address, so that every address MarshalText writes
// reads back. On error *m is left unchanged.
func (m *Multiaddr) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = nil
		return nil
	}
	a, err := NewMultiaddr(string(b))
	if err != nil {
		return err
	}
	*m = a
	return nil
}

// MarshalBinary returns the binary form.
func (m Multiaddr) MarshalBinary() ([]byte, error) {
	return m.Bytes(), nil
}

// UnmarshalBinary parses the binary form, reading empty input as the empty
// address as UnmarshalText does. On error *m is left unchanged.
func (m *Multiaddr) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		*m = nil
		return nil
	}
	a, err := NewMultiaddrBytes(b)
	if err != nil {
		return err
	}
	*m = a
	return nil
}

// MarshalJSON returns the text form as a JSON string.
func (m Multiaddr) MarshalJSON() ([]byte, error) {
	return json.Marshal(m.String())
}

// UnmarshalJSON parses a JSON string holding the text form; "" is the
// empty address and null leaves *m unchanged, as encoding/json expects.
func (m *Multiaddr) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("multiaddr: %w", err)
	}
	return m.UnmarshalText([]byte(s))
}
