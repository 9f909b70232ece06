package peer

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/mote-p2p/mote/wire"
	"github.com/mote-p2p/mote/wire/pb"
)

// MaxEnvelopeSize bounds a marshalled envelope accepted by OpenEnvelope.
// A peer record with a few dozen addresses is well under 2 KiB, so this
// only guards memory; the protocols that carry envelopes impose their own,
// smaller message limits.
const MaxEnvelopeSize = 64 << 10

// Envelope is a libp2p signed envelope (RFC 0002): a payload plus its
// type hint, signed by PublicKey under a domain string that is agreed out
// of band and never transmitted, so a signature made for one purpose
// cannot be replayed for another.
type Envelope struct {
	// PublicKey is the signer's key; it determines whose record this is.
	PublicKey PublicKey
	// PayloadType identifies the payload format (for peer records the two
	// bytes 0x03 0x01).
	PayloadType []byte
	// Payload is the signed, still-encoded inner record.
	Payload []byte
	// Signature covers the domain, PayloadType and Payload (see signedData).
	Signature []byte
}

// Seal signs payload under domain with key and returns the envelope. The
// domain and the payload type must be non-empty, as go-libp2p requires.
func Seal(key PrivateKey, domain string, payloadType, payload []byte) (*Envelope, error) {
	if key == nil {
		return nil, errors.New("seal envelope: nil key")
	}
	if domain == "" {
		return nil, errors.New("seal envelope: empty domain")
	}
	if len(payloadType) == 0 {
		return nil, errors.New("seal envelope: empty payload type")
	}
	sig, err := key.Sign(signedData(domain, payloadType, payload))
	if err != nil {
		return nil, fmt.Errorf("seal envelope: %w", err)
	}
	return &Envelope{
		PublicKey:   key.Public(),
		PayloadType: bytes.Clone(payloadType),
		Payload:     bytes.Clone(payload),
		Signature:   sig,
	}, nil
}

// signedData builds the bytes an envelope signature covers:
// uvarint(len(domain)) ‖ domain ‖ uvarint(len(type)) ‖ type ‖
// uvarint(len(payload)) ‖ payload. Length prefixes make the split between
// the three parts unambiguous. go-libp2p writes them with encoding/binary;
// wire.AppendUvarint gives the same bytes for any length below 2^63.
func signedData(domain string, payloadType, payload []byte) []byte {
	n := 3*10 + len(domain) + len(payloadType) + len(payload)
	b := make([]byte, 0, n)
	b = wire.AppendUvarint(b, uint64(len(domain)))
	b = append(b, domain...)
	b = wire.AppendUvarint(b, uint64(len(payloadType)))
	b = append(b, payloadType...)
	b = wire.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// Marshal encodes the envelope as the proto3 Envelope message
// (envelope.proto). Empty byte fields are omitted, as proto3 encoders do.
func (e *Envelope) Marshal() []byte {
	key := MarshalPublicKey(e.PublicKey)
	b := make([]byte, 0, len(key)+len(e.PayloadType)+len(e.Payload)+len(e.Signature)+4*6)
	if len(key) > 0 {
		b = pb.AppendBytes(b, 1, key)
	}
	if len(e.PayloadType) > 0 {
		b = pb.AppendBytes(b, 2, e.PayloadType)
	}
	if len(e.Payload) > 0 {
		b = pb.AppendBytes(b, 3, e.Payload)
	}
	if len(e.Signature) > 0 {
		b = pb.AppendBytes(b, 5, e.Signature)
	}
	return b
}

// OpenEnvelope decodes data and verifies its signature under domain. It
// returns an envelope only if the signature is valid; nothing in the
// payload is interpreted here. A bad signature yields an error wrapping
// ErrBadSignature. The result does not alias data.
func OpenEnvelope(data []byte, domain string) (*Envelope, error) {
	if len(data) > MaxEnvelopeSize {
		return nil, fmt.Errorf("open envelope: %d bytes, limit %d", len(data), MaxEnvelopeSize)
	}
	if domain == "" {
		return nil, errors.New("open envelope: empty domain")
	}
	var (
		keyBytes, payloadType, payload, sig []byte
		seen                                [6]bool
	)
	r := pb.NewReader(data, pb.NoLimit, pb.NoLimit) // data is bounded above
	for {
		f, ok, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("open envelope: %w", err)
		}
		if !ok {
			break
		}
		var dst *[]byte
		switch f.Num {
		case 1:
			dst = &keyBytes
		case 2:
			dst = &payloadType
		case 3:
			dst = &payload
		case 5:
			dst = &sig
		default:
			continue // unknown fields are skipped (proto3)
		}
		if f.Type != pb.BytesType {
			return nil, fmt.Errorf("open envelope: field %d has wire type %d, want bytes", f.Num, f.Type)
		}
		// go-libp2p never repeats a field; refusing repeats means every
		// implementation reads the same key and payload from these bytes.
		if seen[f.Num] {
			return nil, fmt.Errorf("open envelope: field %d repeated", f.Num)
		}
		seen[f.Num] = true
		*dst = f.Bytes
	}
	if keyBytes == nil {
		return nil, errors.New("open envelope: missing public key")
	}
	if len(payloadType) == 0 {
		return nil, errors.New("open envelope: missing payload type")
	}
	if len(sig) == 0 {
		return nil, fmt.Errorf("open envelope: missing signature: %w", ErrBadSignature)
	}
	key, err := UnmarshalPublicKey(keyBytes)
	if err != nil {
		return nil, fmt.Errorf("open envelope: %w", err)
	}
	if err := key.Verify(signedData(domain, payloadType, payload), sig); err != nil {
		return nil, fmt.Errorf("open envelope (domain %q, signer %s): %w", domain, IDFromPublicKey(key).ShortString(), err)
	}
	return &Envelope{
		PublicKey:   key,
		PayloadType: bytes.Clone(payloadType),
		Payload:     bytes.Clone(payload),
		Signature:   bytes.Clone(sig),
	}, nil
}
