package ipns

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mote-p2p/mote/peer"
)

// testNow is the instant the vectors are checked at: before the EOL of
// the Kubo records in testdata (made 2026-12-02 with lifetimes of 24 and
// 48 hours), long before the spec's (2123).
var testNow = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// vector is one file of testdata: a record, the name it belongs to, and
// for the records made here with Kubo, the private key that signed it.
type vector struct {
	name    peer.ID
	record  []byte
	privKey []byte
}

// loadVector reads testdata/file: "name:", "record:" and optional
// "privkey:" lines, the latter two in hex; lines starting with '#' are
// comments saying where the vector comes from.
func loadVector(t testing.TB, file string) vector {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var v vector
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		line := s.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		k, val, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("%s: bad line %q", file, line)
		}
		switch k {
		case "name":
			if v.name, err = peer.Decode(val); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
		case "record":
			v.record = mustHex(t, val)
		case "privkey":
			v.privKey = mustHex(t, val)
		default:
			t.Fatalf("%s: unknown field %q", file, k)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if v.name == "" || v.record == nil {
		t.Fatalf("%s: no name or record", file)
	}
	return v
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVectors validates the records of testdata: the spec's six test
// vectors, two Kubo records of the gateway conformance suite, and four
// made with Kubo v0.43.0 for this package.
func TestVectors(t *testing.T) {
	specEOL := time.Date(2123, 8, 14, 12, 17, 3, 694052000, time.UTC)
	tests := []struct {
		file    string
		wantErr error
		value   string
		seq     uint64
		ttl     time.Duration
		eol     time.Time
		pubKey  bool // the record carries its key
		sig1    bool // signatureV1 verifies
	}{
		{file: "spec-v1.txt", wantErr: ErrV1Only},
		{file: "spec-v1-v2.txt", sig1: true, value: "/ipfs/bafkqaddwgevxmmraojswg33smq", ttl: 30 * time.Minute, eol: specEOL},
		{file: "spec-v1-v2-broken-v1-value.txt", wantErr: ErrMismatch},
		{file: "spec-v1-v2-broken-signature-v2.txt", wantErr: ErrSignature},
		{file: "spec-v1-v2-broken-signature-v1.txt", value: "/ipfs/bafkqahtwgevxmmrao5uxi2bamjzg623fnyqhg2lhnzqxi5lsmuqhmmi", ttl: 30 * time.Minute, eol: specEOL},
		{file: "spec-v2.txt", value: "/ipfs/bafkqadtwgiww63tmpeqhezldn5zgi", ttl: 30 * time.Minute, eol: specEOL},
		{
			file: "conformance-ed25519.txt", sig1: true, value: "/ipfs/bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am",
			ttl: 0x2bcb830004630000, eol: time.Date(2123, 4, 12, 13, 44, 59, 801728000, time.UTC),
		},
		{
			file: "conformance-rsa.txt", sig1: true, value: "/ipfs/bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am",
			ttl: 0x2bcb830004630000, eol: time.Date(2123, 4, 12, 13, 43, 57, 238038000, time.UTC), pubKey: true,
		},
		{
			file: "kubo-ed25519.txt", sig1: true, value: "/ipfs/bafkqaaa", ttl: DefaultTTL,
			eol: time.Date(2026, 12, 4, 5, 58, 8, 390220764, time.UTC),
		},
		{
			file: "kubo-ed25519-v2.txt", value: "/ipfs/bafkqaaa", seq: 1, ttl: 30 * time.Second,
			eol: time.Date(2026, 12, 3, 5, 59, 1, 398081557, time.UTC),
		},
		{
			file: "kubo-rsa.txt", sig1: true, value: "/ipfs/bafkqaaa", ttl: DefaultTTL,
			eol: time.Date(2026, 12, 4, 5, 58, 8, 434288771, time.UTC), pubKey: true,
		},
		{
			file: "kubo-secp256k1.txt", sig1: true, value: "/ipfs/bafkqaaa", seq: 7, ttl: time.Hour,
			eol: time.Date(2026, 12, 4, 5, 58, 8, 471880178, time.UTC),
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			v := loadVector(t, tt.file)
			r, err := Validate(v.name, v.record, testNow)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Validate: %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if string(r.Value) != tt.value || r.Sequence != tt.seq || r.TTL != tt.ttl || !r.Validity.Equal(tt.eol) ||
				(r.PublicKey != nil) != tt.pubKey || !bytes.Equal(r.Raw, v.record) {
				t.Fatalf("got value %q seq %d ttl %v eol %v key %v raw %x", r.Value, r.Sequence, r.TTL, r.Validity, r.PublicKey != nil, r.Raw)
			}
			if r.PublicKey != nil && !v.name.MatchesPublicKey(r.PublicKey) {
				t.Fatal("record key is not the name's")
			}
			// signatureV1, which validation ignores, is over value ‖
			// validity ‖ "EOL" in the records of boxo and Kubo.
			pub := r.PublicKey
			if pub == nil {
				if pub, err = v.name.PublicKey(); err != nil {
					t.Fatal(err)
				}
			}
			if err := pub.Verify(signedV1(r.Value, r.validity), r.e.signatureV1); (err == nil) != tt.sig1 {
				t.Fatalf("signatureV1 verifies: %v, want %v", err == nil, tt.sig1)
			}
			// Valid up to its EOL included, expired one nanosecond later.
			if _, err := Validate(v.name, v.record, tt.eol); err != nil {
				t.Fatalf("at its EOL: %v", err)
			}
			if _, err := Validate(v.name, v.record, tt.eol.Add(time.Nanosecond)); !errors.Is(err, ErrExpired) {
				t.Fatalf("after its EOL: %v, want ErrExpired", err)
			}
			// A record of one name is not one of another.
			other := loadVector(t, "spec-v2.txt").name
			if tt.file == "spec-v2.txt" {
				other = loadVector(t, "spec-v1-v2.txt").name
			}
			if _, err := Validate(other, v.record, testNow); !errors.Is(err, ErrSignature) && !errors.Is(err, ErrPublicKey) {
				t.Fatalf("under another name: %v, want ErrSignature or ErrPublicKey", err)
			}
		})
	}
}

