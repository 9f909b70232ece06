// Package kademlia implements the libp2p Kademlia DHT (/ipfs/kad/1.0.0),
// the routing protocol of the IPFS Amino DHT.
//
// message.go holds the wire format only: the DHT message as a hand-written
// proto3 codec on wire/pb, and the length-prefixed framing go-libp2p-kad-dht
// uses on a stream. It does no I/O beyond WriteMessage and ReadMessage and
// keeps no state.
//
// Sources: spec kad-dht/README.md; go-libp2p-kad-dht v0.42 pb/dht.proto,
// pb/message.go, dht_net.go, amino/defaults.go; go-libp2p-record v0.3.1
// pb/record.proto.
package kademlia

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/mote-p2p/mote/wire"
	"github.com/mote-p2p/mote/wire/pb"
)

// Protocol IDs, as negotiated with multistream-select.
const (
	// ID is the public (Amino, "WAN") DHT: go-libp2p-kad-dht's
	// ProtocolPrefix "/ipfs" followed by "/kad/1.0.0".
	ID = "/ipfs/kad/1.0.0"
	// LANID is the second DHT Kubo runs among LAN peers only (prefix plus
	// the extension "/lan", go-libp2p-kad-dht dual/dual.go).
	LANID = "/ipfs/lan/kad/1.0.0"
)

// Protocol parameters, the Amino defaults of go-libp2p-kad-dht
// (amino/defaults.go), which Kubo uses.
const (
	// K is the bucket size and the replication factor: how many closest
	// peers a response carries and a value is stored on
	// (amino.DefaultBucketSize; enforced for the "/ipfs" prefix).
	K = 20
	// Alpha is how many requests one lookup keeps in flight
	// (amino.DefaultConcurrency; Kubo sets Concurrency(10)).
	Alpha = 10
	// Beta is the resiliency: a lookup ends once the Beta closest peers it
	// has seen have answered (amino.DefaultResiliency).
	Beta = 3
)

// Size limits shared with go-libp2p-kad-dht.
const (
	// MaxMessageSize bounds each length-prefixed message, both ways
	// (go-libp2p network.MessageSizeMax, used by dht_net.go's
	// msgio.NewVarintReaderSize).
	MaxMessageSize = 4 << 20
	// MaxPeerRecordSize is the size to which go-libp2p-kad-dht (v0.42.1
	// and later, pb.MaxPeerRecordSize) trims one encoded Peer entry, by
	// dropping trailing addresses, on send and on receive. This codec
	// does not trim; DefaultLimits' address bounds are set so that
	// entries within it are accepted in all practical cases.
	MaxPeerRecordSize = 8 << 10
)

// Default per-field limits of DefaultLimits. The go implementation bounds
// only the whole message; these are ours, chosen above what honest peers
// send so that no Kubo message is refused, while capping the memory a
// hostile one can make us allocate.
const (
	// DefaultMaxPeers bounds each of closerPeers and providerPeers. Go
	// sends K closer peers, and as many providers as fit in
	// MaxMessageSize (handlers.go), in practice far fewer than this.
	DefaultMaxPeers = 4096
	// DefaultMaxAddrs bounds the addresses of one Peer entry.
	DefaultMaxAddrs = 256
	// DefaultMaxAddrLen bounds one binary multiaddr.
	DefaultMaxAddrLen = 1024
	// DefaultMaxKeySize bounds keys: Message.Key, Record.Key, Peer.ID
	// (and Record.TimeReceived). Keys are multihashes (go accepts 1 to 80
	// bytes for provider keys), peer IDs (at most 42 bytes for inlined
	// keys) or "/pk/" and "/ipns/" followed by one.
	DefaultMaxKeySize = 1024
	// DefaultMaxValueSize bounds Record.Value. Amino stores only public
	// keys and IPNS records, which boxo caps at 10 KiB.
	DefaultMaxValueSize = 64 << 10
)

// maxGroupDepth bounds nesting when skipping unknown groups, which the
// protobuf runtime go uses skips too.
const maxGroupDepth = 32

