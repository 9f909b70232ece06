package ipns

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mote-p2p/mote/peer"
)

// Pairs of a DAG-CBOR data document, as hex: text key, then value.
const (
	pairTTL          = "63 54544c 1a3b9aca00"                                                // "TTL": 1000000000
	pairValue        = "65 56616c7565 47 2f697066732f78"                                     // "Value": bytes "/ipfs/x"
	pairSequence     = "68 53657175656e6365 03"                                              // "Sequence": 3
	pairValidity     = "68 56616c6964697479 56 323033302d30312d30325430333a30343a30352e365a" // "Validity": bytes "2030-01-02T03:04:05.6Z"
	pairValidityType = "6c 56616c69646974795479706500"                                       // "ValidityType": 0
	testValidity     = "2030-01-02T03:04:05.6Z"
)

var testEOL = time.Date(2030, 1, 2, 3, 4, 5, 600000000, time.UTC)

// cborMap returns the map of the given hex pairs.
func cborMap(t testing.TB, pairs ...string) []byte {
	t.Helper()
	if len(pairs) > 23 {
		t.Fatal("too many pairs")
	}
	return mustHex(t, fmt.Sprintf("%02x", 0xa0+len(pairs))+strings.Join(pairs, ""))
}

// goodData is the data document of the records that the tests alter.
func goodData(t testing.TB) []byte {
	return cborMap(t, pairTTL, pairValue, pairSequence, pairValidity, pairValidityType)
}

// pbBytes and pbVarint encode one protobuf field with protowire, the
// runtime boxo uses, independently of the codec under test.
func pbBytes(num protowire.Number, b []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
}