// TestCreateLikeKubo signs, with the keys Kubo signed them with, the
// fields of the V1+V2 records Kubo made, and expects Kubo's bytes: the
// three signature schemes are deterministic (Ed25519, RSA PKCS#1 v1.5,
// secp256k1 with RFC 6979 nonces), so any difference in the protobuf, the
// DAG-CBOR or the signed bytes shows.
func TestCreateLikeKubo(t *testing.T) {
	for _, file := range []string{"kubo-ed25519.txt", "kubo-rsa.txt", "kubo-secp256k1.txt"} {
		t.Run(file, func(t *testing.T) {
			v := loadVector(t, file)
			key, err := peer.UnmarshalPrivateKey(v.privKey)
			if err != nil {
				t.Fatal(err)
			}
			if peer.IDFromPublicKey(key.Public()) != v.name {
				t.Fatal("key is not the name's")
			}
			r, err := Unmarshal(v.record)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Create(key, r.Value, r.Sequence, r.Validity, r.TTL)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, v.record) {
				t.Fatalf("Create:\n%x\nKubo:\n%x", got, v.record)
			}
		})
	}
}

// TestHandVector builds a record byte by byte from the spec's rules,
// with the signatures made by crypto/ed25519 over the byte strings the
// spec says to sign, and expects Create to write the same bytes.
func TestHandVector(t *testing.T) {
	key := testKey(t, 1)
	// data: a DAG-CBOR map of 5 pairs, keys sorted by length then bytes.
	cborData := mustHex(t, ""+
		"a5"+ // map(5)
		"63"+"54544c"+"1b0000004e76c3ea00"+ // "TTL": 337000000000 (8-byte uint)
		"65"+"56616c7565"+"4e"+"2f697066732f6261666b71616161"+ // "Value": bytes(14) "/ipfs/bafkqaaa"
		"68"+"53657175656e6365"+"182a"+ // "Sequence": 42
		"68"+"56616c6964697479"+"56"+"323033302d30312d30325430333a30343a30352e365a"+ // "Validity": bytes(22) "2030-01-02T03:04:05.6Z"
		"6c"+"56616c69646974795479706500") // "ValidityType": 0
	value := []byte("/ipfs/bafkqaaa")
	validity := []byte("2030-01-02T03:04:05.6Z")
	sig2, err := key.Sign(append([]byte("ipns-signature:"), cborData...))
	if err != nil {
		t.Fatal(err)
	}
	// signatureV1 ends with the validity type's protobuf enum name, as
	// boxo prints it, not with the spec's "string(validityType)".
	sig1, err := key.Sign(append(append(append([]byte{}, value...), validity...), "EOL"...))
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	want = append(want, 0x0a, byte(len(value)))
	want = append(want, value...)
	want = append(want, 0x12, 64)
	want = append(want, sig1...)
	want = append(want, 0x18, 0x00) // validityType EOL, present
	want = append(want, 0x22, byte(len(validity)))
	want = append(want, validity...)
	want = append(want, 0x28, 42)                                 // sequence
	want = append(want, 0x30, 0x80, 0xd4, 0x8f, 0xb6, 0xe7, 0x09) // ttl 337000000000
	// No pubKey (field 7): the Ed25519 name inlines the key.
	want = append(want, 0x42, 64)
	want = append(want, sig2...)
	want = append(want, 0x4a, byte(len(cborData)))
	want = append(want, cborData...)

	got, err := Create(key, value, 42, time.Date(2030, 1, 2, 3, 4, 5, 600000000, time.UTC), 337*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Create:\n%x\nby hand:\n%x", got, want)
	}
	r, err := Validate(peer.IDFromPublicKey(key.Public()), want, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Value) != string(value) || r.Sequence != 42 || r.TTL != 337*time.Second || r.PublicKey != nil {
		t.Fatalf("%+v", r)
	}
}

// testKey returns a fixed Ed25519 key, different for each seed byte.
func testKey(t testing.TB, seed byte) peer.PrivateKey {
	t.Helper()
	k, err := peer.GenerateEd25519(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
