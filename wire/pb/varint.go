package pb

import (
	"encoding/binary"
	"math/bits"
)

// Number is a field number, between MinNumber and MaxNumber.
type Number int32

// Field numbers a message may use (the protobuf encoding spec).
const (
	MinNumber Number = 1
	MaxNumber Number = 1<<29 - 1
)

// Type is a wire type, the low three bits of a field's key.
type Type int8

// Wire types (the protobuf encoding spec).
const (
	VarintType     Type = 0
	Fixed64Type    Type = 1
	BytesType      Type = 2
	StartGroupType Type = 3
	EndGroupType   Type = 4
	Fixed32Type    Type = 5
)

// Why a varint cannot be decoded, as consumeVarint's negative length.
const (
	errTruncated = -1 // the input ends inside it
	errOverflow  = -2 // it does not fit in 64 bits
)

// consumeVarint decodes the varint at the start of b and returns it and
// its length, or a negative length saying why it cannot. Protobuf
// accepts non-minimal encodings of up to 10 bytes (multiformats varints,
// wire.Uvarint, do not); these few lines spare every binary the protobuf
// module and the work its packages do at start-up.
func consumeVarint(b []byte) (v uint64, n int) {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if i == 9 && c > 1 {
			return 0, errOverflow
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, errTruncated
}

// consumeFixed64 and consumeFixed32 decode little-endian fixed-size
// values; the length is errTruncated if b is too short.
func consumeFixed64(b []byte) (uint64, int) {
	if len(b) < 8 {
		return 0, errTruncated
	}
	return binary.LittleEndian.Uint64(b), 8
}

func consumeFixed32(b []byte) (uint32, int) {
	if len(b) < 4 {
		return 0, errTruncated
	}
	return binary.LittleEndian.Uint32(b), 4
}

// appendVarint appends v as a varint, in its minimal encoding.
func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// sizeVarint is the length of v's minimal varint encoding.
func sizeVarint(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// key is the varint a field starts with.
func key(num Number, typ Type) uint64 { return uint64(num)<<3 | uint64(typ) }
