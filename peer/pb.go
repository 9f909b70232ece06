package peer

import (
	"errors"
	"fmt"
)

// This file holds the few protobuf wire-format primitives the codecs in this
// package need. They are hand-written so that the package has no protobuf
// runtime dependency and so that every length read from input is checked
// against the remaining buffer before use.

// Protobuf wire types used by the messages in this package.
const (
	wireVarint = 0
	wireI64    = 1
	wireBytes  = 2
	wireI32    = 5
)

// errTruncated reports input that ends in the middle of a field.
var errTruncated = errors.New("truncated input")

// appendUvarint appends v as a minimal unsigned LEB128 varint.
func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// uvarintLen is the number of bytes appendUvarint emits for v.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// readUvarint decodes a protobuf varint (at most 10 bytes, no overflow
// past 64 bits). Protobuf itself tolerates non-minimal encodings, so this
// does too; see readMinimalUvarint for the multiformats rule.
func readUvarint(b []byte) (v uint64, n int, err error) {
	var shift uint
	for i := 0; i < len(b); i++ {
		if i == 10 {
			return 0, 0, errors.New("varint longer than 10 bytes")
		}
		c := b[i]
		if i == 9 && c > 1 {
			return 0, 0, errors.New("varint overflows 64 bits")
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i + 1, nil
		}
		shift += 7
	}
	return 0, 0, fmt.Errorf("varint: %w", errTruncated)
}

// readMinimalUvarint decodes a multiformats unsigned varint: at most 9
// bytes (63 bits) and minimally encoded, as go-varint requires. Multihashes
// and CIDs use this form; accepting a non-minimal form would let two
// different byte strings name the same peer.
func readMinimalUvarint(b []byte) (v uint64, n int, err error) {
	var shift uint
	for i := 0; i < len(b); i++ {
		if i == 9 {
			return 0, 0, errors.New("varint longer than 9 bytes")
		}
		c := b[i]
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, 0, errors.New("varint not minimally encoded")
			}
			return v, i + 1, nil
		}
		shift += 7
	}
	return 0, 0, fmt.Errorf("varint: %w", errTruncated)
}

// appendTag appends a field key.
func appendTag(b []byte, field int, wireType int) []byte {
	return appendUvarint(b, uint64(field)<<3|uint64(wireType))
}

// appendBytesField appends a length-delimited field.
func appendBytesField(b []byte, field int, v []byte) []byte {
	b = appendTag(b, field, wireBytes)
	b = appendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendVarintField appends a varint field.
func appendVarintField(b []byte, field int, v uint64) []byte {
	b = appendTag(b, field, wireVarint)
	return appendUvarint(b, v)
}

// pbField is one decoded protobuf field. For wireBytes, data aliases the
// input; for the numeric wire types, num holds the value.
type pbField struct {
	num      int
	wireType int
	data     []byte
	val      uint64
}

// pbReader walks the fields of one protobuf message.
type pbReader struct {
	buf []byte
}

// next decodes the next field. It returns ok=false at the end of input.
// Group wire types (3, 4) are rejected: none of the libp2p messages use
// them and skipping them correctly needs unbounded nesting.
func (r *pbReader) next() (f pbField, ok bool, err error) {
	if len(r.buf) == 0 {
		return pbField{}, false, nil
	}
	key, n, err := readUvarint(r.buf)
	if err != nil {
		return pbField{}, false, fmt.Errorf("field key: %w", err)
	}
	r.buf = r.buf[n:]
	num := key >> 3
	if num == 0 || num > 1<<29-1 {
		return pbField{}, false, fmt.Errorf("invalid field number %d", num)
	}
	f.num = int(num)
	f.wireType = int(key & 7)
	switch f.wireType {
	case wireVarint:
		f.val, n, err = readUvarint(r.buf)
		if err != nil {
			return pbField{}, false, fmt.Errorf("field %d: %w", f.num, err)
		}
		r.buf = r.buf[n:]
	case wireI64:
		if len(r.buf) < 8 {
			return pbField{}, false, fmt.Errorf("field %d: %w", f.num, errTruncated)
		}
		r.buf = r.buf[8:]
	case wireI32:
		if len(r.buf) < 4 {
			return pbField{}, false, fmt.Errorf("field %d: %w", f.num, errTruncated)
		}
		r.buf = r.buf[4:]
	case wireBytes:
		l, n, err := readUvarint(r.buf)
		if err != nil {
			return pbField{}, false, fmt.Errorf("field %d length: %w", f.num, err)
		}
		r.buf = r.buf[n:]
		if l > uint64(len(r.buf)) {
			return pbField{}, false, fmt.Errorf("field %d: length %d exceeds remaining %d bytes: %w", f.num, l, len(r.buf), errTruncated)
		}
		f.data = r.buf[:l:l]
		r.buf = r.buf[l:]
	default:
		return pbField{}, false, fmt.Errorf("field %d: unsupported wire type %d", f.num, f.wireType)
	}
	return f, true, nil
}
