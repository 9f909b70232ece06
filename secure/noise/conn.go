package noise

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure"
)

// MaxPlaintext is the most plaintext one transport frame carries.
const MaxPlaintext = maxMsg - tagLen

// framesPerWrite is how many full frames a Write seals into one buffer
// and hands to the underlying conn in one call.
const framesPerWrite = largeBufSize / maxFrameWire

var errShortFrame = errors.New("noise: frame shorter than its tag")

// Conn is an established Noise session. Read and Write may be called
// concurrently with each other; each is serialised by its own mutex.
//
// Idle, a Conn holds no I/O buffer: buffers are taken from a pool per
// Write call, and by Read only while a frame is being received or unread
// plaintext remains.
type Conn struct {
	conn      net.Conn
	local     peer.ID
	remote    peer.ID
	remoteKey peer.PublicKey
	muxer     string

	rmu   sync.Mutex
	recv  cipherState
	hdr   [2]byte // length prefix read while no buffer is held
	hdrN  int
	rbuf  *[]byte // raw frames in [rpos:rend]; rdata may point into it
	rpos  int
	rend  int
	rdata []byte // decrypted, not yet returned
	rerr  error  // sticky

	wmu  sync.Mutex
	send cipherState
	werr error // sticky
}

var _ secure.Conn = (*Conn)(nil)

// LocalPeer returns our peer ID.
func (c *Conn) LocalPeer() peer.ID { return c.local }

// RemotePeer returns the authenticated peer ID of the other side.
func (c *Conn) RemotePeer() peer.ID { return c.remote }

// RemotePublicKey returns the other side's identity key.
func (c *Conn) RemotePublicKey() peer.PublicKey { return c.remoteKey }

// EarlyMuxer returns the muxer agreed in the handshake, or "" when none
// was (the muxer is then negotiated with multistream-select).
func (c *Conn) EarlyMuxer() string { return c.muxer }

// LocalAddr returns the underlying connection's local address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the underlying connection's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the underlying connection's deadlines. A Read that
// times out can be retried; a Write that fails (timeouts included) leaves
// the session unusable for writing.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the underlying connection's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the underlying connection's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.conn.Close() }

// Write encrypts p into frames of at most MaxPlaintext bytes. All frames
// of one call (up to framesPerWrite full frames at a time) are sealed into
// one pooled buffer and written with a single call to the underlying conn.
// Any write error is permanent.
func (c *Conn) Write(p []byte) (int, error) {
	return c.WriteSplit(nil, p)
}

// WriteSplit writes head and then body, as Write(append(head, body...))
// would, but seals head (if any) into a frame of its own, sent in the same
// call to the underlying conn as body's first frames. A muxer writes its
// frame header as head: the peer, reading the header alone, then finds
// the payload at a frame boundary and can decrypt it straight into its
// own buffer, and neither side copies the payload. The count is of body's
// bytes written.
func (c *Conn) WriteSplit(head, body []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if len(head) > MaxPlaintext {
		return 0, fmt.Errorf("noise: head of %d bytes exceeds a frame", len(head))
	}
	written := 0
	for written < len(body) || len(head) > 0 {
		chunk := min(len(body)-written, framesPerWrite*MaxPlaintext)
		frames := (chunk + MaxPlaintext - 1) / MaxPlaintext
		size := chunk + frames*(2+tagLen)
		if len(head) > 0 {
			size += len(head) + 2 + tagLen
		}
		bp := getBuf(size)
		b := (*bp)[:0]
		var err error
		if len(head) > 0 {
			b, err = c.appendFrame(b, head)
			head = nil
		}
		for off := written; err == nil && off < written+chunk; {
			n := min(written+chunk-off, MaxPlaintext)
			b, err = c.appendFrame(b, body[off:off+n])
			off += n
		}
		if err == nil {
			_, err = c.conn.Write(b)
		}
		putBuf(bp)
		if err != nil {
			if err == errNonceExhausted {
				c.conn.Close()
			}
			c.werr = err
			return written, err
		}
		written += chunk
	}
	return written, nil
}

