// Package pb is the protobuf wire format shared by mote's codecs: a bounded
// field reader and append helpers. libp2p messages are
// few, small and stable, so each codec reads and writes its fields by hand
// through this package instead of through generated code, which would link
// the protobuf runtime and its reflection into every binary.
//
// Everything decoded here comes from untrusted peers: a Reader allocates
// nothing (but its errors), never panics, never reads past its input, and
// bounds the field count and field sizes as its caller asks. Length prefixes between
// messages on a stream are multiformats varints and belong to wire (ReadLP,
// AppendLP), not here.
package pb

import (
	"errors"
	"fmt"
	"math"
)

// NoLimit, as a Reader's maxFields or maxLen, bounds nothing beyond the
// input itself. It suits decoders whose input size is already bounded.
const NoLimit = math.MaxInt

var (
	// ErrMalformed is wrapped by every Reader error about bytes that are not
	// a protobuf encoding (or use a wire type the Reader was not told to
	// accept), so callers can tell garbage from a refused size.
	ErrMalformed = errors.New("malformed protobuf")
	// ErrTooLarge is wrapped when a length-delimited field is longer than
	// the Reader's maxLen.
	ErrTooLarge = errors.New("protobuf field too large")
	// ErrTooMany is wrapped when a message has more fields than the
	// Reader's maxFields.
	ErrTooMany = errors.New("too many protobuf fields")
)

// Field is one field of a message, as a Reader returns it.
type Field struct {
	// Num is the field number, between MinNumber and MaxNumber.
	Num Number
	// Type is the wire type; callers check it against their schema.
	Type Type
	// Value is the value of a varint, fixed32 or fixed64 field.
	Value uint64
	// Bytes is the contents of a length-delimited field, or the encoded
	// fields inside a group. It aliases the input, with its capacity capped
	// so that appending to it cannot overwrite the bytes after it, and it
	// is non-nil even when empty, so proto2 presence survives.
	Bytes []byte
}

// Reader walks the fields of one encoded message, in order. Unknown fields
// are the caller's to skip: it sees every field, with its number and wire
// type, and ignores those its schema lacks.
type Reader struct {
	b          []byte
	fields     int // fields returned so far
	maxFields  int
	maxLen     int
	groupDepth int // how deep groups may nest; 0 refuses them
}

// NewReader returns a Reader over b. Next fails with ErrTooMany once b holds
// more than maxFields fields (a group counts as one), and with ErrTooLarge
// at a length-delimited field of more than maxLen bytes, groups' contents
// included. Negative limits count as zero, as in wire.ReadLP; NoLimit
// disables either bound.
func NewReader(b []byte, maxFields, maxLen int) Reader {
	return Reader{b: b, maxFields: max(maxFields, 0), maxLen: max(maxLen, 0)}
}

// AllowGroups makes Next accept proto2 groups nested up to depth levels and
// return each top-level group as one field of type StartGroupType, instead
// of failing at them. No libp2p message has groups, so by default they are
// malformed input; a proto2 codec that must skip them as unknown fields, as
// go-libp2p's protobuf runtime does, allows them, and depth bounds the
// recursion a peer can make us do.
func (r *Reader) AllowGroups(depth int) {
	r.groupDepth = max(depth, 0)
}

// Next returns the next field, or ok false at the end of the input. Errors
// name the field and what was wrong with it, not the message: callers say
// which message they were decoding. After an error, callers stop.
func (r *Reader) Next() (f Field, ok bool, err error) {
	if len(r.b) == 0 {
		return Field{}, false, nil
	}
	if r.fields >= r.maxFields {
		return Field{}, false, errorf(ErrTooMany, "more than %d fields", r.maxFields)
	}
	num, typ, n, err := consumeTag(r.b)
	if err != nil {
		return Field{}, false, err
	}
	v, data, m, err := r.value(num, typ, r.b[n:], 0)
	if err != nil {
		return Field{}, false, err
	}
	r.b = r.b[n+m:]
	r.fields++
	return Field{Num: num, Type: typ, Value: v, Bytes: data}, true, nil
}

// consumeTag decodes the field key at the start of b and returns its length.
func consumeTag(b []byte) (Number, Type, int, error) {
	k, n := consumeVarint(b)
	if n < 0 {
		return 0, 0, 0, errorf(ErrMalformed, "field key: %s", varintProblem(n))
	}
	// The protobuf runtime refuses numbers beyond MaxNumber, and so do we.
	if num := k >> 3; num < uint64(MinNumber) || num > uint64(MaxNumber) {
		return 0, 0, 0, errorf(ErrMalformed, "invalid field number %d", num)
	}
	return Number(k >> 3), Type(k & 7), n, nil
}

