// Package identify implements libp2p identify (/ipfs/id/1.0.0) and identify
// push (/ipfs/id/push/1.0.0): the exchange in which each side of a new
// connection tells the other its public key, listen addresses, supported
// protocols, software version and the address it sees the other side at.
//
// message.go holds the wire format (a hand-written proto2 codec on wire/pb
// and the length-prefixed framing go-libp2p uses); identify.go holds the
// protocol logic on a stream. Node state (peer store, address book, push
// scheduling) lives in the node package, which calls Serve and Request.
package identify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/mote-p2p/mote/wire"
	"github.com/mote-p2p/mote/wire/pb"
)

// Protocol IDs, as negotiated with multistream-select.
const (
	// ID is the pull variant: the side that opens the stream reads, the
	// side that accepts it writes its message and closes.
	ID = "/ipfs/id/1.0.0"
	// PushID is the push variant: the opener writes its (changed) message
	// and closes, the acceptor reads it.
	PushID = "/ipfs/id/push/1.0.0"
)

// Limits shared with go-libp2p, so that what we send is accepted by Kubo
// and what Kubo sends is accepted by us.
const (
	// MaxMessageSize bounds each length-prefixed message on the stream
	// (go-libp2p signedIDSize).
	MaxMessageSize = 8192
	// MaxMessages bounds how many length-prefixed messages one stream may
	// carry; they are merged (go-libp2p maxMessages).
	MaxMessages = 10
	// MaxProtocols bounds the protocols kept from a peer; further entries
	// are ignored (go-libp2p maxPeerProtocols).
	MaxProtocols = 1024
	// MaxAddrs bounds the listen addresses kept from a peer; further
	// entries are ignored (go-libp2p connectedPeerMaxAddrs).
	MaxAddrs = 500
)

const (
	// legacyMessageSize is the size above which a message carrying a
	// signed peer record is split in two, because older readers accepted
	// only 2 KiB (go-libp2p legacyIDSize).
	legacyMessageSize = 2048
	// maxOwnMessageSize bounds the message we build for ourselves (without
	// the signed record); go-libp2p picked 4 KiB for rust-libp2p, whose
	// reader used to accept no more.
	maxOwnMessageSize = 4096
	// maxGroupDepth bounds nesting when skipping unknown proto2 groups.
	maxGroupDepth = 32
)

// Protobuf field numbers of the Identify message.
const (
	fieldPublicKey        = 1
	fieldListenAddrs      = 2
	fieldProtocols        = 3
	fieldObservedAddr     = 4
	fieldProtocolVersion  = 5
	fieldAgentVersion     = 6
	fieldSignedPeerRecord = 8
)

// ErrTooManyMessages is wrapped by ReadMessage when a stream carries more
// than MaxMessages messages, which go-libp2p also refuses.
var ErrTooManyMessages = errors.New("too many identify messages on one stream")

// ErrMalformed is wrapped by every protobuf decoding error, so callers can
// tell a peer sending garbage from a broken stream.
var ErrMalformed = errors.New("malformed identify message")

// Message is the Identify protobuf. Byte fields use nil for "absent" so that
// proto2 presence survives a round trip; string fields use "" for absent
// (an explicitly empty string is not distinguished).
type Message struct {
	// PublicKey is the sender's key as the libp2p PublicKey protobuf.
	PublicKey []byte
	// ListenAddrs are binary multiaddrs, unparsed: validation belongs to
	// Verify so that the codec never fails on one bad address.
	ListenAddrs [][]byte
	// Protocols are the protocol IDs the sender accepts streams for.
	Protocols []string
	// ObservedAddr is the receiver's address as seen by the sender.
	ObservedAddr []byte
	// ProtocolVersion is free-form; Kubo leaves it empty.
	ProtocolVersion string
	// AgentVersion names the sender's software, e.g. "kubo/0.43.0".
	AgentVersion string
	// SignedPeerRecord is a marshalled signed envelope holding a PeerRecord.
	SignedPeerRecord []byte
}

// size returns the encoded length of m, so buffers can be sized exactly
// and the size rules of WriteMessage can be checked without encoding.
func (m *Message) size() int {
	if m == nil {
		return 0
	}
	n := 0
	if m.PublicKey != nil {
		n += pb.SizeBytes(fieldPublicKey, len(m.PublicKey))
	}
	for _, a := range m.ListenAddrs {
		n += pb.SizeBytes(fieldListenAddrs, len(a))
	}
	for _, p := range m.Protocols {
		n += pb.SizeBytes(fieldProtocols, len(p))
	}
	if m.ObservedAddr != nil {
		n += pb.SizeBytes(fieldObservedAddr, len(m.ObservedAddr))
	}
	if m.ProtocolVersion != "" {
		n += pb.SizeBytes(fieldProtocolVersion, len(m.ProtocolVersion))
	}
	if m.AgentVersion != "" {
		n += pb.SizeBytes(fieldAgentVersion, len(m.AgentVersion))
	}
	if m.SignedPeerRecord != nil {
		n += pb.SizeBytes(fieldSignedPeerRecord, len(m.SignedPeerRecord))
	}
	return n
}