// Protobuf field numbers (go-libp2p-kad-dht pb/dht.proto, go-libp2p-record
// pb/record.proto; the spec shows the same numbers).
const (
	fieldType            = 1 // MessageType, varint
	fieldKey             = 2 // bytes
	fieldRecord          = 3 // Record
	fieldCloserPeers     = 8 // repeated Peer
	fieldProviderPeers   = 9 // repeated Peer
	fieldClusterLevelRaw = 10

	fieldPeerID         = 1 // bytes
	fieldPeerAddrs      = 2 // repeated bytes
	fieldPeerConnection = 3 // ConnectionType, varint

	fieldRecordKey   = 1 // bytes
	fieldRecordValue = 2 // bytes
	// Fields 3 (author) and 4 (signature) were removed from the schema;
	// they are skipped as unknown fields.
	fieldRecordTimeReceived = 5 // string
)

var (
	// ErrMalformed is wrapped by decoding errors about bytes that are not
	// a DHT message.
	ErrMalformed = errors.New("malformed kademlia message")
	// ErrTooLarge is wrapped when a message, or one of its fields or
	// lists, exceeds a limit of Limits (or MaxMessageSize, for
	// WriteMessage). Errors from ReadMessage about the length prefix wrap
	// wire.ErrMessageTooLarge as well.
	ErrTooLarge = errors.New("kademlia message exceeds a limit")
)

// MessageType is the type of a DHT request, which its response repeats.
type MessageType int32

// Message types. PutValue is proto3's zero value: such a message has no
// type field on the wire.
const (
	PutValue     MessageType = 0
	GetValue     MessageType = 1
	AddProvider  MessageType = 2
	GetProviders MessageType = 3
	FindNode     MessageType = 4
	// Ping is deprecated: never send it; go still answers it with an echo.
	Ping MessageType = 5
)

