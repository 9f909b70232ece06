// Package ipns implements IPNS records: the signed, versioned pointers
// that the IPNS name of a key ("/ipns/k51…") resolves through, as the
// Amino DHT stores them under "/ipns/" followed by the binary peer ID.
//
// record.go holds the wire format: the IpnsEntry protobuf, hand-written
// on wire/pb, and its DAG-CBOR "data" document, produced and parsed with
// fxamacker/cbor. ipns.go creates, validates and orders records.
//
// Sources: spec ipfs/specs src/ipns/ipns-record.md; boxo v0.42 ipns/
// (record.go, validation.go, errors.go, defaults.go, pb/record.proto).
package ipns

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/wire/pb"
)

// MaxRecordSize bounds an encoded record, checked before it is parsed
// (spec "Record Size Limit": 10 KiB; boxo errors.go MaxRecordSize).
const MaxRecordSize = 10 << 10

// Record lifetimes boxo and Kubo use when the publisher sets none
// (boxo defaults.go).
const (
	// DefaultLifetime is how long after publication a record is valid:
	// the 48 hours Amino DHT servers keep records for.
	DefaultLifetime = 48 * time.Hour
	// DefaultTTL is how long resolvers may cache a record before they
	// look for a newer one.
	DefaultTTL = 5 * time.Minute
)

// validityEOL is the only validity type: Validity is the instant after
// which the record is invalid (pb/record.proto IpnsRecord.ValidityType).
const validityEOL = 0

// maxGroupDepth bounds nesting when skipping unknown protobuf groups,
// which the protobuf runtime boxo uses skips too.
const maxGroupDepth = 32

// maxCBORDepth bounds the nesting of the data document (fxamacker/cbor's
// default): the five fields are flat, and extra fields have no reason to
// nest deeper.
const maxCBORDepth = 32

// IpnsEntry field numbers (spec "Record Serialization Format"; boxo
// pb/record.proto).
const (
	fieldValue        = 1 // bytes, V1 copy of data[Value]
	fieldSignatureV1  = 2 // bytes, over value ‖ validity ‖ "EOL"
	fieldValidityType = 3 // enum, V1 copy of data[ValidityType]
	fieldValidity     = 4 // bytes, V1 copy of data[Validity]
	fieldSequence     = 5 // uint64, V1 copy of data[Sequence]
	fieldTTL          = 6 // uint64, V1 copy of data[TTL]
	fieldPubKey       = 7 // bytes, PublicKey protobuf
	fieldSignatureV2  = 8 // bytes, over "ipns-signature:" ‖ data
	fieldData         = 9 // bytes, DAG-CBOR
)

// Keys of the DAG-CBOR data document (spec "Record Fields"; boxo
// record.go).
const (
	cborValue        = "Value"
	cborValidity     = "Validity"
	cborValidityType = "ValidityType"
	cborSequence     = "Sequence"
	cborTTL          = "TTL"
)

// cborLinkTag is the only CBOR tag DAG-CBOR allows: a CID link, whose
// content is a byte string starting with the 0x00 multibase prefix
// (ipld.io/specs/codecs/dag-cbor/spec).
const cborLinkTag = 42

var (
	// ErrTooLarge is wrapped when a record exceeds MaxRecordSize.
	ErrTooLarge = errors.New("ipns record too large")
	// ErrMalformed is wrapped when a record is not an IpnsEntry protobuf,
	// its data is not DAG-CBOR, or a field is missing, of the wrong type
	// or out of range.
	ErrMalformed = errors.New("malformed ipns record")
	// ErrV1Only is wrapped when a record has no data field: a legacy
	// V1-only record, which boxo refuses too since V1 signatures were
	// deprecated.
	ErrV1Only = errors.New("ipns record is V1-only")
	// ErrValidityType is wrapped when a record's validity type is not
	// EOL (0), the only one defined.
	ErrValidityType = errors.New("unsupported ipns validity type")
	// ErrPublicKey is wrapped when the public key of a record is missing,
	// unparsable or not the key of the name it is validated against.
	ErrPublicKey = errors.New("ipns record public key invalid")
	// ErrSignature is wrapped when signatureV2 is missing or does not
	// verify.
	ErrSignature = errors.New("ipns record signature invalid")
	// ErrMismatch is wrapped when the legacy V1 protobuf fields of a
	// record disagree with its signed data.
	ErrMismatch = errors.New("ipns record protobuf and data disagree")
	// ErrExpired is wrapped when a record's validity has passed.
	ErrExpired = errors.New("ipns record expired")
)