// Append appends the protobuf encoding of m to b and returns the extended
// slice. Fields are written in field-number order, as go-libp2p does, so
// our bytes match theirs for the same content. A nil m encodes as nothing.
func (m *Message) Append(b []byte) []byte {
	if m == nil {
		return b
	}
	b = slices.Grow(b, m.size())
	if m.PublicKey != nil {
		b = pb.AppendBytes(b, fieldPublicKey, m.PublicKey)
	}
	for _, a := range m.ListenAddrs {
		b = pb.AppendBytes(b, fieldListenAddrs, a)
	}
	for _, p := range m.Protocols {
		b = pb.AppendString(b, fieldProtocols, p)
	}
	if m.ObservedAddr != nil {
		b = pb.AppendBytes(b, fieldObservedAddr, m.ObservedAddr)
	}
	if m.ProtocolVersion != "" {
		b = pb.AppendString(b, fieldProtocolVersion, m.ProtocolVersion)
	}
	if m.AgentVersion != "" {
		b = pb.AppendString(b, fieldAgentVersion, m.AgentVersion)
	}
	if m.SignedPeerRecord != nil {
		b = pb.AppendBytes(b, fieldSignedPeerRecord, m.SignedPeerRecord)
	}
	return b
}

// DecodeMessage parses one Identify protobuf. Unknown fields are skipped,
// as every libp2p message grows over time; a known field with an unexpected
// wire type is skipped too, as the protobuf runtime does. Listen addresses
// beyond MaxAddrs and protocols beyond MaxProtocols are dropped. The result
// does not alias b.
func DecodeMessage(b []byte) (*Message, error) {
	// One copy up front lets every byte field alias it: a single
	// allocation instead of one per field.
	return decodeMessage(bytes.Clone(b))
}

// decodeMessage is DecodeMessage for a buffer the caller hands over: byte
// fields of the result alias b. A first pass validates b and counts the
// repeated fields so their slices are allocated once, at their final size.
func decodeMessage(b []byte) (*Message, error) {
	var addrs, protos int
	r := newReader(b)
	for {
		f, ok, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if !ok {
			break
		}
		if f.Type == pb.BytesType {
			switch f.Num {
			case fieldListenAddrs:
				addrs++
			case fieldProtocols:
				protos++
			}
		}
	}
	m := new(Message)
	if addrs > 0 {
		m.ListenAddrs = make([][]byte, 0, min(addrs, MaxAddrs))
	}
	if protos > 0 {
		m.Protocols = make([]string, 0, min(protos, MaxProtocols))
	}
	// b was validated above, so this pass cannot fail.
	r = newReader(b)
	for {
		f, ok, _ := r.Next()
		if !ok {
			break
		}
		// A known field with another wire type is skipped, as the
		// protobuf runtime does.
		if f.Type != pb.BytesType {
			continue
		}
		v := f.Bytes
		switch f.Num {
		case fieldPublicKey:
			m.PublicKey = v
		case fieldListenAddrs:
			if len(m.ListenAddrs) < MaxAddrs {
				m.ListenAddrs = append(m.ListenAddrs, v)
			}
		case fieldProtocols:
			if len(m.Protocols) < MaxProtocols {
				m.Protocols = append(m.Protocols, string(v))
			}
		case fieldObservedAddr:
			m.ObservedAddr = v
		case fieldProtocolVersion:
			m.ProtocolVersion = string(v)
		case fieldAgentVersion:
			m.AgentVersion = string(v)
		case fieldSignedPeerRecord:
			m.SignedPeerRecord = v
		}
	}
	return m, nil
}

// newReader returns a field reader for an Identify message. The message
// is proto2 and go-libp2p's runtime skips unknown groups, so we skip them
// too, to maxGroupDepth levels. Neither the field count nor field sizes
// are bounded here: ReadMessage bounds the whole message.
func newReader(b []byte) pb.Reader {
	r := pb.NewReader(b, pb.NoLimit, pb.NoLimit)
	r.AllowGroups(maxGroupDepth)
	return r
}