func (t MessageType) String() string {
	switch t {
	case PutValue:
		return "PUT_VALUE"
	case GetValue:
		return "GET_VALUE"
	case AddProvider:
		return "ADD_PROVIDER"
	case GetProviders:
		return "GET_PROVIDERS"
	case FindNode:
		return "FIND_NODE"
	case Ping:
		return "PING"
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}

// ConnectionType is what the sender of a Peer entry knows of its
// connection to that peer. Go only emits NotConnected and Connected.
type ConnectionType int32

// Connection types. NotConnected is proto3's zero value: absent on the wire.
const (
	NotConnected  ConnectionType = 0
	Connected     ConnectionType = 1
	CanConnect    ConnectionType = 2
	CannotConnect ConnectionType = 3
)

func (c ConnectionType) String() string {
	switch c {
	case NotConnected:
		return "NOT_CONNECTED"
	case Connected:
		return "CONNECTED"
	case CanConnect:
		return "CAN_CONNECT"
	case CannotConnect:
		return "CANNOT_CONNECT"
	}
	return "ConnectionType(" + strconv.Itoa(int(c)) + ")"
}

// Message is the DHT message (dht.pb.Message). Everything is proto3: a
// zero or empty field is not written, and decodes as zero or nil, except
// Record, whose presence is kept (nil is absent).
type Message struct {
	// Type is the request type. Values outside the enum are kept as they
	// came, as proto3 requires; the protocol layer refuses them.
	Type MessageType
	// ClusterLevelRaw is unused and kept for compatibility; go writes
	// 1 (its cluster level 0, plus one) and ignores it on receive.
	ClusterLevelRaw int32
	// Key is what the request is about, as raw bytes (never a text or
	// multibase form):
	//   - FIND_NODE: the target peer ID in binary, but go also looks up
	//     arbitrary keys (record keys, content multihashes): any bytes,
	//     hashed with SHA-256 into the keyspace;
	//   - GET_PROVIDERS, ADD_PROVIDER: the multihash of the content, NOT
	//     its CID (the spec's RPC section says CID; its provider section
	//     and go use the multihash); go requires 1 to 80 bytes;
	//   - GET_VALUE, PUT_VALUE: the record key, "/pk/" or "/ipns/"
	//     followed by a binary peer-ID multihash;
	//   - responses repeat the request's key, except FIND_NODE's (empty).
	Key []byte
	// Record is the value record of PUT_VALUE requests and GET_VALUE
	// responses.
	Record *Record
	// CloserPeers are the sender's closest known peers to Key
	// (GET_VALUE, GET_PROVIDERS and FIND_NODE responses).
	CloserPeers []Peer
	// ProviderPeers are providers of Key: the GET_PROVIDERS response's,
	// or the sender itself with its addresses in ADD_PROVIDER.
	ProviderPeers []Peer
}

// Record is a value record (go-libp2p-record record.pb.Record).
type Record struct {
	// Key must equal Message.Key in a PUT_VALUE request.
	Key []byte
	// Value is validated by the key's namespace validator ("pk", "ipns").
	Value []byte
	// TimeReceived is set by the node that stores the record, as RFC 3339
	// with nanoseconds in UTC (Go's time.RFC3339Nano, e.g.
	// "2024-05-01T12:34:56.123456789Z"). The codec does not parse it.
	TimeReceived string
}

// Peer is one entry of CloserPeers or ProviderPeers (Message.Peer).
type Peer struct {
	// ID is the binary peer ID.
	ID []byte
	// Addrs are binary multiaddrs, unparsed: validation belongs to the
	// caller, so that one bad address does not fail the whole message.
	Addrs [][]byte
	// Connection is the sender's connection state to the peer.
	Connection ConnectionType
}

// Limits bound what DecodeMessage and ReadMessage accept from a peer.
// Each field that is zero (or negative) takes its default, so
// Limits{MaxPeers: 100} changes one bound only; DefaultLimits lists them.
type Limits struct {
	// MaxMessageSize bounds the encoded message (MaxMessageSize, 4 MiB).
	MaxMessageSize int
	// MaxPeers bounds CloserPeers and ProviderPeers, each
	// (DefaultMaxPeers).
	MaxPeers int
	// MaxAddrs bounds the addresses of each Peer (DefaultMaxAddrs).
	MaxAddrs int
	// MaxAddrLen bounds each address (DefaultMaxAddrLen).
	MaxAddrLen int
	// MaxKeySize bounds Message.Key, Record.Key, Record.TimeReceived
	// and every Peer.ID (DefaultMaxKeySize).
	MaxKeySize int
	// MaxValueSize bounds Record.Value (DefaultMaxValueSize).
	MaxValueSize int
}

// DefaultLimits returns the limits a zero Limits stands for.
func DefaultLimits() Limits {
	return Limits{
		MaxMessageSize: MaxMessageSize,
		MaxPeers:       DefaultMaxPeers,
		MaxAddrs:       DefaultMaxAddrs,
		MaxAddrLen:     DefaultMaxAddrLen,
		MaxKeySize:     DefaultMaxKeySize,
		MaxValueSize:   DefaultMaxValueSize,
	}
}

// withDefaults returns l with its unset fields set to their defaults.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxMessageSize, d.MaxMessageSize)
	set(&l.MaxPeers, d.MaxPeers)
	set(&l.MaxAddrs, d.MaxAddrs)
	set(&l.MaxAddrLen, d.MaxAddrLen)
	set(&l.MaxKeySize, d.MaxKeySize)
	set(&l.MaxValueSize, d.MaxValueSize)
	return l
}

// enumValue is how an int32 or enum goes on the wire: sign-extended to
// 64 bits, as the protobuf runtime writes it.
func enumValue(v int32) uint64 { return uint64(int64(v)) }

// Size returns the length of m's encoding, as Append writes it.
func (m *Message) Size() int {
	if m == nil {
		return 0
	}
	n := 0
	if m.Type != 0 {
		n += pb.SizeVarint(fieldType, enumValue(int32(m.Type)))
	}
	if len(m.Key) > 0 {
		n += pb.SizeBytes(fieldKey, len(m.Key))
	}
	if m.Record != nil {
		n += pb.SizeBytes(fieldRecord, m.Record.size())
	}
	for i := range m.CloserPeers {
		n += pb.SizeBytes(fieldCloserPeers, m.CloserPeers[i].size())
	}
	for i := range m.ProviderPeers {
		n += pb.SizeBytes(fieldProviderPeers, m.ProviderPeers[i].size())
	}
	if m.ClusterLevelRaw != 0 {
		n += pb.SizeVarint(fieldClusterLevelRaw, enumValue(m.ClusterLevelRaw))
	}
	return n
}

