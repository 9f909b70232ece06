package noise

import (
	"errors"
	"fmt"

	"github.com/mote-p2p/mote/wire/pb"
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
	b = pb.AppendBytes(b, fieldIdentityKey, p.IdentityKey)
	b = pb.AppendBytes(b, fieldIdentitySig, p.IdentitySig)
	if len(p.Muxers) > 0 {
		n := 0
		for _, m := range p.Muxers {
			n += pb.SizeBytes(fieldStreamMuxers, len(m))
		}
		b = pb.AppendLen(b, fieldExtensions, n)
		for _, m := range p.Muxers {
			b = pb.AppendString(b, fieldStreamMuxers, m)
		}
	}
	return b
}

// DecodePayload parses a NoiseHandshakePayload. IdentityKey and IdentitySig
// alias b. Unknown fields are skipped and groups refused; a muxer list
// longer than 100 entries is dropped, as are muxer IDs longer than 1024
// bytes.
func DecodePayload(b []byte) (Payload, error) {
	var p Payload
	if len(b) > MaxPayloadSize {
		return p, fmt.Errorf("%w: %d bytes", errPayload, len(b))
	}
	nMuxers := 0
	// b is bounded above, and so is every field in it.
	r := pb.NewReader(b, pb.NoLimit, pb.NoLimit)
	for {
		f, ok, err := r.Next()
		if err != nil {
			return Payload{}, fmt.Errorf("%w: %w", errPayload, err)
		}
		if !ok {
			break
		}
		switch f.Num {
		case fieldIdentityKey, fieldIdentitySig, fieldExtensions:
			if f.Type != pb.BytesType {
				return Payload{}, fmt.Errorf("%w: field %d has wire type %d", errPayload, f.Num, f.Type)
			}
		default:
			continue
		}
		switch f.Num {
		case fieldIdentityKey:
			p.IdentityKey = f.Bytes
		case fieldIdentitySig:
			p.IdentitySig = f.Bytes
		case fieldExtensions:
			// Repeated fields of a message that occurs more than once are
			// concatenated (protobuf merge semantics).
			ext := pb.NewReader(f.Bytes, pb.NoLimit, pb.NoLimit)
			for {
				e, ok, err := ext.Next()
				if err != nil {
					return Payload{}, fmt.Errorf("%w: extensions: %w", errPayload, err)
				}
				if !ok {
					break
				}
				if e.Num != fieldStreamMuxers {
					continue // cert hashes and unknown fields
				}
				if e.Type != pb.BytesType {
					return Payload{}, fmt.Errorf("%w: stream_muxers has wire type %d", errPayload, e.Type)
				}
				nMuxers++
				if nMuxers > maxMuxers || len(e.Bytes) > maxMuxerLen {
					continue
				}
				p.Muxers = append(p.Muxers, string(e.Bytes))
			}
		}
	}
	if nMuxers > maxMuxers {
		p.Muxers = nil
	}
	return p, nil
}
