package peer

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/mote-p2p/mote/wire/multiaddr"
	"github.com/mote-p2p/mote/wire/pb"
)

// PeerRecordDomain is the envelope domain of peer records, as used by
// go-libp2p and Kubo (RFC 0003's "libp2p-routing-state" is not what they
// sign with).
const PeerRecordDomain = "libp2p-peer-record"

// PeerRecordPayloadType is the envelope payload type of peer records: the
// two big-endian bytes of multicodec 0x0301, not its varint.
var PeerRecordPayloadType = []byte{0x03, 0x01}

// Bounds on a decoded peer record. A busy Kubo node advertises a few dozen
// addresses; the longest real multiaddrs (webtransport with certhashes,
// relay circuits) are a few hundred bytes.
const (
	MaxRecordAddrs   = 128
	MaxRecordAddrLen = 1 << 10
)

// ErrPayloadType is returned (wrapped) when an envelope carries a payload
// type other than the one the caller expects.
var ErrPayloadType = errors.New("unexpected envelope payload type")

// ErrIDMismatch is returned (wrapped) when a record names a peer other
// than the one whose key signed it.
var ErrIDMismatch = errors.New("peer ID does not match signing key")

// PeerRecord is a signed statement by a peer of the addresses it can be
// reached at. Seq orders records from the same peer: receivers keep the
// highest.
type PeerRecord struct {
	ID    ID
	Seq   uint64
	Addrs []multiaddr.Multiaddr
}

// Marshal encodes r as the proto3 PeerRecord message (record.proto).
// Empty addresses are skipped.
func (r *PeerRecord) Marshal() []byte {
	n := len(r.ID) + 2 + 11
	for _, a := range r.Addrs {
		n += len(a.Bytes()) + 6
	}
	b := make([]byte, 0, n)
	if len(r.ID) > 0 {
		b = pb.AppendString(b, 1, string(r.ID))
	}
	if r.Seq != 0 {
		b = pb.AppendVarint(b, 2, r.Seq)
	}
	for _, a := range r.Addrs {
		ab := a.Bytes()
		if len(ab) == 0 {
			continue
		}
		// An AddressInfo message holding only the multiaddr.
		b = pb.AppendLen(b, 3, pb.SizeBytes(1, len(ab)))
		b = pb.AppendBytes(b, 1, ab)
	}
	return b
}

// UnmarshalPeerRecord decodes a PeerRecord message. Broken protobuf and a
// missing or invalid peer ID are errors; an individual address that does
// not parse (for example a multiaddr protocol this build does not know) or
// exceeds MaxRecordAddrLen is skipped, so one odd address does not hide a
// peer's others. Addresses after the first MaxRecordAddrs are ignored.
func UnmarshalPeerRecord(b []byte) (*PeerRecord, error) {
	if len(b) > MaxEnvelopeSize {
		return nil, fmt.Errorf("unmarshal peer record: %d bytes, limit %d", len(b), MaxEnvelopeSize)
	}
	rec := &PeerRecord{}
	var haveID, haveSeq bool
	r := pb.NewReader(b, pb.NoLimit, pb.NoLimit) // b is bounded above
	for {
		f, ok, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("unmarshal peer record: %w", err)
		}
		if !ok {
			break
		}
		switch f.Num {
		case 1:
			if f.Type != pb.BytesType {
				return nil, fmt.Errorf("unmarshal peer record: peer_id has wire type %d, want bytes", f.Type)
			}
			if haveID {
				return nil, errors.New("unmarshal peer record: peer_id repeated")
			}
			id, err := IDFromBytes(f.Bytes)
			if err != nil {
				return nil, fmt.Errorf("unmarshal peer record: %w", err)
			}
			rec.ID, haveID = id, true
		case 2:
			if f.Type != pb.VarintType {
				return nil, fmt.Errorf("unmarshal peer record: seq has wire type %d, want varint", f.Type)
			}
			if haveSeq {
				return nil, errors.New("unmarshal peer record: seq repeated")
			}
			rec.Seq, haveSeq = f.Value, true
		case 3:
			if f.Type != pb.BytesType {
				return nil, fmt.Errorf("unmarshal peer record: addresses has wire type %d, want bytes", f.Type)
			}
			ab, err := addressInfoBytes(f.Bytes)
			if err != nil {
				return nil, fmt.Errorf("unmarshal peer record: address %d: %w", len(rec.Addrs), err)
			}
			if len(rec.Addrs) >= MaxRecordAddrs || len(ab) == 0 || len(ab) > MaxRecordAddrLen {
				continue
			}
			a, err := multiaddr.NewMultiaddrBytes(bytes.Clone(ab))
			if err != nil || len(a) == 0 {
				continue
			}
			rec.Addrs = append(rec.Addrs, a)
		}
	}
	if !haveID {
		return nil, errors.New("unmarshal peer record: missing peer_id")
	}
	return rec, nil
}

// addressInfoBytes extracts the multiaddr field of an AddressInfo message.
func addressInfoBytes(b []byte) ([]byte, error) {
	var addr []byte
	r := pb.NewReader(b, pb.NoLimit, pb.NoLimit)
	for {
		f, ok, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("AddressInfo: %w", err)
		}
		if !ok {
			return addr, nil
		}
		if f.Num != 1 {
			continue
		}
		if f.Type != pb.BytesType {
			return nil, fmt.Errorf("AddressInfo: multiaddr has wire type %d, want bytes", f.Type)
		}
		if addr != nil {
			return nil, errors.New("AddressInfo: multiaddr repeated")
		}
		addr = f.Bytes
	}
}

// SealPeerRecord signs r with key and returns the marshalled envelope,
// ready for identify's signedPeerRecord field. r.ID must be key's ID.
func SealPeerRecord(key PrivateKey, r *PeerRecord) ([]byte, error) {
	if key == nil || r == nil {
		return nil, errors.New("seal peer record: nil key or record")
	}
	if signer := IDFromPublicKey(key.Public()); signer != r.ID {
		return nil, fmt.Errorf("seal peer record: record is for %s but key is %s: %w", r.ID, signer, ErrIDMismatch)
	}
	env, err := Seal(key, PeerRecordDomain, PeerRecordPayloadType, r.Marshal())
	if err != nil {
		return nil, fmt.Errorf("seal peer record: %w", err)
	}
	return env.Marshal(), nil
}

// OpenPeerRecord verifies a marshalled peer-record envelope and decodes
// the record, in the order the spec requires: signature first, then
// payload type, then decoding, then that the record's peer ID is the
// signer's. Callers still have to apply Seq ordering (Store does).
func OpenPeerRecord(data []byte) (*PeerRecord, *Envelope, error) {
	env, err := OpenEnvelope(data, PeerRecordDomain)
	if err != nil {
		return nil, nil, fmt.Errorf("open peer record: %w", err)
	}
	if !bytes.Equal(env.PayloadType, PeerRecordPayloadType) {
		return nil, nil, fmt.Errorf("open peer record: payload type %x, want %x: %w", env.PayloadType, PeerRecordPayloadType, ErrPayloadType)
	}
	rec, err := UnmarshalPeerRecord(env.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("open peer record: %w", err)
	}
	if signer := IDFromPublicKey(env.PublicKey); signer != rec.ID {
		return nil, nil, fmt.Errorf("open peer record: record names %s but is signed by %s: %w", rec.ID, signer, ErrIDMismatch)
	}
	return rec, env, nil
}
