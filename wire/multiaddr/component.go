package multiaddr

import (
	"errors"
	"fmt"
	"slices"

	"github.com/mote-p2p/mote/wire"
)

// ErrUnknownProtocol is wrapped by errors about a protocol code or name this
// package does not know.
var ErrUnknownProtocol = errors.New("unknown protocol")

// Component is one protocol of an address and its value. The zero
// Component has no protocol; it prints as "" and its code is 0.
type Component struct {
	p   *Protocol // points into protocols
	enc string    // binary form: code varint, length varint if any, value
	off int       // start of the value in enc
}

// NewComponent returns the component for the protocol called name, with
// value in text form ("" for protocols without a value). For unix the value
// is the path, starting with '/'.
func NewComponent(name, value string) (Component, error) {
	p := protocolByName(name)
	if p == nil {
		return Component{}, fmt.Errorf("multiaddr: %w %.64q", ErrUnknownProtocol, name)
	}
	var buf [64]byte
	b, err := appendComponent(buf[:0], p, value)
	if err != nil {
		return Component{}, fmt.Errorf("multiaddr: %w", err)
	}
	if len(b) > MaxAddrLen {
		return Component{}, fmt.Errorf("multiaddr: %w", errTooLong(len(b)))
	}
	c, err := readComponent(string(b))
	if err != nil {
		return Component{}, fmt.Errorf("multiaddr: %w", err)
	}
	return c, nil
}

// appendComponent appends the binary form of protocol p with the value in
// text form.
func appendComponent(dst []byte, p *Protocol, text string) ([]byte, error) {
	dst = wire.AppendUvarint(dst, uint64(p.Code))
	start := len(dst)
	dst, err := appendValue(dst, p, text)
	if err != nil {
		return nil, fmt.Errorf("%s value %.64q: %w", p.Name, text, err)
	}
	if p.Size < 0 {
		var hdr [wire.MaxUvarintLen]byte
		dst = slices.Insert(dst, start, wire.AppendUvarint(hdr[:0], uint64(len(dst)-start))...)
	}
	return dst, nil
}

// readComponent reads and validates the component at the start of s. The
// component keeps a substring of s rather than a copy.
func readComponent(s string) (Component, error) {
	code, n, err := wire.Uvarint(s)
	if err != nil {
		return Component{}, fmt.Errorf("protocol code: %w", err)
	}
	p := protocolByCode(code)
	if p == nil {
		return Component{}, fmt.Errorf("%w code %d", ErrUnknownProtocol, code)
	}
	size := p.Size / 8
	if p.Size < 0 {
		v, m, err := wire.Uvarint(s[n:])
		if err != nil {
			return Component{}, fmt.Errorf("%s value length: %w", p.Name, err)
		}
		n += m
		// go-multiaddr refuses empty values too; none of these protocols
		// could print one.
		if v == 0 {
			return Component{}, fmt.Errorf("%s value is empty", p.Name)
		}
		if v > uint64(len(s)-n) {
			return Component{}, fmt.Errorf("%s value of %d bytes, only %d left", p.Name, v, len(s)-n)
		}
		size = int(v)
	} else if size > len(s)-n {
		return Component{}, fmt.Errorf("%s value needs %d bytes, only %d left", p.Name, size, len(s)-n)
	}
	c := Component{p: p, enc: s[:n+size], off: n}
	if err := checkValue(p, c.enc[n:]); err != nil {
		return Component{}, fmt.Errorf("%s value: %w", p.Name, err)
	}
	return c, nil
}

// Code returns the protocol code, or 0 for the zero Component.
func (c Component) Code() int {
	if c.p == nil {
		return 0
	}
	return c.p.Code
}

// Protocol returns the component's protocol, or the zero Protocol for the
// zero Component.
func (c Component) Protocol() Protocol {
	if c.p == nil {
		return Protocol{}
	}
	return *c.p
}

// RawValue returns a copy of the value in binary form, empty for protocols
// without a value.
func (c Component) RawValue() []byte {
	return []byte(c.enc[c.off:])
}

// Value returns the value in text form, "" for protocols without a value.
func (c Component) Value() string {
	if c.p == nil {
		return ""
	}
	switch c.p.kind {
	case kindName, kindUnix:
		return c.enc[c.off:] // the text form is the value itself
	}
	var buf [64]byte
	return string(appendText(buf[:0], c.p, c.enc[c.off:]))
}

// Bytes returns a copy of the component's binary form.
func (c Component) Bytes() []byte {
	return []byte(c.enc)
}

// String returns the text form: "/name/value", or "/name" for protocols
// without a value.
func (c Component) String() string {
	var buf [128]byte
	return string(c.appendTo(buf[:0]))
}

// Equal reports whether c and o have the same protocol and value.
func (c Component) Equal(o Component) bool {
	return c.enc == o.enc
}

func (c Component) appendTo(dst []byte) []byte {
	if c.p == nil {
		return dst
	}
	dst = append(dst, '/')
	dst = append(dst, c.p.Name...)
	if c.p.Size == 0 {
		return dst
	}
	// A path supplies its own leading slash.
	if !c.p.Path {
		dst = append(dst, '/')
	}
	return appendText(dst, c.p, c.enc[c.off:])
}