func pbVarint(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func sign(t testing.TB, key peer.PrivateKey, msg []byte) []byte {
	t.Helper()
	sig, err := key.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// v2Only returns a V2-only record of data signed by key.
func v2Only(t testing.TB, key peer.PrivateKey, data []byte) []byte {
	t.Helper()
	return bytes.Join([][]byte{
		pbBytes(8, sign(t, key, append([]byte("ipns-signature:"), data...))),
		pbBytes(9, data),
	}, nil)
}

// v1Fields are the legacy protobuf fields of a V1+V2 record; nil fields
// are left out.
type v1Fields struct {
	value, sig1, validity []byte
	validityType          *uint64
	seq, ttl              *uint64
}

func u64(v uint64) *uint64 { return &v }

// goodV1 returns the V1 fields matching goodData.
func goodV1(t testing.TB, key peer.PrivateKey) v1Fields {
	return v1Fields{
		value:        []byte("/ipfs/x"),
		sig1:         sign(t, key, []byte("/ipfs/x"+testValidity+"EOL")),
		validity:     []byte(testValidity),
		validityType: u64(0),
		seq:          u64(3),
		ttl:          u64(1e9),
	}
}

// v1v2 returns a record with the V1 fields f and data signed by key.
func v1v2(t testing.TB, key peer.PrivateKey, data []byte, f v1Fields) []byte {
	t.Helper()
	var b []byte
	if f.value != nil {
		b = append(b, pbBytes(1, f.value)...)
	}
	if f.sig1 != nil {
		b = append(b, pbBytes(2, f.sig1)...)
	}
	if f.validityType != nil {
		b = append(b, pbVarint(3, *f.validityType)...)
	}
	if f.validity != nil {
		b = append(b, pbBytes(4, f.validity)...)
	}
	if f.seq != nil {
		b = append(b, pbVarint(5, *f.seq)...)
	}
	if f.ttl != nil {
		b = append(b, pbVarint(6, *f.ttl)...)
	}
	return append(b, v2Only(t, key, data)...)
}

// TestValidate covers each check of Validate with records made field by
// field: a valid base record and one alteration per case.
func TestValidate(t *testing.T) {
	key, other := testKey(t, 2), testKey(t, 3)
	name := peer.IDFromPublicKey(key.Public())
	ecKey, err := peer.GenerateECDSA(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecName := peer.IDFromPublicKey(ecKey.Public())
	ecPub := peer.MarshalPublicKey(ecKey.Public())
	good := goodData(t)
	withData := func(pairs ...string) func(t testing.TB) []byte {
		return func(t testing.TB) []byte { return v2Only(t, key, cborMap(t, pairs...)) }
	}
	withV1 := func(alter func(*v1Fields)) func(t testing.TB) []byte {
		return func(t testing.TB) []byte {
			f := goodV1(t, key)
			alter(&f)
			return v1v2(t, key, good, f)
		}
	}
	tests := []struct {
		name    string
		id      peer.ID // name if empty
		record  func(t testing.TB) []byte
		now     time.Time // testNow if zero
		wantErr error     // nil: valid, with the fields of goodData
	}{
		{name: "V2-only", record: func(t testing.TB) []byte { return v2Only(t, key, good) }},
		{name: "V1+V2", record: withV1(func(*v1Fields) {})},
		{name: "valid at its EOL", record: withV1(func(*v1Fields) {}), now: testEOL},
		{name: "expired", record: withV1(func(*v1Fields) {}), now: testEOL.Add(time.Nanosecond), wantErr: ErrExpired},
		{
			name: "unknown fields and groups are skipped",
			record: func(t testing.TB) []byte {
				b := v2Only(t, key, good)
				b = append(b, pbBytes(100, []byte("x"))...)
				b = append(b, pbVarint(8, 1)...) // signatureV2 with the wrong wire type
				return append(b, protowire.AppendTag(protowire.AppendTag(nil, 20, protowire.StartGroupType), 20, protowire.EndGroupType)...)
			},
		},
		{
			name: "the last of repeated fields counts",
			record: func(t testing.TB) []byte {
				return append(pbBytes(9, []byte("junk")), v2Only(t, key, good)...)
			},
		},
		{
			name: "RSA-style name with its key in the record", id: ecName,
			record: func(t testing.TB) []byte { return append(pbBytes(7, ecPub), v2Only(t, ecKey, good)...) },
		},
		{
			name: "inlined key also in the record",
			record: func(t testing.TB) []byte {
				return append(pbBytes(7, peer.MarshalPublicKey(key.Public())), v2Only(t, key, good)...)
			},
		},

		// Size, before anything is parsed.
		{name: "over 10 KiB", record: func(testing.TB) []byte { return make([]byte, MaxRecordSize+1) }, wantErr: ErrTooLarge},
		{
			name: "padded to 10 KiB exactly",
			record: func(t testing.TB) []byte {
				b := v2Only(t, key, good)
				pad := MaxRecordSize - len(b) - 4 // 4: key and 3-byte length
				return append(b, pbBytes(99, make([]byte, pad))...)
			},
		},
		{
			name: "padded to 10 KiB and one byte",
			record: func(t testing.TB) []byte {
				b := v2Only(t, key, good)
				return append(b, pbBytes(99, make([]byte, MaxRecordSize-len(b)-3))...)
			},
			wantErr: ErrTooLarge,
		},

		// Protobuf.
		{name: "empty", record: func(testing.TB) []byte { return nil }, wantErr: ErrV1Only},
		{name: "truncated field", record: func(testing.TB) []byte { return []byte{0x4a, 0x05, 0xa0} }, wantErr: ErrMalformed},
		{name: "field number 0", record: func(testing.TB) []byte { return []byte{0x02, 0x00} }, wantErr: ErrMalformed},
		{
			name: "V1-only",
			record: func(t testing.TB) []byte {
				f := goodV1(t, key)
				return v1v2(t, key, good, f)[:len(v1v2(t, key, good, f))-len(v2Only(t, key, good))]
			},
			wantErr: ErrV1Only,
		},
		{name: "no signatureV2", record: func(testing.TB) []byte { return pbBytes(9, good) }, wantErr: ErrSignature},
		{
			name:    "empty signatureV2",
			record:  func(testing.TB) []byte { return append(pbBytes(8, nil), pbBytes(9, good)...) },
			wantErr: ErrSignature,
		},

		// Keys and signatures.
		{
			name: "bad signatureV2",
			record: func(t testing.TB) []byte {
				b := v2Only(t, key, good)
				b[5] ^= 1 // in the signature
				return b
			},
			wantErr: ErrSignature,
		},
		{name: "signed by another key", record: func(t testing.TB) []byte { return v2Only(t, other, good) }, wantErr: ErrSignature},
		{
			name:    "signature over data without the prefix",
			record:  func(t testing.TB) []byte { return append(pbBytes(8, sign(t, key, good)), pbBytes(9, good)...) },
			wantErr: ErrSignature,
		},
		{
			name: "pubKey of another key",
			record: func(t testing.TB) []byte {
				return append(pbBytes(7, peer.MarshalPublicKey(other.Public())), v2Only(t, other, good)...)
			},
			wantErr: ErrPublicKey,
		},
		{
			name:    "pubKey not a key",
			record:  func(t testing.TB) []byte { return append(pbBytes(7, []byte{1, 2, 3}), v2Only(t, key, good)...) },
			wantErr: ErrPublicKey,
		},
		{
			name: "hashed name without pubKey", id: ecName,
			record:  func(t testing.TB) []byte { return v2Only(t, ecKey, good) },
			wantErr: ErrPublicKey,
		},
		{name: "name not a peer ID", id: "garbage", record: func(t testing.TB) []byte { return v2Only(t, key, good) }, wantErr: ErrInvalidName},

		// V1 fields against the data.
		{name: "V1 value differs", record: withV1(func(f *v1Fields) { f.value = []byte("/ipfs/y") }), wantErr: ErrMismatch},
		{name: "V1 value absent", record: withV1(func(f *v1Fields) { f.value = nil }), wantErr: ErrMismatch},
		{name: "V1 validity differs", record: withV1(func(f *v1Fields) { f.validity = []byte("2030-01-02T03:04:05.7Z") }), wantErr: ErrMismatch},
		{
			name:    "V1 validity the same instant, spelled differently",
			record:  withV1(func(f *v1Fields) { f.validity = []byte("2030-01-02T03:04:05.600Z") }),
			wantErr: ErrMismatch,
		},
		{name: "V1 validityType 1", record: withV1(func(f *v1Fields) { f.validityType = u64(1) }), wantErr: ErrMismatch},
		{name: "V1 sequence differs", record: withV1(func(f *v1Fields) { f.seq = u64(4) }), wantErr: ErrMismatch},
		{name: "V1 sequence absent", record: withV1(func(f *v1Fields) { f.seq = nil }), wantErr: ErrMismatch},
		{name: "V1 ttl differs", record: withV1(func(f *v1Fields) { f.ttl = u64(2e9) }), wantErr: ErrMismatch},
		{name: "V1 fields with a bad signatureV1", record: withV1(func(f *v1Fields) { f.sig1 = []byte("x") })},
		{
			// boxo compares only when signatureV1 or value is set: the
			// other copies are of no use to a V1 reader without them.
			name:   "V1 copies without signatureV1 and value are not compared",
			record: withV1(func(f *v1Fields) { f.value, f.sig1, f.seq, f.ttl = nil, nil, u64(99), u64(99) }),
		},
		{
			name:    "signatureV1 alone makes the copies compared",
			record:  withV1(func(f *v1Fields) { f.value, f.validity, f.validityType, f.seq, f.ttl = nil, nil, nil, nil, nil }),
			wantErr: ErrMismatch,
		},

		// The data document.
		{name: "data not CBOR", record: func(t testing.TB) []byte { return v2Only(t, key, []byte{0xff}) }, wantErr: ErrMalformed},
		{name: "data an array", record: func(t testing.TB) []byte { return v2Only(t, key, []byte{0x80}) }, wantErr: ErrMalformed},
		{name: "data null", record: func(t testing.TB) []byte { return v2Only(t, key, []byte{0xf6}) }, wantErr: ErrMalformed},
		{name: "no TTL", record: withData(pairValue, pairSequence, pairValidity, pairValidityType), wantErr: ErrMalformed},
		{name: "no Value", record: withData(pairTTL, pairSequence, pairValidity, pairValidityType), wantErr: ErrMalformed},
		{name: "no Sequence", record: withData(pairTTL, pairValue, pairValidity, pairValidityType), wantErr: ErrMalformed},
		{name: "no Validity", record: withData(pairTTL, pairValue, pairSequence, pairValidityType), wantErr: ErrMalformed},
		{name: "no ValidityType", record: withData(pairTTL, pairValue, pairSequence, pairValidity), wantErr: ErrMalformed},
		{name: "Value a text string", record: withData(pairTTL, "65 56616c7565 67 2f697066732f78", pairSequence, pairValidity, pairValidityType), wantErr: ErrMalformed},
		{name: "Validity a text string", record: withData(pairTTL, pairValue, pairSequence, "68 56616c6964697479 76 323033302d30312d30325430333a30343a30352e365a", pairValidityType), wantErr: ErrMalformed},
		{name: "Validity not RFC 3339", record: withData(pairTTL, pairValue, pairSequence, "68 56616c6964697479 43 323033", pairValidityType), wantErr: ErrMalformed},
		{name: "ValidityType 1", record: withData(pairTTL, pairValue, pairSequence, pairValidity, "6c 56616c6964697479547970 6501"), wantErr: ErrValidityType},
		{name: "ValidityType -1", record: withData(pairTTL, pairValue, pairSequence, pairValidity, "6c 56616c6964697479547970 6520"), wantErr: ErrValidityType},
		{name: "ValidityType bytes", record: withData(pairTTL, pairValue, pairSequence, pairValidity, "6c 56616c6964697479547970 65 4100"), wantErr: ErrMalformed},
		{name: "Sequence negative", record: withData(pairTTL, pairValue, "68 53657175656e6365 20", pairValidity, pairValidityType), wantErr: ErrMalformed},
		{name: "Sequence a float", record: withData(pairTTL, pairValue, "68 53657175656e6365 fb4008000000000000", pairValidity, pairValidityType), wantErr: ErrMalformed},
		{name: "TTL negative", record: withData("63 54544c 20", pairValue, pairSequence, pairValidity, pairValidityType), wantErr: ErrMalformed},
		{name: "TTL over int64", record: withData("63 54544c 1b8000000000000000", pairValue, pairSequence, pairValidity, pairValidityType), wantErr: ErrMalformed},
		{name: "duplicate key", record: withData(pairTTL, pairValue, pairSequence, pairValidity, pairValidityType, pairTTL), wantErr: ErrMalformed},
		{
			name: "indefinite-length map",
			record: func(t testing.TB) []byte {
				return v2Only(t, key, mustHex(t, "bf"+pairTTL+pairValue+pairSequence+pairValidity+pairValidityType+"ff"))
			},
			wantErr: ErrMalformed,
		},
		{
			name:    "indefinite-length byte string",
			record:  withData(pairTTL, "65 56616c7565 5f 43 2f6970 44 66732f78 ff", pairSequence, pairValidity, pairValidityType),
			wantErr: ErrMalformed,
		},
		{name: "trailing bytes", record: func(t testing.TB) []byte { return v2Only(t, key, append(good, 0x00)) }, wantErr: ErrMalformed},
		{name: "byte-string key", record: withData(pairTTL, pairValue, pairSequence, pairValidity, pairValidityType, "41 5f 00"), wantErr: ErrMalformed},

		// Extra keys: anything DAG-CBOR allows, nothing else.
		{
			name: "extra keys",
			record: withData(pairTTL, pairValue, pairSequence, pairValidity, pairValidityType,
				"62 5f6c d82a 45 0001020304",                              // "_l": a link
				"62 5f6d a1 6161 86 01 20 fb3ff8000000000000 f6 f5 6173"), // "_m": {"a": [1, -1, 1.5, null, true, "s"]}
		},
		{name: "extra time tag", record: withData(pairTTL, pairValue, pairSequence, pairValidity, pairValidityType, "62 5f74 c1 00"), wantErr: ErrMalformed},
		{name: "extra bignum", record: withData(pairTTL, pairValue, pairSequence, pairValidity, pairValidityType, "62 5f74 c2 4101"), wantErr: ErrMalformed},
		{name: "extra unknown tag", record: withData(pairTTL, pairValue, pairSequence, pairValidity, pairValidityType, "62 5f74 d864 00"), wantErr: ErrMalformed},
		{name: "extra link without 0x00", record: withData(pairTTL, pairValue, pairSequence, pairValidity, pairValidityType, "62 5f74 d82a 4101"), wantErr: ErrMalformed},
		{name: "extra link on text", record: withData(pairTTL, pairValue, pairSequence, pairValidity, pairValidityType, "62 5f74 d82a 6100"), wantErr: ErrMalformed},
		{name: "extra undefined", record: withData(pairTTL, pairValue, pairSequence, pairValidity, pairValidityType, "62 5f74 f7"), wantErr: ErrMalformed},
		{name: "extra simple value", record: withData(pairTTL, pairValue, pairSequence, pairValidity, pairValidityType, "62 5f74 f0"), wantErr: ErrMalformed},
		{name: "extra NaN", record: withData(pairTTL, pairValue, pairSequence, pairValidity, pairValidityType, "62 5f74 f97e00"), wantErr: ErrMalformed},
		{name: "extra integer map key", record: withData(pairTTL, pairValue, pairSequence, pairValidity, pairValidityType, "62 5f74 a1 01 01"), wantErr: ErrMalformed},
		{name: "extra invalid UTF-8", record: withData(pairTTL, pairValue, pairSequence, pairValidity, pairValidityType, "62 5f74 61 ff"), wantErr: ErrMalformed},
		{
			name: "extra nested too deep",
			record: withData(pairTTL, pairValue, pairSequence, pairValidity, pairValidityType,
				"62 5f74 "+strings.Repeat("81", 40)+"00"),
			wantErr: ErrMalformed,
		},

		// Like boxo, the canonical form is not required of what was
		// signed: keys out of order, a non-minimal integer.
		{name: "keys out of order", record: withData(pairValidityType, pairValidity, pairSequence, pairValue, pairTTL)},
		{name: "non-minimal integer", record: withData(pairTTL, pairValue, "68 53657175656e6365 1803", pairValidity, pairValidityType)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, now := tt.id, tt.now
			if id == "" {
				id = name
			}
			if now.IsZero() {
				now = testNow
			}
			b := tt.record(t)
			r, err := Validate(id, b, now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Validate: %v, want %v", err, tt.wantErr)
				}
				if r != nil {
					t.Fatal("a record with the error")
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if string(r.Value) != "/ipfs/x" || r.Sequence != 3 || r.TTL != time.Second || !r.Validity.Equal(testEOL) || !bytes.Equal(r.Raw, b) {
				t.Fatalf("got %+v", r)
			}
			// Unmarshal agrees and does not alias its input.
			u, err := Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			clear(b)
			if string(u.Value) != "/ipfs/x" || string(r.Value) != "/ipfs/x" || u.Sequence != 3 {
				t.Fatalf("Unmarshal: %+v", u)
			}
		})
	}
}

// TestCreate signs records with each key type and validates them.
func TestCreate(t *testing.T) {
	ed := testKey(t, 4)
	secp, err := peer.GenerateSecp256k1(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := peer.GenerateECDSA(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa, err := peer.GenerateRSA(rand.Reader, peer.MinRSABits)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		key    peer.PrivateKey
		pubKey bool
		value  []byte
		seq    uint64
		ttl    time.Duration
		eol    time.Time
	}{
		{name: "Ed25519", key: ed, value: []byte("/ipfs/bafkqaaa"), eol: testEOL, ttl: DefaultTTL},
		{name: "secp256k1", key: secp, value: []byte("/ipns/k51qzi5uqu5dit2ku9mutlfgwyz8u730on38kd10m97m36bjt66my99hb6103f"), seq: 1, eol: testEOL},
		{name: "ECDSA", key: ec, pubKey: true, value: []byte("/ipfs/x"), seq: 1 << 40, eol: testEOL, ttl: time.Nanosecond},
		{name: "RSA", key: rsa, pubKey: true, value: []byte("/ipfs/x"), seq: math.MaxInt64, eol: testEOL, ttl: math.MaxInt64},
		{name: "empty value, zero TTL", key: ed, eol: testEOL},
		{name: "binary value, local time", key: ed, value: []byte{0, 1, 0xff}, eol: testEOL.In(time.FixedZone("x", 3600))},
		{name: "nanoseconds", key: ed, value: []byte("/ipfs/x"), eol: testNow.Add(time.Nanosecond)},
		{name: "largest value", key: ed, value: bytes.Repeat([]byte("a"), 5000), eol: testEOL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Create(tt.key, tt.value, tt.seq, tt.eol, tt.ttl)
			if err != nil {
				t.Fatal(err)
			}
			name := peer.IDFromPublicKey(tt.key.Public())
			r, err := Validate(name, b, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r.Value, tt.value) || r.Sequence != tt.seq || r.TTL != tt.ttl || !r.Validity.Equal(tt.eol) ||
				r.Validity.Location() != time.UTC || !bytes.Equal(r.Raw, b) || (r.PublicKey != nil) != tt.pubKey {
				t.Fatalf("got %+v", r)
			}
			if tt.pubKey && !peer.KeyEqual(r.PublicKey, tt.key.Public()) {
				t.Fatal("wrong key in the record")
			}
			// The V1 fields are there, and signatureV1 verifies.
			if !bytes.Equal(r.e.value, tt.value) || r.e.sequence != tt.seq || r.e.ttl != uint64(tt.ttl) {
				t.Fatalf("V1 fields %+v", r.e)
			}
			if err := tt.key.Public().Verify(append(append(bytes.Clone(tt.value), r.e.validity...), "EOL"...), r.e.signatureV1); err != nil {
				t.Fatalf("signatureV1: %v", err)
			}
			// Signed for one key, not valid for another name.
			if _, err := Validate(peer.IDFromPublicKey(testKey(t, 9).Public()), b, testNow); err == nil {
				t.Fatal("valid under another name")
			}
		})
	}
}

func TestCreateRefuses(t *testing.T) {
	key := testKey(t, 5)
	tests := []struct {
		name    string
		key     peer.PrivateKey
		value   []byte
		seq     uint64
		eol     time.Time
		ttl     time.Duration
		wantErr error
	}{
		{name: "nil key", eol: testEOL},
		{name: "sequence over int64", key: key, seq: math.MaxInt64 + 1, eol: testEOL},
		{name: "negative TTL", key: key, eol: testEOL, ttl: -1},
		{name: "year 10000", key: key, eol: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "year -1", key: key, eol: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "over 10 KiB", key: key, value: make([]byte, 5200), eol: testEOL, wantErr: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Create(tt.key, tt.value, tt.seq, tt.eol, tt.ttl)
			if err == nil || b != nil {
				t.Fatalf("Create: %x, %v", b, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Create: %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	key := testKey(t, 6)
	rec := func(value string, seq uint64, eol time.Time) *Record {
		t.Helper()
		b, err := Create(key, []byte(value), seq, eol, DefaultTTL)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	later := testEOL.Add(time.Nanosecond)
	a := rec("/ipfs/a", 1, testEOL)
	noV2, err := Unmarshal(pbBytes(9, goodData(t)))
	if err != nil {
		t.Fatal(err)
	}
	noV2.Sequence = 100
	tests := []struct {
		name string
		a, b *Record
		want int
	}{
		{name: "higher sequence", a: rec("/ipfs/a", 2, testEOL), b: a, want: 1},
		{name: "higher sequence, earlier validity", a: rec("/ipfs/a", 2, testEOL), b: rec("/ipfs/a", 1, later), want: 1},
		{name: "lower sequence", a: a, b: rec("/ipfs/a", 2, testEOL), want: -1},
		{name: "later validity", a: rec("/ipfs/a", 1, later), b: a, want: 1},
		{name: "earlier validity", a: a, b: rec("/ipfs/a", 1, later), want: -1},
		{name: "same bytes", a: a, b: rec("/ipfs/a", 1, testEOL), want: 0},
		{name: "signatureV2 beats its absence", a: a, b: noV2, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Compare(tt.a, tt.b); got != tt.want {
				t.Fatalf("Compare = %d, want %d", got, tt.want)
			}
			if got := Compare(tt.b, tt.a); got != -tt.want {
				t.Fatalf("reversed Compare = %d, want %d", got, -tt.want)
			}
		})
	}
	// Same sequence and validity: the larger encoding wins, whichever
	// the order.
	x, y := rec("/ipfs/x", 1, testEOL), rec("/ipfs/y", 1, testEOL)
	want := bytes.Compare(x.Raw, y.Raw)
	if want == 0 || Compare(x, y) != want || Compare(y, x) != -want {
		t.Fatalf("tie: Compare %d, %d, bytes %d", Compare(x, y), Compare(y, x), want)
	}
}

func TestSelect(t *testing.T) {
	key := testKey(t, 7)
	name := peer.IDFromPublicKey(key.Public())
	create := func(seq uint64, eol time.Time) []byte {
		t.Helper()
		b, err := Create(key, []byte("/ipfs/x"), seq, eol, DefaultTTL)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	old, cur := create(1, testEOL), create(2, testEOL)
	expired := create(9, testNow.Add(-time.Second))
	c, err := Unmarshal(create(10, testEOL))
	if err != nil {
		t.Fatal(err)
	}
	c.e.signatureV2[0] ^= 1 // it aliases Raw
	corrupt := c.Raw
	foreign, err := Create(testKey(t, 8), []byte("/ipfs/x"), 11, testEOL, DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		records [][]byte
		want    int
		wantErr error
	}{
		{name: "one", records: [][]byte{cur}, want: 0},
		{name: "newest", records: [][]byte{old, cur}, want: 1},
		{name: "newest first", records: [][]byte{cur, old}, want: 0},
		{name: "invalid ones passed over", records: [][]byte{expired, corrupt, old, foreign, nil, cur, {0xff}}, want: 5},
		{name: "first of equals", records: [][]byte{old, cur, cur}, want: 1},
		{name: "none", wantErr: ErrNoValidRecord},
		{name: "none valid", records: [][]byte{expired, corrupt}, wantErr: ErrSignature},
		{name: "none valid, last expired", records: [][]byte{corrupt, expired}, wantErr: ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Select(name, tt.records, testNow)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrNoValidRecord) || got != -1 {
					t.Fatalf("Select = %d, %v, want -1, %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Select = %d, %v, want %d", got, err, tt.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	v := loadVector(t, "spec-v2.txt")
	want := "2f69706e732f" + "0024080112" + "20" // "/ipns/", identity multihash of a 36-byte Ed25519 key protobuf
	if got := fmt.Sprintf("%x", Key(v.name)); !strings.HasPrefix(got, want) || len(got) != len(want)+64 {
		t.Fatalf("Key = %s", got)
	}
	if !bytes.Equal(Key(v.name), append([]byte("/ipns/"), v.name...)) {
		t.Fatal("Key is not /ipns/ and the binary ID")
	}
}

func TestParsePath(t *testing.T) {
	ed := loadVector(t, "spec-v2.txt").name
	rsa := loadVector(t, "conformance-rsa.txt").name
	tests := []struct {
		path string
		want peer.ID // "" for an error
	}{
		{path: "/ipns/k51qzi5uqu5dit2ku9mutlfgwyz8u730on38kd10m97m36bjt66my99hb6103f", want: ed},
		{path: "/ipns/K51QZI5UQU5DIT2KU9MUTLFGWYZ8U730ON38KD10M97M36BJT66MY99HB6103F", want: ed},
		{path: "/ipns/" + ed.String(), want: ed},
		{path: "/ipns/" + ed.CID(), want: ed},
		{path: "/ipns/QmVujd5Vb7moysJj8itnGufN7MEtPRCNHkKpNuA4onsRa3", want: rsa},
		{path: "/ipns/" + rsa.CID(), want: rsa},
		{path: "k51qzi5uqu5dit2ku9mutlfgwyz8u730on38kd10m97m36bjt66my99hb6103f"},
		{path: "/ipfs/k51qzi5uqu5dit2ku9mutlfgwyz8u730on38kd10m97m36bjt66my99hb6103f"},
		{path: "/ipns/"},
		{path: "/ipns/example.com"},
		{path: "/ipns/k51qzi5uqu5dit2ku9mutlfgwyz8u730on38kd10m97m36bjt66my99hb6103f/"},
		{path: "/ipns/k51qzi5uqu5dit2ku9mutlfgwyz8u730on38kd10m97m36bjt66my99hb6103f/a"},
		{path: "/ipns/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"}, // a dag-pb CID
		{path: "/ipns/" + strings.Repeat("k", 10000)},
	}
	for _, tt := range tests {
		t.Run(tt.path[:min(len(tt.path), 40)], func(t *testing.T) {
			got, err := ParsePath(tt.path)
			if tt.want == "" {
				if !errors.Is(err, ErrInvalidName) || got != "" {
					t.Fatalf("ParsePath = %v, %v, want ErrInvalidName", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParsePath = %v, %v, want %v", got, err, tt.want)
			}
		})
	}
}