// value decodes the value of field num, of wire type typ, at the start of b:
// v for numeric types, data for length-delimited fields and groups, and n,
// its length. depth counts the groups around the field. Results rather than
// a *Field keep the recursion through groups from moving fields to the heap.
func (r *Reader) value(num Number, typ Type, b []byte, depth int) (v uint64, data []byte, n int, err error) {
	switch typ {
	case VarintType:
		v, n = consumeVarint(b)
		if n < 0 {
			return 0, nil, 0, errorf(ErrMalformed, "field %d: %s", num, varintProblem(n))
		}
		return v, nil, n, nil
	case Fixed64Type:
		v, n = consumeFixed64(b)
		if n < 0 {
			return 0, nil, 0, errorf(ErrMalformed, "field %d: truncated fixed64", num)
		}
		return v, nil, n, nil
	case Fixed32Type:
		v32, n := consumeFixed32(b)
		if n < 0 {
			return 0, nil, 0, errorf(ErrMalformed, "field %d: truncated fixed32", num)
		}
		return uint64(v32), nil, n, nil
	case BytesType:
		l, n := consumeVarint(b)
		if n < 0 {
			return 0, nil, 0, errorf(ErrMalformed, "field %d: length: %s", num, varintProblem(n))
		}
		// A length beyond the input is malformed whatever the limit: the
		// whole message is in b, so such a field is not there to be
		// too large.
		if l > uint64(len(b)-n) {
			return 0, nil, 0, errorf(ErrMalformed, "field %d: length %d exceeds the %d remaining bytes", num, l, len(b)-n)
		}
		if l > uint64(r.maxLen) {
			return 0, nil, 0, errorf(ErrTooLarge, "field %d: %d bytes, more than the %d-byte limit", num, l, r.maxLen)
		}
		end := n + int(l)
		return 0, b[n:end:end], end, nil
	case StartGroupType:
		data, n, err = r.group(num, b, depth)
		return 0, data, n, err
	}
	return 0, nil, 0, errorf(ErrMalformed, "field %d: unexpected wire type %d", num, typ)
}

// group skips the fields of group num, at the start of b, up to its end
// marker, which must carry the same number. It returns the fields inside
// and the length of the group including the marker.
func (r *Reader) group(num Number, b []byte, depth int) (data []byte, n int, err error) {
	if r.groupDepth == 0 {
		return nil, 0, errorf(ErrMalformed, "field %d: unexpected group (wire type 3)", num)
	}
	if depth >= r.groupDepth {
		return nil, 0, errorf(ErrMalformed, "field %d: groups nested deeper than %d", num, r.groupDepth)
	}
	off := 0
	for {
		if off == len(b) {
			return nil, 0, errorf(ErrMalformed, "field %d: unterminated group", num)
		}
		inner, typ, n, err := consumeTag(b[off:])
		if err != nil {
			return nil, 0, err
		}
		if typ == EndGroupType {
			if inner != num {
				return nil, 0, errorf(ErrMalformed, "group %d closed as %d", num, inner)
			}
			return b[:off:off], off + n, nil
		}
		_, _, m, err := r.value(inner, typ, b[off+n:], depth+1)
		if err != nil {
			return nil, 0, err
		}
		off += n + m
	}
}

// varintProblem says why a varint could not be decoded (code is its
// negative length): the input ended inside it, or it overflows 64 bits.
func varintProblem(code int) string {
	if code == errTruncated {
		return "truncated varint"
	}
	return "varint overflows 64 bits"
}

// fieldError is the error a Reader returns. Its text says what failed and
// where but leaves out the sentinel it wraps: callers prefix their own
// "malformed X message", and "malformed protobuf" after it would say the
// same thing twice.
type fieldError struct {
	kind error
	msg  string
}

func (e *fieldError) Error() string { return e.msg }

// Unwrap returns ErrMalformed, ErrTooLarge or ErrTooMany, for errors.Is.
func (e *fieldError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &fieldError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// AppendVarint appends field num with varint value v. Enums and int32
// values sign-extend to 64 bits on the wire, which uint64(int64(x)) gives.
func AppendVarint(b []byte, num Number, v uint64) []byte {
	return appendPair(b, key(num, VarintType), v)
}

// AppendBool appends field num as a bool (a varint 0 or 1).
func AppendBool(b []byte, num Number, v bool) []byte {
	return AppendVarint(b, num, boolValue(v))
}

// AppendBytes appends field num with contents v. It always appends, even
// for an empty v: leaving absent fields out is the caller's choice, since
// proto2 and proto3 messages differ in it.
func AppendBytes(b []byte, num Number, v []byte) []byte {
	return append(AppendLen(b, num, len(v)), v...)
}

// AppendString is AppendBytes for a string, without converting it.
func AppendString(b []byte, num Number, v string) []byte {
	return append(AppendLen(b, num, len(v)), v...)
}

// AppendLen appends the key and length prefix of length-delimited field num
// whose n bytes of contents the caller appends next. An embedded message is
// written in place this way, once its size is known (the sum of SizeBytes
// and SizeVarint of its fields), instead of being encoded into a buffer of
// its own and copied.
func AppendLen(b []byte, num Number, n int) []byte {
	return appendPair(b, key(num, BytesType), uint64(n))
}

// appendPair appends two varints, a key and a value or length. Nearly every
// key and length in a libp2p message is below 128, so that case is written
// out here, so that it inlines.
func appendPair(b []byte, k, v uint64) []byte {
	if k < 0x80 && v < 0x80 {
		return append(b, byte(k), byte(v))
	}
	return appendVarint(appendVarint(b, k), v)
}

// SizeVarint returns how many bytes AppendVarint appends for num and v, so
// that buffers and embedded messages can be sized before encoding.
func SizeVarint(num Number, v uint64) int {
	// A key's size does not depend on its wire type.
	return sizeVarint(uint64(num)<<3) + sizeVarint(v)
}

// SizeBytes returns how many bytes AppendBytes or AppendString appends for
// field num with n bytes of contents (AppendLen's prefix plus the n bytes).
func SizeBytes(num Number, n int) int {
	return sizeVarint(uint64(num)<<3) + sizeVarint(uint64(n)) + n
}

func boolValue(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}