func (r *Record) size() int {
	n := 0
	if len(r.Key) > 0 {
		n += pb.SizeBytes(fieldRecordKey, len(r.Key))
	}
	if len(r.Value) > 0 {
		n += pb.SizeBytes(fieldRecordValue, len(r.Value))
	}
	if r.TimeReceived != "" {
		n += pb.SizeBytes(fieldRecordTimeReceived, len(r.TimeReceived))
	}
	return n
}

func (p *Peer) size() int {
	n := 0
	if len(p.ID) > 0 {
		n += pb.SizeBytes(fieldPeerID, len(p.ID))
	}
	for _, a := range p.Addrs {
		n += pb.SizeBytes(fieldPeerAddrs, len(a))
	}
	if p.Connection != 0 {
		n += pb.SizeVarint(fieldPeerConnection, enumValue(int32(p.Connection)))
	}
	return n
}

// Append appends the protobuf encoding of m to b and returns the extended
// slice. Fields go in field-number order (clusterLevelRaw, number 10,
// last), as go's runtime writes them, so the bytes match go's for the same
// content. A nil m encodes as nothing. Append checks no limit.
func (m *Message) Append(b []byte) []byte {
	if m == nil {
		return b
	}
	b = slices.Grow(b, m.Size())
	if m.Type != 0 {
		b = pb.AppendVarint(b, fieldType, enumValue(int32(m.Type)))
	}
	if len(m.Key) > 0 {
		b = pb.AppendBytes(b, fieldKey, m.Key)
	}
	if r := m.Record; r != nil {
		b = pb.AppendLen(b, fieldRecord, r.size())
		if len(r.Key) > 0 {
			b = pb.AppendBytes(b, fieldRecordKey, r.Key)
		}
		if len(r.Value) > 0 {
			b = pb.AppendBytes(b, fieldRecordValue, r.Value)
		}
		if r.TimeReceived != "" {
			b = pb.AppendString(b, fieldRecordTimeReceived, r.TimeReceived)
		}
	}
	for i := range m.CloserPeers {
		b = m.CloserPeers[i].append(b, fieldCloserPeers)
	}
	for i := range m.ProviderPeers {
		b = m.ProviderPeers[i].append(b, fieldProviderPeers)
	}
	if m.ClusterLevelRaw != 0 {
		b = pb.AppendVarint(b, fieldClusterLevelRaw, enumValue(m.ClusterLevelRaw))
	}
	return b
}

// append appends p as field num of the enclosing message.
func (p *Peer) append(b []byte, num pb.Number) []byte {
	b = pb.AppendLen(b, num, p.size())
	if len(p.ID) > 0 {
		b = pb.AppendBytes(b, fieldPeerID, p.ID)
	}
	for _, a := range p.Addrs {
		b = pb.AppendBytes(b, fieldPeerAddrs, a)
	}
	if p.Connection != 0 {
		b = pb.AppendVarint(b, fieldPeerConnection, enumValue(int32(p.Connection)))
	}
	return b
}

// DecodeMessage parses one DHT message within lim (zero fields take their
// defaults). Unknown fields, and known fields with an unexpected wire type,
// are skipped, as the protobuf runtime does; a field that occurs twice
// takes its last value, and two records merge, as protobuf merges them.
// Errors wrap ErrTooLarge for a limit and ErrMalformed for anything else.
// The result does not alias b.
//
// What decoding allocates is bounded by lim: the peer lists by MaxPeers,
// the address lists by MaxAddrs, and the bytes by one copy of b.
func DecodeMessage(b []byte, lim Limits) (*Message, error) {
	lim = lim.withDefaults()
	if len(b) > lim.MaxMessageSize {
		return nil, fmt.Errorf("kademlia: decode message: %w: %d bytes, more than the %d-byte limit", ErrTooLarge, len(b), lim.MaxMessageSize)
	}
	// One copy up front lets every byte field alias it: a single
	// allocation instead of one per field.
	m, err := decodeMessage(bytes.Clone(b), lim)
	if err != nil {
		return nil, fmt.Errorf("kademlia: decode message: %w", err)
	}
	return m, nil
}