// Record is a parsed IPNS record. The exported fields come from the
// signed DAG-CBOR data; the protobuf copies that legacy readers use are
// kept inside, for Validate to compare.
type Record struct {
	// Value is what the name points to, normally a content path such
	// as "/ipfs/bafy…" or "/ipns/k51…"; the record does not constrain it.
	Value []byte
	// Validity is the end of the record's life (validity type EOL), in
	// UTC with nanoseconds, as the record states it.
	Validity time.Time
	// Sequence orders the records of one name: higher is newer.
	Sequence uint64
	// TTL is how long resolvers may cache the record before looking for
	// a newer one. It is never negative.
	TTL time.Duration
	// PublicKey is the key carried in the record, nil when the record
	// has none because the name inlines it (Ed25519, secp256k1 names).
	PublicKey peer.PublicKey
	// Raw is the record as it was received or created: the bytes to store
	// and publish again, since the signatures cover them and a
	// re-encoding need not be identical.
	Raw []byte

	e        entry
	validity []byte // data[Validity] as the record spells it
}

// entry is the IpnsEntry protobuf as the wire carries it. Absent fields
// are zero: boxo tests the legacy fields by their values, not their
// presence, so presence is not kept.
type entry struct {
	value        []byte
	signatureV1  []byte
	validityType int32
	validity     []byte
	sequence     uint64
	ttl          uint64
	pubKey       []byte
	signatureV2  []byte
	data         []byte
}

// enumValue is how an enum goes on the wire: sign-extended to 64 bits,
// as the protobuf runtime writes it.
func enumValue(v int32) uint64 { return uint64(int64(v)) }

// marshalV2 encodes e as a V1+V2 record, in field-number order as the
// protobuf runtime writes it, so that the bytes are boxo's for the same
// content. The V1 fields are all written, zeros included, since boxo sets
// them as present proto3 optionals; pubKey only when set.
func (e *entry) marshalV2() []byte {
	n := pb.SizeBytes(fieldValue, len(e.value)) +
		pb.SizeBytes(fieldSignatureV1, len(e.signatureV1)) +
		pb.SizeVarint(fieldValidityType, enumValue(e.validityType)) +
		pb.SizeBytes(fieldValidity, len(e.validity)) +
		pb.SizeVarint(fieldSequence, e.sequence) +
		pb.SizeVarint(fieldTTL, e.ttl) +
		pb.SizeBytes(fieldSignatureV2, len(e.signatureV2)) +
		pb.SizeBytes(fieldData, len(e.data))
	if len(e.pubKey) > 0 {
		n += pb.SizeBytes(fieldPubKey, len(e.pubKey))
	}
	b := make([]byte, 0, n)
	b = pb.AppendBytes(b, fieldValue, e.value)
	b = pb.AppendBytes(b, fieldSignatureV1, e.signatureV1)
	b = pb.AppendVarint(b, fieldValidityType, enumValue(e.validityType))
	b = pb.AppendBytes(b, fieldValidity, e.validity)
	b = pb.AppendVarint(b, fieldSequence, e.sequence)
	b = pb.AppendVarint(b, fieldTTL, e.ttl)
	if len(e.pubKey) > 0 {
		b = pb.AppendBytes(b, fieldPubKey, e.pubKey)
	}
	b = pb.AppendBytes(b, fieldSignatureV2, e.signatureV2)
	return pb.AppendBytes(b, fieldData, e.data)
}

