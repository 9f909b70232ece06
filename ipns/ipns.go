package ipns

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/wire/multibase"
)

// NamespacePrefix starts IPNS paths ("/ipns/k51…") and, followed by the
// binary peer ID, DHT record keys (boxo name.go NamespacePrefix).
const NamespacePrefix = "/ipns/"

var (
	// ErrInvalidName is wrapped when a name is not a valid peer ID, or
	// an IPNS path not "/ipns/" followed by one.
	ErrInvalidName = errors.New("invalid ipns name")
	// ErrNoValidRecord is wrapped by Select when no record is valid.
	ErrNoValidRecord = errors.New("no valid ipns record")
)

// Create signs a record for the name of key that points at value, with
// sequence number seq, valid until eol and cacheable for ttl, and returns
// its encoding. Like boxo's NewRecord by default, it writes a V1+V2
// record: signatureV2 over the DAG-CBOR data, and the legacy V1 copies of
// the fields with signatureV1, so that readers older than V2 accept it;
// the public key goes in the record only when the name does not inline it
// (RSA and ECDSA keys).
//
// seq is limited to math.MaxInt64 and ttl must not be negative, because
// boxo reads both as int64 (it would write a larger sequence as a
// negative CBOR integer, which this package, as the spec's uint64, does
// not read). eol is written in UTC with nanoseconds and must fall within
// years 0 to 9999; it may be in the past, which Validate refuses.
func Create(key peer.PrivateKey, value []byte, seq uint64, eol time.Time, ttl time.Duration) ([]byte, error) {
	if key == nil {
		return nil, errors.New("ipns: create record: nil private key")
	}
	if seq > math.MaxInt64 {
		return nil, fmt.Errorf("ipns: create record: sequence %d is over the int64 range boxo reads", seq)
	}
	if ttl < 0 {
		return nil, fmt.Errorf("ipns: create record: negative TTL %v", ttl)
	}
	validity := formatValidity(eol)
	if t, err := parseValidity([]byte(validity)); err != nil || !t.Equal(eol) {
		return nil, fmt.Errorf("ipns: create record: validity %v is not an RFC 3339 time", eol)
	}
	d := data{
		Value:        value,
		Validity:     []byte(validity),
		ValidityType: validityEOL,
		Sequence:     seq,
		TTL:          uint64(ttl),
	}
	cborData, err := encodeData(d)
	if err != nil {
		return nil, fmt.Errorf("ipns: create record: %w", err)
	}
	sig2, err := key.Sign(signedV2(cborData))
	if err != nil {
		return nil, fmt.Errorf("ipns: create record: signatureV2: %w", err)
	}
	sig1, err := key.Sign(signedV1(value, d.Validity))
	if err != nil {
		return nil, fmt.Errorf("ipns: create record: signatureV1: %w", err)
	}
	e := entry{
		value:        value,
		signatureV1:  sig1,
		validityType: validityEOL,
		validity:     d.Validity,
		sequence:     seq,
		ttl:          d.TTL,
		signatureV2:  sig2,
		data:         cborData,
	}
	pub := key.Public()
	if _, err := peer.IDFromPublicKey(pub).PublicKey(); err != nil {
		// The ID hashes the key: resolvers need it from the record.
		e.pubKey = peer.MarshalPublicKey(pub)
	}
	b := e.marshalV2()
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("ipns: create record: %w: %d bytes, more than the %d-byte limit", ErrTooLarge, len(b), MaxRecordSize)
	}
	return b, nil
}

// Validate parses the record b of name and checks it at instant now as
// boxo's ipns.Validator does, following the spec's "Record Verification":
// b is at most MaxRecordSize; signatureV2 and data are present (V1-only
// records are refused); the public key, from the pubKey field (which must
// be name's key) or else inlined in name, verifies signatureV2; the data
// parses; if the record has V1 fields (signatureV1 or value), all five of
// them equal the data's; and the validity has not passed (a record is
// still valid at the instant of its EOL, as boxo's
// time.Now().After(eol) has it). It returns the record, whose errors wrap
// the sentinels of this package.
func Validate(name peer.ID, b []byte, now time.Time) (*Record, error) {
	r, err := Unmarshal(b)
	if err != nil {
		return nil, err
	}
	if err := r.check(name, now); err != nil {
		return nil, fmt.Errorf("ipns: validate record of %s: %w", name.ShortString(), err)
	}
	return r, nil
}

