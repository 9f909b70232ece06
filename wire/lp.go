package wire

import (
	"errors"
	"fmt"
	"io"
	"slices"
)

// ErrMessageTooLarge is wrapped by every error about a message whose
// declared length exceeds the reader's limit, so callers can tell a
// misbehaving peer from a broken connection with errors.Is.
var ErrMessageTooLarge = errors.New("message too large")

// AppendLP appends msg to b framed as uvarint(len(msg)) followed by msg, the
// "delimited" framing used by identify, kad, autonat, relay and others.
func AppendLP(b, msg []byte) []byte {
	b = AppendUvarint(b, uint64(len(msg)))
	return append(b, msg...)
}

// WriteLP writes msg with its length prefix in a single Write call, so the
// frame cannot be split by concurrent writers or sent as two tiny packets.
func WriteLP(w io.Writer, msg []byte) error {
	buf := make([]byte, 0, UvarintLen(uint64(len(msg)))+len(msg))
	buf = AppendLP(buf, msg)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("wire: writing %d-byte message: %w", len(msg), err)
	}
	return nil
}

// lpChunk is the largest body ReadLP allocates before the peer has sent any
// of it. Bigger bodies (up to the caller's limit) grow as their bytes
// arrive, so a peer that only sends a length prefix cannot make us reserve
// megabytes it never delivers.
const lpChunk = 64 << 10

// ReadLP reads exactly one length-prefixed message from r and returns its
// body. It never reads past the message: the prefix is read a byte at a time
// unless r is an io.ByteReader. A declared length above limit is rejected
// before anything is allocated, and large bodies are allocated as they
// arrive; a negative limit is treated as zero. It returns io.EOF only when r
// ends cleanly before the first byte.
func ReadLP(r io.Reader, limit int) ([]byte, error) {
	n, err := readLPHeader(r, limit)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, min(n, lpChunk))
	for len(buf) < n {
		start := len(buf)
		end := min(n, max(2*start, lpChunk))
		buf = slices.Grow(buf, end-start)[:end]
		if err := readLPBody(r, buf[start:], start, n); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// ReadLPInto is ReadLP reading into buf instead of allocating: the limit is
// len(buf) and the result is a prefix of buf. It suits hot paths that reuse
// one buffer per stream.
func ReadLPInto(r io.Reader, buf []byte) ([]byte, error) {
	n, err := readLPHeader(r, len(buf))
	if err != nil {
		return nil, err
	}
	msg := buf[:n]
	if err := readLPBody(r, msg, 0, n); err != nil {
		return nil, err
	}
	return msg, nil
}

// readLPHeader reads a length prefix and checks it against limit, returning
// a length that is safe to allocate.
func readLPHeader(r io.Reader, limit int) (int, error) {
	n, err := ReadUvarint(asByteReader(r))
	if err == io.EOF {
		return 0, io.EOF
	}
	if err != nil {
		return 0, fmt.Errorf("wire: reading length prefix: %w", err)
	}
	if limit < 0 {
		limit = 0
	}
	if n > uint64(limit) {
		return 0, fmt.Errorf("wire: message of %d bytes exceeds the %d-byte limit: %w", n, limit, ErrMessageTooLarge)
	}
	return int(n), nil
}

// readLPBody fills part, which starts at offset off of an n-byte body,
// treating any end of stream as truncation because the prefix promised n
// bytes.
func readLPBody(r io.Reader, part []byte, off, n int) error {
	got, err := io.ReadFull(r, part)
	if err == nil {
		return nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("wire: reading %d-byte message body (got %d): %w", n, off+got, err)
}