// decodeEntry parses an IpnsEntry. As the protobuf runtime does, it skips
// unknown fields and known fields of an unexpected wire type, and keeps
// the last of repeated fields. Byte fields alias b, which the caller
// bounds by MaxRecordSize, so the Reader bounds nothing itself.
func decodeEntry(b []byte) (entry, error) {
	var e entry
	r := pb.NewReader(b, pb.NoLimit, pb.NoLimit)
	r.AllowGroups(maxGroupDepth)
	for {
		f, ok, err := r.Next()
		if err != nil {
			return entry{}, err
		}
		if !ok {
			return e, nil
		}
		switch {
		case f.Type == pb.VarintType && f.Num == fieldValidityType:
			e.validityType = int32(f.Value)
		case f.Type == pb.VarintType && f.Num == fieldSequence:
			e.sequence = f.Value
		case f.Type == pb.VarintType && f.Num == fieldTTL:
			e.ttl = f.Value
		case f.Type != pb.BytesType:
		case f.Num == fieldValue:
			e.value = f.Bytes
		case f.Num == fieldSignatureV1:
			e.signatureV1 = f.Bytes
		case f.Num == fieldValidity:
			e.validity = f.Bytes
		case f.Num == fieldPubKey:
			e.pubKey = f.Bytes
		case f.Num == fieldSignatureV2:
			e.signatureV2 = f.Bytes
		case f.Num == fieldData:
			e.data = f.Bytes
		}
	}
}

// data is the DAG-CBOR document with the five fields every record has.
// Field order does not matter: the encoder sorts keys length-first.
type data struct {
	Value        []byte `cbor:"Value"`
	Validity     []byte `cbor:"Validity"`
	ValidityType uint64 `cbor:"ValidityType"`
	Sequence     uint64 `cbor:"Sequence"`
	TTL          uint64 `cbor:"TTL"`
}

// encMode writes DAG-CBOR: map keys sorted by length then bytewise
// (RFC 7049 canonical order, which DAG-CBOR keeps), definite lengths,
// nil byte slices as empty byte strings;
// fxamacker/cbor always writes integers and lengths in their shortest
// form. An EncMode is immutable and safe for concurrent use.
var encMode = func() cbor.EncMode {
	em, err := cbor.EncOptions{
		Sort:          cbor.SortLengthFirst,
		IndefLength:   cbor.IndefLengthForbidden,
		NilContainers: cbor.NilContainerAsEmpty, // a nil Value is b"", not null
	}.EncMode()
	if err != nil {
		panic("ipns: cbor encoder options: " + err.Error())
	}
	return em
}()

// decMode reads the data document as generic values and refuses what
// DAG-CBOR forbids and fxamacker/cbor can tell: duplicate map keys,
// indefinite lengths, invalid UTF-8, NaN and infinities, bignum tags,
// simple values other than false, true and null, and trailing bytes.
// Decoding maps into map[string]any refuses keys that are not text
// strings, at every level. Tags other than 42 are caught after decoding
// (checkDAG). Like boxo, it does not require the canonical form: keys in
// order and shortest integers are what a DAG-CBOR encoder writes, but the
// signature covers the bytes, whatever their form. An immutable DecMode.
var decMode = func() cbor.DecMode {
	var simple []func(*cbor.SimpleValueRegistry) error
	for sv := 0; sv < 256; sv++ {
		// 20, 21, 22 are false, true, null; 24 to 31 are reserved and
		// never well-formed.
		if sv != 20 && sv != 21 && sv != 22 && (sv < 24 || sv > 31) {
			simple = append(simple, cbor.WithRejectedSimpleValue(cbor.SimpleValue(sv)))
		}
	}
	reg, err := cbor.NewSimpleValueRegistryFromDefaults(simple...)
	if err != nil {
		panic("ipns: cbor simple values: " + err.Error())
	}
	dm, err := cbor.DecOptions{
		DupMapKey:       cbor.DupMapKeyEnforcedAPF,
		IndefLength:     cbor.IndefLengthForbidden,
		MaxNestedLevels: maxCBORDepth,
		DefaultMapType:  reflect.TypeFor[map[string]any](),
		UTF8:            cbor.UTF8RejectInvalid,
		NaN:             cbor.NaNDecodeForbidden,
		Inf:             cbor.InfDecodeForbidden,
		BignumTag:       cbor.BignumTagForbidden,
		SimpleValues:    reg,
	}.DecMode()
	if err != nil {
		panic("ipns: cbor decoder options: " + err.Error())
	}
	return dm
}()