// decodeMessage is DecodeMessage for a buffer the caller hands over, of
// at most lim.MaxMessageSize bytes, with lim's defaults applied: byte
// fields of the result alias b. A first pass validates the top level and
// counts the peers, so that the lists are allocated once, at their final
// size, and only once they are known to be within the limits.
func decodeMessage(b []byte, lim Limits) (*Message, error) {
	var closer, providers int
	r := newReader(b)
	for {
		f, ok, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if !ok {
			break
		}
		if f.Type != pb.BytesType {
			continue
		}
		switch f.Num {
		case fieldKey:
			if len(f.Bytes) > lim.MaxKeySize {
				return nil, tooLarge("key", len(f.Bytes), lim.MaxKeySize, "byte")
			}
		case fieldCloserPeers:
			closer++
		case fieldProviderPeers:
			providers++
		}
	}
	if closer > lim.MaxPeers {
		return nil, tooLarge("closerPeers", closer, lim.MaxPeers, "peer")
	}
	if providers > lim.MaxPeers {
		return nil, tooLarge("providerPeers", providers, lim.MaxPeers, "peer")
	}
	m := new(Message)
	if closer > 0 {
		m.CloserPeers = make([]Peer, 0, closer)
	}
	if providers > 0 {
		m.ProviderPeers = make([]Peer, 0, providers)
	}
	// The top level was validated above, so Next cannot fail here.
	r = newReader(b)
	for {
		f, ok, _ := r.Next()
		if !ok {
			break
		}
		switch {
		case f.Num == fieldType && f.Type == pb.VarintType:
			m.Type = MessageType(int32(f.Value))
		case f.Num == fieldClusterLevelRaw && f.Type == pb.VarintType:
			m.ClusterLevelRaw = int32(f.Value)
		case f.Type != pb.BytesType:
		case f.Num == fieldKey:
			m.Key = nonEmpty(f.Bytes)
		case f.Num == fieldRecord:
			if m.Record == nil {
				m.Record = new(Record)
			}
			if err := m.Record.decode(f.Bytes, lim); err != nil {
				return nil, fmt.Errorf("record: %w", err)
			}
		case f.Num == fieldCloserPeers:
			p, err := decodePeer(f.Bytes, lim)
			if err != nil {
				return nil, fmt.Errorf("closerPeers[%d]: %w", len(m.CloserPeers), err)
			}
			m.CloserPeers = append(m.CloserPeers, p)
		case f.Num == fieldProviderPeers:
			p, err := decodePeer(f.Bytes, lim)
			if err != nil {
				return nil, fmt.Errorf("providerPeers[%d]: %w", len(m.ProviderPeers), err)
			}
			m.ProviderPeers = append(m.ProviderPeers, p)
		}
	}
	return m, nil
}

// decode merges the encoded record b into r, as protobuf merges a
// singular message field that occurs more than once.
func (r *Record) decode(b []byte, lim Limits) error {
	fr := newReader(b)
	for {
		f, ok, err := fr.Next()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if !ok {
			return nil
		}
		if f.Type != pb.BytesType {
			continue
		}
		switch f.Num {
		case fieldRecordKey:
			if len(f.Bytes) > lim.MaxKeySize {
				return tooLarge("key", len(f.Bytes), lim.MaxKeySize, "byte")
			}
			r.Key = nonEmpty(f.Bytes)
		case fieldRecordValue:
			if len(f.Bytes) > lim.MaxValueSize {
				return tooLarge("value", len(f.Bytes), lim.MaxValueSize, "byte")
			}
			r.Value = nonEmpty(f.Bytes)
		case fieldRecordTimeReceived:
			if len(f.Bytes) > lim.MaxKeySize {
				return tooLarge("timeReceived", len(f.Bytes), lim.MaxKeySize, "byte")
			}
			r.TimeReceived = string(f.Bytes)
		}
	}
}

