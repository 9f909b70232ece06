// Package wire holds the byte-level framing shared by every libp2p protocol
// in mote: multiformats unsigned varints, length-prefixed messages and
// multistream-select 1.0. Everything here reads from untrusted peers, so
// every reader bounds its allocations and never consumes bytes beyond the
// message it was asked for.
package wire

import (
	"errors"
	"fmt"
	"io"
)

// MaxUvarintLen is the longest varint accepted, in bytes. The multiformats
// spec caps varints at 9 bytes (63 bits) and go-libp2p rejects anything
// longer, so we do the same to agree with it on which inputs are valid.
const MaxUvarintLen = 9

// ErrVarintOverflow reports a varint longer than MaxUvarintLen bytes, that
// is a value of 2^63 or more, which the multiformats spec does not allow.
var ErrVarintOverflow = errors.New("wire: varint longer than 9 bytes (value >= 2^63)")

// ErrVarintNotMinimal reports a varint with redundant trailing zero groups
// (such as 0x81 0x00 for 1). The spec requires minimal encodings so that
// every value has exactly one byte form, which signatures and hashes rely on.
var ErrVarintNotMinimal = errors.New("wire: varint is not minimally encoded")

// maxReadRetries bounds how many times in a row a reader may return no data
// and no error before we give up, so a broken reader cannot spin us forever.
const maxReadRetries = 100

// AppendUvarint appends the minimal varint encoding of v to b. Values of
// 2^63 or more are encoded in 10 bytes, which no conforming reader
// (including Uvarint) accepts; callers must keep values below 2^63.
func AppendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// UvarintLen returns how many bytes AppendUvarint uses for v, so callers can
// size buffers exactly before encoding.
func UvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// Uvarint decodes a varint from the start of b and returns the value and the
// number of bytes used. It returns io.ErrUnexpectedEOF when b ends before
// the varint does, so stream parsers can wait for more data. b may be a
// string so that string-backed values (multiaddr components) decode
// without a copy.
func Uvarint[T ~string | ~[]byte](b T) (v uint64, n int, err error) {
	for i := 0; i < MaxUvarintLen; i++ {
		if i >= len(b) {
			return 0, 0, io.ErrUnexpectedEOF
		}
		next, done, err := addVarintByte(v, b[i], i)
		if err != nil {
			return 0, 0, err
		}
		if done {
			return next, i + 1, nil
		}
		v = next
	}
	return 0, 0, ErrVarintOverflow
}

// ReadUvarint reads one varint from r a byte at a time, so it never consumes
// anything after the varint. It returns io.EOF if r ends before the first
// byte (a clean end of stream) and io.ErrUnexpectedEOF if r ends inside it.
func ReadUvarint(r io.ByteReader) (uint64, error) {
	var v uint64
	for i := 0; i < MaxUvarintLen; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, varintReadError(err, i)
		}
		next, done, err := addVarintByte(v, c, i)
		if err != nil {
			return 0, err
		}
		if done {
			return next, nil
		}
		v = next
	}
	return 0, ErrVarintOverflow
}

// addVarintByte folds byte c, found at position i, into the partial value v.
// done reports that c was the last byte of the varint. Keeping the rules in
// one place guarantees that the slice and stream decoders agree.
func addVarintByte(v uint64, c byte, i int) (next uint64, done bool, err error) {
	v |= uint64(c&0x7f) << (7 * uint(i))
	if c&0x80 != 0 {
		if i == MaxUvarintLen-1 {
			return 0, false, ErrVarintOverflow
		}
		return v, false, nil
	}
	if c == 0 && i > 0 {
		return 0, false, ErrVarintNotMinimal
	}
	return v, true, nil
}

// varintReadError turns a reader error met after i bytes of a varint into
// the error ReadUvarint reports: a clean io.EOF only before the first byte.
func varintReadError(err error, i int) error {
	if err == io.EOF {
		if i == 0 {
			return io.EOF
		}
		return io.ErrUnexpectedEOF
	}
	if errors.Is(err, io.EOF) && i > 0 {
		return io.ErrUnexpectedEOF
	}
	return fmt.Errorf("wire: reading varint byte %d: %w", i+1, err)
}

// byteReader reads single bytes from a plain io.Reader without buffering, so
// that parsing a length prefix never swallows the bytes that follow it.
type byteReader struct {
	r   io.Reader
	buf [1]byte
}

// ReadByte reads exactly one byte, retrying a bounded number of empty reads.
func (br *byteReader) ReadByte() (byte, error) {
	for range maxReadRetries {
		n, err := br.r.Read(br.buf[:])
		if n == 1 {
			return br.buf[0], nil
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, io.ErrNoProgress
}

// asByteReader returns r itself when it can already read single bytes
// (typically a caller's bufio.Reader, whose buffered bytes stay with the
// caller), and otherwise an unbuffered adapter.
func asByteReader(r io.Reader) io.ByteReader {
	if br, ok := r.(io.ByteReader); ok {
		return br
	}
	return &byteReader{r: r}
}
