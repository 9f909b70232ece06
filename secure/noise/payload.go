package noise

import (
	"errors"
	"fmt"
)

// Limits applied when decoding a handshake payload.
const (
	// MaxPayloadSize bounds an encoded payload; a Noise message cannot
	// carry more than this anyway.
	MaxPayloadSize = 65535
	// maxMuxers is the longest muxer list honoured; longer lists are
	// ignored as a whole (as go-libp2p does).
	maxMuxers = 100
	// maxMuxerLen bounds one muxer protocol ID; longer entries are dropped.
	maxMuxerLen = 1024
)

// Field numbers of NoiseHandshakePayload and NoiseExtensions (payload.proto).
const (
	fieldIdentityKey = 1
	fieldIdentitySig = 2
	fieldExtensions  = 4

	fieldCertHashes   = 1
	fieldStreamMuxers = 2
)

// Protobuf wire types.
const (
	wireVarint = 0
	wireI64    = 1
	wireLen    = 2
	wireI32    = 5
)

var errPayload = errors.New("noise: malformed handshake payload")

// Payload is the libp2p NoiseHandshakePayload. Only the fields libp2p uses
// over TCP are kept; WebTransport cert hashes and unknown fields are skipped.
type Payload struct {
	// IdentityKey is the PublicKey protobuf of the sender's identity.
	IdentityKey []byte
	// IdentitySig signs "noise-libp2p-static-key:" ‖ the sender's static
	// X25519 public key with the identity key.
	IdentitySig []byte
	// Muxers is the early muxer list (extensions.stream_muxers), in
	// preference order.
	Muxers []string
}

// Append appends the protobuf encoding of p to b. Extensions are emitted
// only when Muxers is non-empty.
func (p Payload) Append(b []byte) []byte {
	b = appendBytes(b, fieldIdentityKey, p.IdentityKey)
	b = appendBytes(b, fieldIdentitySig, p.IdentitySig)
	if len(p.Muxers) > 0 {
		n := 0
		for _, m := range p.Muxers {
			n += 1 + uvarintLen(uint64(len(m))) + len(m)
		}
		b = appendUvarint(b, fieldExtensions<<3|wireLen)
		b = appendUvarint(b, uint64(n))
		for _, m := range p.Muxers {
			b = appendUvarint(b, fieldStreamMuxers<<3|wireLen)
			b = appendUvarint(b, uint64(len(m)))
			b = append(b, m...)
		}
	}
	return b
}

// DecodePayload parses a NoiseHandshakePayload. IdentityKey and IdentitySig
// alias b. Unknown fields are skipped; a muxer list longer than 100 entries
// is dropped, as are muxer IDs longer than 1024 bytes.
func DecodePayload(b []byte) (Payload, error) {
	var p Payload
	if len(b) > MaxPayloadSize {
		return p, fmt.Errorf("%w: %d bytes", errPayload, len(b))
	}
	nMuxers := 0
	for len(b) > 0 {
		field, wt, v, rest, err := nextField(b)
		if err != nil {
			return Payload{}, err
		}
		b = rest
		switch field {
		case fieldIdentityKey, fieldIdentitySig, fieldExtensions:
			if wt != wireLen {
				return Payload{}, fmt.Errorf("%w: field %d has wire type %d", errPayload, field, wt)
			}
		default:
			continue
		}
		switch field {
		case fieldIdentityKey:
			p.IdentityKey = v
		case fieldIdentitySig:
			p.IdentitySig = v
		case fieldExtensions:
			// Repeated fields of a message that occurs more than once are
			// concatenated (protobuf merge semantics).
			for len(v) > 0 {
				f, w, s, r, err := nextField(v)
				if err != nil {
					return Payload{}, err
				}
				v = r
				if f != fieldStreamMuxers {
					continue // cert hashes and unknown fields
				}
				if w != wireLen {
					return Payload{}, fmt.Errorf("%w: stream_muxers has wire type %d", errPayload, w)
				}
				nMuxers++
				if nMuxers > maxMuxers || len(s) > maxMuxerLen {
					continue
				}
				p.Muxers = append(p.Muxers, string(s))
			}
		}
	}
	if nMuxers > maxMuxers {
		p.Muxers = nil
	}
	return p, nil
}

// nextField reads one field from b. For wireLen fields v is the contents;
// for the other wire types v is nil.
func nextField(b []byte) (field uint64, wt int, v, rest []byte, err error) {
	key, n := readUvarint(b)
	if n <= 0 {
		return 0, 0, nil, nil, fmt.Errorf("%w: bad field key", errPayload)
	}
	b = b[n:]
	field, wt = key>>3, int(key&7)
	if field == 0 || field > 1<<29-1 {
		return 0, 0, nil, nil, fmt.Errorf("%w: bad field number", errPayload)
	}
	switch wt {
	case wireVarint:
		_, n = readUvarint(b)
		if n <= 0 {
			return 0, 0, nil, nil, fmt.Errorf("%w: bad varint", errPayload)
		}
		return field, wt, nil, b[n:], nil
	case wireI64:
		if len(b) < 8 {
			return 0, 0, nil, nil, fmt.Errorf("%w: truncated fixed64", errPayload)
		}
		return field, wt, nil, b[8:], nil
	case wireI32:
		if len(b) < 4 {
			return 0, 0, nil, nil, fmt.Errorf("%w: truncated fixed32", errPayload)
		}
		return field, wt, nil, b[4:], nil
	case wireLen:
		l, n := readUvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return 0, 0, nil, nil, fmt.Errorf("%w: bad length", errPayload)
		}
		b = b[n:]
		return field, wt, b[:l:l], b[l:], nil
	}
	return 0, 0, nil, nil, fmt.Errorf("%w: unsupported wire type %d", errPayload, wt)
}

// readUvarint decodes a protobuf varint (at most 10 bytes, no overflow).
// n is 0 when b is truncated and -1 when the varint is too long.
func readUvarint(b []byte) (v uint64, n int) {
	var shift uint
	for i, c := range b {
		if i == 10 || (i == 9 && c > 1) {
			return 0, -1
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i + 1
		}
		shift += 7
	}
	return 0, 0
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendBytes(b []byte, field uint64, v []byte) []byte {
	b = appendUvarint(b, field<<3|wireLen)
	b = appendUvarint(b, uint64(len(v)))
	return append(b, v...)
}