// Merge folds o into m with protobuf merge semantics, which is how the
// several messages of one stream combine: byte fields present in o (non-nil)
// and non-empty strings replace m's, repeated fields are appended. The
// MaxAddrs and MaxProtocols caps still hold after merging. The merged
// message may share byte slices with o.
func (m *Message) Merge(o *Message) {
	if m == nil || o == nil {
		return
	}
	if o.PublicKey != nil {
		m.PublicKey = o.PublicKey
	}
	m.ListenAddrs = appendCapped(m.ListenAddrs, o.ListenAddrs, MaxAddrs)
	m.Protocols = appendCapped(m.Protocols, o.Protocols, MaxProtocols)
	if o.ObservedAddr != nil {
		m.ObservedAddr = o.ObservedAddr
	}
	if o.ProtocolVersion != "" {
		m.ProtocolVersion = o.ProtocolVersion
	}
	if o.AgentVersion != "" {
		m.AgentVersion = o.AgentVersion
	}
	if o.SignedPeerRecord != nil {
		m.SignedPeerRecord = o.SignedPeerRecord
	}
}

// appendCapped appends as much of src to dst as fits under limit entries.
func appendCapped[T any](dst, src []T, limit int) []T {
	room := limit - len(dst)
	if room <= 0 {
		return dst
	}
	if len(src) > room {
		src = src[:room]
	}
	return append(dst, src...)
}

// WriteMessage writes m the way go-libp2p does: as one length-prefixed
// message, or, when m carries a signed peer record and encodes to more than
// 2 KiB, as two (everything but the record, then only the record) so that
// readers limited to 2 KiB still get the unsigned part. Both frames go out
// in one Write so a muxer sends them together.
//
// Every frame must fit MaxMessageSize or the peer drops the whole exchange:
// if the unsigned part is too big, trailing ListenAddrs are dropped until it
// fits (m itself is not modified); if it still does not fit, or the signed
// record alone is too big, nothing is written and an error is returned.
func WriteMessage(w io.Writer, m *Message) error {
	if m == nil {
		m = new(Message)
	}
	var parts [2]*Message
	if m.SignedPeerRecord == nil || m.size() <= legacyMessageSize {
		parts[0] = m
	} else {
		base := *m
		base.SignedPeerRecord = nil
		parts[0] = &base
		parts[1] = &Message{SignedPeerRecord: m.SignedPeerRecord}
		if n := parts[1].size(); n > MaxMessageSize {
			return fmt.Errorf("identify: write message: signed peer record encodes to %d bytes, more than the %d-byte limit", n, MaxMessageSize)
		}
	}
	first, err := fitAddrs(parts[0], MaxMessageSize)
	if err != nil {
		return fmt.Errorf("identify: write message: %w", err)
	}
	parts[0] = first

	total := 0
	for _, p := range parts {
		if p != nil {
			n := p.size()
			total += wire.UvarintLen(uint64(n)) + n
		}
	}
	buf := make([]byte, 0, total)
	for _, p := range parts {
		if p != nil {
			buf = wire.AppendUvarint(buf, uint64(p.size()))
			buf = p.Append(buf)
		}
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("identify: write %d-byte message: %w", len(buf), err)
	}
	return nil
}

// fitAddrs returns m, or a shallow copy of m without its trailing
// ListenAddrs, so that it encodes to at most limit bytes. It fails when m
// is too big even without any listen address.
func fitAddrs(m *Message, limit int) (*Message, error) {
	size := m.size()
	if size <= limit {
		return m, nil
	}
	keep := len(m.ListenAddrs)
	for keep > 0 && size > limit {
		keep--
		size -= pb.SizeBytes(fieldListenAddrs, len(m.ListenAddrs[keep]))
	}
	if size > limit {
		return nil, fmt.Errorf("message encodes to %d bytes without listen addresses, more than the %d-byte limit", size, limit)
	}
	c := *m
	c.ListenAddrs = m.ListenAddrs[:keep:keep]
	return &c, nil
}

// ReadMessage reads the identify message(s) a peer writes on a stream,
// until the stream ends, and merges them. It accepts up to MaxMessages
// messages of up to MaxMessageSize bytes each, and fails if the stream ends
// before any message. Oversized messages fail with an error wrapping
// wire.ErrMessageTooLarge.
func ReadMessage(r io.Reader) (*Message, error) {
	var m *Message
	for i := 0; ; i++ {
		b, err := wire.ReadLP(r, MaxMessageSize)
		if err == io.EOF {
			if m == nil {
				return nil, fmt.Errorf("identify: read message: stream ended before any message: %w", io.ErrUnexpectedEOF)
			}
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("identify: read message %d: %w", i+1, err)
		}
		if i == MaxMessages {
			return nil, fmt.Errorf("identify: read message: %w (more than %d)", ErrTooManyMessages, MaxMessages)
		}
		// ReadLP returns a fresh buffer, so the message may alias it.
		part, err := decodeMessage(b)
		if err != nil {
			return nil, fmt.Errorf("identify: decode message %d: %w", i+1, err)
		}
		if m == nil {
			m = part
		} else {
			m.Merge(part)
		}
	}
}