// decodePeer parses one Peer entry. Like decodeMessage, it validates and
// counts before it allocates the address list.
func decodePeer(b []byte, lim Limits) (Peer, error) {
	var p Peer
	addrs := 0
	r := newReader(b)
	for {
		f, ok, err := r.Next()
		if err != nil {
			return Peer{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if !ok {
			break
		}
		switch {
		case f.Num == fieldPeerConnection && f.Type == pb.VarintType:
			p.Connection = ConnectionType(int32(f.Value))
		case f.Type != pb.BytesType:
		case f.Num == fieldPeerID:
			if len(f.Bytes) > lim.MaxKeySize {
				return Peer{}, tooLarge("id", len(f.Bytes), lim.MaxKeySize, "byte")
			}
			p.ID = nonEmpty(f.Bytes)
		case f.Num == fieldPeerAddrs:
			if len(f.Bytes) > lim.MaxAddrLen {
				return Peer{}, tooLarge(fmt.Sprintf("addrs[%d]", addrs), len(f.Bytes), lim.MaxAddrLen, "byte")
			}
			addrs++
			if addrs > lim.MaxAddrs {
				return Peer{}, fmt.Errorf("%w: addrs: more than the %d-address limit", ErrTooLarge, lim.MaxAddrs)
			}
		}
	}
	if addrs == 0 {
		return p, nil
	}
	p.Addrs = make([][]byte, 0, addrs)
	r = newReader(b)
	for {
		f, ok, _ := r.Next()
		if !ok {
			return p, nil
		}
		if f.Num == fieldPeerAddrs && f.Type == pb.BytesType {
			p.Addrs = append(p.Addrs, f.Bytes)
		}
	}
}

// newReader returns a field reader for a DHT message or one of its parts.
// Fields are bounded by their own limits and the whole by the message
// size, so the Reader bounds neither.
func newReader(b []byte) pb.Reader {
	r := pb.NewReader(b, pb.NoLimit, pb.NoLimit)
	r.AllowGroups(maxGroupDepth)
	return r
}

// nonEmpty maps an empty proto3 bytes field to nil, its zero value, so
// that present-but-empty and absent decode alike, as proto3 defines.
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func tooLarge(what string, n, limit int, unit string) error {
	return fmt.Errorf("%w: %s: %d %ss, more than the %d-%s limit", ErrTooLarge, what, n, unit, limit, unit)
}

// WriteMessage writes m as one length-prefixed message (uvarint length,
// then the protobuf, as go-msgio's varint writer), in one Write. It
// refuses, writing nothing, a message that encodes to more than
// MaxMessageSize, which a go peer would refuse to read. A nil m is the
// empty message (a PUT_VALUE with nothing in it).
func WriteMessage(w io.Writer, m *Message) error {
	n := m.Size()
	if n > MaxMessageSize {
		return fmt.Errorf("kademlia: write %v message: %w: %d bytes, more than the %d-byte limit", m.typ(), ErrTooLarge, n, MaxMessageSize)
	}
	buf := make([]byte, 0, wire.UvarintLen(uint64(n))+n)
	buf = m.Append(wire.AppendUvarint(buf, uint64(n)))
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("kademlia: write %d-byte %v message: %w", len(buf), m.typ(), err)
	}
	return nil
}

// typ is m's type, for error messages; a nil m is the empty message.
func (m *Message) typ() MessageType {
	if m == nil {
		return PutValue
	}
	return m.Type
}

// ReadMessage reads one length-prefixed message and decodes it within lim
// (zero fields take their defaults). The length prefix is checked against
// lim.MaxMessageSize before anything is allocated, and must be a minimal
// varint, as go-msgio requires. It returns io.EOF, unwrapped, only when r
// ends cleanly before a message: how a peer ends a reused stream.
func ReadMessage(r io.Reader, lim Limits) (*Message, error) {
	lim = lim.withDefaults()
	b, err := wire.ReadLP(r, lim.MaxMessageSize)
	if err == io.EOF {
		return nil, io.EOF
	}
	if errors.Is(err, wire.ErrMessageTooLarge) {
		return nil, fmt.Errorf("kademlia: read message: %w: %w", ErrTooLarge, err)
	}
	if err != nil {
		return nil, fmt.Errorf("kademlia: read message: %w", err)
	}
	// ReadLP returns a fresh buffer, so the message may alias it.
	m, err := decodeMessage(b, lim)
	if err != nil {
		return nil, fmt.Errorf("kademlia: decode message: %w", err)
	}
	return m, nil
}