// encodeData returns the DAG-CBOR document of d.
func encodeData(d data) ([]byte, error) {
	b, err := encMode.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode data: %w", err)
	}
	return b, nil
}

// decodeData parses the data document into its five fields, which must
// all be present with their types: Value and Validity byte strings,
// ValidityType, Sequence and TTL unsigned integers (TTL an int64 number
// of nanoseconds). Other keys are allowed (spec "Extensible Data") and
// checked only as DAG-CBOR.
func decodeData(b []byte) (data, error) {
	var doc map[string]any
	if err := decMode.Unmarshal(b, &doc); err != nil {
		return data{}, fmt.Errorf("%w: data is not DAG-CBOR: %w", ErrMalformed, err)
	}
	if doc == nil {
		return data{}, fmt.Errorf("%w: data is not a map", ErrMalformed)
	}
	for k, v := range doc {
		if err := checkDAG(v); err != nil {
			return data{}, fmt.Errorf("%w: data[%q]: %w", ErrMalformed, k, err)
		}
	}
	var d data
	var err error
	if d.Value, err = dataBytes(doc, cborValue); err != nil {
		return data{}, err
	}
	if d.Validity, err = dataBytes(doc, cborValidity); err != nil {
		return data{}, err
	}
	switch v := doc[cborValidityType].(type) {
	case uint64:
		if v != validityEOL {
			return data{}, fmt.Errorf("%w: data[%s] is %d", ErrValidityType, cborValidityType, v)
		}
	case int64:
		return data{}, fmt.Errorf("%w: data[%s] is %d", ErrValidityType, cborValidityType, v)
	default:
		return data{}, dataType(doc, cborValidityType, "an unsigned integer")
	}
	if d.Sequence, err = dataUint(doc, cborSequence, math.MaxUint64); err != nil {
		return data{}, err
	}
	if d.TTL, err = dataUint(doc, cborTTL, math.MaxInt64); err != nil {
		return data{}, err
	}
	return d, nil
}

// checkDAG refuses, in a decoded value, the tags DAG-CBOR forbids: any
// but 42, and 42 on anything but a byte string with the 0x00 prefix.
// Tags 0 and 1 decode as time.Time; bignums were refused by decMode, so
// a big.Int is a plain negative integer below math.MinInt64. decMode
// bounds the depth of the recursion.
func checkDAG(v any) error {
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			if err := checkDAG(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			if err := checkDAG(e); err != nil {
				return err
			}
		}
	case cbor.Tag:
		if b, ok := v.Content.([]byte); v.Number != cborLinkTag || !ok || len(b) == 0 || b[0] != 0 {
			return fmt.Errorf("CBOR tag %d is not a DAG-CBOR link", v.Number)
		}
	case time.Time:
		return errors.New("CBOR time tag is not DAG-CBOR")
	case nil, bool, uint64, int64, big.Int, float64, []byte, string:
	default:
		return fmt.Errorf("CBOR %T is not DAG-CBOR", v)
	}
	return nil
}

// dataBytes returns data[key], which must be a byte string.
func dataBytes(doc map[string]any, key string) ([]byte, error) {
	if b, ok := doc[key].([]byte); ok {
		return b, nil
	}
	return nil, dataType(doc, key, "a byte string")
}

// dataUint returns data[key], which must be an unsigned integer of at
// most limit.
func dataUint(doc map[string]any, key string, limit uint64) (uint64, error) {
	switch v := doc[key].(type) {
	case uint64:
		if v > limit {
			return 0, fmt.Errorf("%w: data[%s] is %d, more than %d", ErrMalformed, key, v, limit)
		}
		return v, nil
	case int64, big.Int:
		return 0, fmt.Errorf("%w: data[%s] is negative", ErrMalformed, key)
	}
	return 0, dataType(doc, key, "an unsigned integer")
}

// dataType is the error for a data field that is missing or not of the
// type wanted.
func dataType(doc map[string]any, key, want string) error {
	v, ok := doc[key]
	if !ok {
		return fmt.Errorf("%w: data has no %s", ErrMalformed, key)
	}
	return fmt.Errorf("%w: data[%s] is a %T, want %s", ErrMalformed, key, v, want)
}