// appendFrame appends pt, sealed, with its length prefix.
func (c *Conn) appendFrame(b, pt []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint16(b, uint16(len(pt)+tagLen))
	return c.send.seal(b, pt, nil)
}

// Read returns decrypted data. It reads at most one frame per call; when p
// can hold the whole frame it is decrypted straight into p, otherwise into
// an internal buffer that later calls drain.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.rdata) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if len(p) == 0 {
			return 0, nil
		}
		n, err := c.readFrame(p)
		if err != nil || n > 0 {
			return n, err
		}
	}
	n := copy(p, c.rdata)
	c.rdata = c.rdata[n:]
	if len(c.rdata) == 0 && c.rpos == c.rend {
		c.releaseRead()
	}
	return n, nil
}

func (c *Conn) releaseRead() {
	if c.rbuf != nil {
		putBuf(c.rbuf)
		c.rbuf, c.rpos, c.rend, c.rdata = nil, 0, 0, nil
	}
}

// readErr turns an error from the underlying conn into Read's result.
// Timeouts leave the partial frame in place so that Read can be retried;
// anything else is permanent. clean reports a frame boundary, where EOF is
// a normal end of stream.
func (c *Conn) readErr(err error, clean bool) error {
	if isTimeout(err) {
		return err
	}
	if err == io.EOF && !clean {
		err = io.ErrUnexpectedEOF
	}
	return c.fail(err)
}

func (c *Conn) fail(err error) error {
	c.rerr = err
	c.releaseRead()
	c.hdrN = 0
	return err
}

// readFrame receives and decrypts one frame. If p is large enough the
// plaintext goes to p and its length is returned; otherwise it is left in
// c.rdata and 0 is returned.
func (c *Conn) readFrame(p []byte) (int, error) {
	if c.rbuf != nil && c.rpos == c.rend {
		c.releaseRead()
	}
	if c.rbuf == nil {
		// Wait for the next frame holding only the 2-byte header array.
		for c.hdrN < len(c.hdr) {
			n, err := c.conn.Read(c.hdr[c.hdrN:])
			c.hdrN += n
			if err != nil && c.hdrN < len(c.hdr) {
				return 0, c.readErr(err, c.hdrN == 0)
			}
		}
		c.hdrN = 0
		c.rbuf = getBuf(2 + int(binary.BigEndian.Uint16(c.hdr[:])))
		copy(*c.rbuf, c.hdr[:])
		c.rpos, c.rend = 0, len(c.hdr)
	}

	// Complete the frame, reading ahead as far as the buffer allows.
	buf := *c.rbuf
	var rerr error
	for {
		avail, need := c.rend-c.rpos, 2
		if avail >= 2 {
			need += int(binary.BigEndian.Uint16(buf[c.rpos:]))
		}
		if avail >= need {
			break
		}
		if rerr != nil {
			return 0, c.readErr(rerr, false)
		}
		if c.rpos+need > len(buf) {
			if need > len(buf) {
				nb := getBuf(need)
				copy(*nb, buf[c.rpos:c.rend])
				putBuf(c.rbuf)
				c.rbuf = nb
				buf = *nb
			} else {
				copy(buf, buf[c.rpos:c.rend])
			}
			c.rpos, c.rend = 0, avail
		}
		var n int
		n, rerr = c.conn.Read(buf[c.rend:])
		c.rend += n
	}

	l := int(binary.BigEndian.Uint16(buf[c.rpos:]))
	ct := buf[c.rpos+2 : c.rpos+2+l]
	c.rpos += 2 + l
	if l < tagLen {
		return 0, c.fail(errShortFrame)
	}
	if len(p) >= l-tagLen {
		pt, err := c.recv.open(p[:0], ct, nil)
		if err != nil {
			return 0, c.openFailed(err)
		}
		if c.rpos == c.rend {
			c.releaseRead()
		}
		return len(pt), nil
	}
	pt, err := c.recv.open(ct[:0], ct, nil)
	if err != nil {
		return 0, c.openFailed(err)
	}
	c.rdata = pt
	return 0, nil
}

func (c *Conn) openFailed(err error) error {
	if err == errNonceExhausted {
		c.conn.Close()
	}
	return c.fail(fmt.Errorf("noise: read: %w", err))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