// check is Validate for a parsed record.
func (r *Record) check(name peer.ID, now time.Time) error {
	if err := name.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidName, err)
	}
	if len(r.e.signatureV2) == 0 {
		return fmt.Errorf("%w: no signatureV2", ErrSignature)
	}
	pub := r.PublicKey
	if pub != nil {
		if !name.MatchesPublicKey(pub) {
			return fmt.Errorf("%w: the pubKey field is the key of %s", ErrPublicKey, peer.IDFromPublicKey(pub).ShortString())
		}
	} else {
		var err error
		if pub, err = name.PublicKey(); err != nil {
			return fmt.Errorf("%w: no pubKey field, and %w", ErrPublicKey, err)
		}
	}
	if err := pub.Verify(signedV2(r.e.data), r.e.signatureV2); err != nil {
		return fmt.Errorf("%w: signatureV2: %w", ErrSignature, err)
	}
	if r.hasV1() {
		if f := r.v1Mismatch(); f != "" {
			return fmt.Errorf("%w: protobuf field %s differs from the data", ErrMismatch, f)
		}
	}
	if now.After(r.Validity) {
		return fmt.Errorf("%w: valid until %s, now %s", ErrExpired, formatValidity(r.Validity), formatValidity(now))
	}
	return nil
}

// Compare orders two records of one name as boxo selects among them,
// returning +1 if a is better (newer), -1 if b is, and 0 only if they are
// the same bytes: a record with signatureV2 beats one without (which
// Validate refuses anyway), then the higher Sequence wins, then the later
// Validity, then the byte-wise larger encoding, so that every node picks
// the same record. It does not validate them.
func Compare(a, b *Record) int {
	if c := cmp.Compare(min(len(a.e.signatureV2), 1), min(len(b.e.signatureV2), 1)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Sequence, b.Sequence); c != 0 {
		return c
	}
	if c := a.Validity.Compare(b.Validity); c != 0 {
		return c
	}
	return bytes.Compare(a.Raw, b.Raw)
}

// Select returns the index of the best of records for name at instant
// now: the greatest by Compare among those that Validate accepts; of
// identical best records, the first. Invalid records are passed over, so
// that one bad answer does not hide good ones; if none is valid, the
// error wraps ErrNoValidRecord and the last record's error.
func Select(name peer.ID, records [][]byte, now time.Time) (int, error) {
	best := -1
	var bestRec *Record
	var lastErr error
	for i, b := range records {
		r, err := Validate(name, b, now)
		if err != nil {
			lastErr = err
			continue
		}
		if best < 0 || Compare(r, bestRec) > 0 {
			best, bestRec = i, r
		}
	}
	if best < 0 {
		if lastErr == nil {
			return -1, fmt.Errorf("ipns: select record of %s: %w: no records", name.ShortString(), ErrNoValidRecord)
		}
		return -1, fmt.Errorf("ipns: select among %d records of %s: %w: last: %w", len(records), name.ShortString(), ErrNoValidRecord, lastErr)
	}
	return best, nil
}

// Key returns the DHT key of name's records: "/ipns/" followed by the
// binary peer ID, not a text form (spec "Routing Record"; boxo
// Name.RoutingKey).
func Key(id peer.ID) []byte {
	return append([]byte(NamespacePrefix), id...)
}

// ParsePath parses an IPNS path "/ipns/<name>" whose name is a key: a
// peer ID in base58 ("12D3KooW…", "Qm…") or a CIDv1 with the libp2p-key
// codec, in base36 ("k51…", as Kubo prints names) or base32 ("bafz…"),
// or any other multibase peer.Decode reads. DNSLink names
// ("/ipns/example.com") and paths below the name ("/ipns/k51…/a/b") are
// refused: resolving them is not a record lookup.
func ParsePath(s string) (peer.ID, error) {
	rest, ok := strings.CutPrefix(s, NamespacePrefix)
	if !ok {
		return "", fmt.Errorf("ipns: parse path %q: %w: not under %s", s, ErrInvalidName, NamespacePrefix)
	}
	if strings.Contains(rest, "/") {
		return "", fmt.Errorf("ipns: parse path %q: %w: only /ipns/<name>, without a path after it", s, ErrInvalidName)
	}
	id, err := peer.Decode(rest)
	if err != nil {
		return "", fmt.Errorf("ipns: parse path: %w: %w", ErrInvalidName, err)
	}
	return id, nil
}

// Name is the text form Kubo prints for the IPNS name of id: the CIDv1
// of the key (codec libp2p-key) in base36, "k51…".
func Name(id peer.ID) string {
	b := make([]byte, 0, 2+len(id))
	b = append(b, 0x01, 0x72) // CIDv1, libp2p-key
	b = append(b, id...)
	return multibase.EncodeBase36(b)
}