// formatValidity is the text of an EOL validity: RFC 3339 in UTC with
// as many fraction digits as needed (boxo util.FormatRFC3339).
func formatValidity(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// parseValidity reads an EOL validity as boxo does (util.ParseRFC3339):
// Go's RFC 3339 parser, any offset, the result in UTC.
func parseValidity(b []byte) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// Unmarshal parses a record without validating it: no signature is
// checked and the record may have expired (see Validate). It refuses
// records over MaxRecordSize before parsing them (ErrTooLarge), records
// without data (ErrV1Only), data that is not DAG-CBOR or lacks one of the
// five fields (ErrMalformed), a validity type other than EOL
// (ErrValidityType) and an unparsable pubKey field (ErrPublicKey).
// Unknown protobuf fields and extra data keys are allowed, as the spec
// requires. The result does not alias b.
func Unmarshal(b []byte) (*Record, error) {
	if len(b) > MaxRecordSize {
		return nil, fmt.Errorf("ipns: unmarshal record: %w: %d bytes, more than the %d-byte limit", ErrTooLarge, len(b), MaxRecordSize)
	}
	raw := bytes.Clone(b)
	r, err := unmarshal(raw)
	if err != nil {
		return nil, fmt.Errorf("ipns: unmarshal record: %w", err)
	}
	return r, nil
}

// unmarshal is Unmarshal for a buffer the Record may alias.
func unmarshal(raw []byte) (*Record, error) {
	e, err := decodeEntry(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(e.data) == 0 {
		return nil, fmt.Errorf("%w: no data field", ErrV1Only)
	}
	d, err := decodeData(e.data)
	if err != nil {
		return nil, err
	}
	validity, err := parseValidity(d.Validity)
	if err != nil {
		return nil, fmt.Errorf("%w: data[%s]: %w", ErrMalformed, cborValidity, err)
	}
	r := &Record{
		Value:    d.Value,
		Validity: validity,
		Sequence: d.Sequence,
		TTL:      time.Duration(d.TTL),
		Raw:      raw,
		e:        e,
		validity: d.Validity,
	}
	if len(e.pubKey) > 0 {
		if r.PublicKey, err = peer.UnmarshalPublicKey(e.pubKey); err != nil {
			return nil, fmt.Errorf("%w: pubKey field: %w", ErrPublicKey, err)
		}
	}
	return r, nil
}

// v1Mismatch reports, for a record with legacy V1 fields, which of them
// differs from the signed data, or "" if none does. Absent fields count
// as their zero values, as boxo reads them (validateCborDataMatchesPbData).
// Validity is compared as text, not as an instant: old readers check
// signatureV1 over the text.
func (r *Record) v1Mismatch() string {
	switch d := r.e; {
	case !bytes.Equal(d.value, r.Value):
		return "value"
	case !bytes.Equal(d.validity, r.validity):
		return "validity"
	case int64(d.validityType) != validityEOL:
		return "validityType"
	case d.sequence != r.Sequence:
		return "sequence"
	case d.ttl != uint64(r.TTL):
		return "ttl"
	}
	return ""
}

// hasV1 reports whether the record carries the legacy V1 fields that old
// readers resolve with (spec "Record Verification" step 7).
func (r *Record) hasV1() bool {
	return len(r.e.signatureV1) > 0 || len(r.e.value) > 0
}

// signedV2 returns what signatureV2 signs: "ipns-signature:" ‖ data
// (spec "Record Creation" step 5).
func signedV2(data []byte) []byte {
	const prefix = "ipns-signature:"
	return append(append(make([]byte, 0, len(prefix)+len(data)), prefix...), data...)
}

// signedV1 returns what the legacy signatureV1 signs: value ‖ validity ‖
// the name of the validity type, "EOL". The spec says string(validityType),
// but go-ipns and boxo format the generated enum with fmt, which prints its
// String(), and the records in the wild are signed so (checked against
// Kubo v0.43.0; boxo recordDataForSignatureV1).
func signedV1(value, validity []byte) []byte {
	return slices.Concat(value, validity, []byte("EOL"))
}
