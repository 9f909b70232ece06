package fuzz

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

	"github.com/mote-p2p/mote/ipns"
	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/peer"
	"google.golang.org/protobuf/encoding/protowire"
)

// ipnsNow is when fuzzed records are checked: before the EOL of every
// seed vector (the Kubo records of ipns/testdata end on 2026-12-03).
var ipnsNow = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// ipnsVector is one record of ipns/testdata and its name.
type ipnsVector struct {
	name   peer.ID
	record []byte
}

// ipnsVectors reads the test vectors of package ipns (see its
// record_test.go for the format: "name:" and "record:" lines).
func ipnsVectors(tb testing.TB) []ipnsVector {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "ipns", "testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no ipns test vectors: %v", err)
	}
	var out []ipnsVector
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			tb.Fatal(err)
		}
		var v ipnsVector
		s := bufio.NewScanner(f)
		s.Buffer(nil, 1<<20)
		for s.Scan() {
			k, val, _ := strings.Cut(s.Text(), ": ")
			switch k {
			case "name":
				v.name, err = peer.Decode(val)
			case "record":
				v.record, err = hex.DecodeString(val)
			}
			if err != nil {
				tb.Fatalf("%s: %v", file, err)
			}
		}
		f.Close()
		if s.Err() != nil || v.name == "" || v.record == nil {
			tb.Fatalf("%s: no name or record (%v)", file, s.Err())
		}
		out = append(out, v)
	}
	return out
}

// ipnsFuzzKey signs the records the fuzzer may alter in their unsigned
// parts (V1 fields, unknown fields) and still see validate.
func ipnsFuzzKey(tb testing.TB) peer.PrivateKey {
	k, err := peer.GenerateEd25519(bytes.NewReader(bytes.Repeat([]byte{0x42}, 32)))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// ipnsRef is a record as protowire reads it: the last value of each
// known field with its expected wire type, unknown fields skipped.
type ipnsRef struct {
	bytes  map[protowire.Number][]byte
	varint map[protowire.Number]uint64
}

// ipnsRefDecode reads b with protowire, the parser of the protobuf
// runtime boxo uses; depth reports how deep groups nested.
func ipnsRefDecode(b []byte) (ref ipnsRef, depth int, ok bool) {
	ref = ipnsRef{bytes: map[protowire.Number][]byte{}, varint: map[protowire.Number]uint64{}}
	ok = kadRefWalk(b, &depth, func(num protowire.Number, typ protowire.Type, v uint64, s []byte) bool {
		switch {
		case typ == protowire.VarintType && (num == 3 || num == 5 || num == 6):
			ref.varint[num] = v
		case typ == protowire.BytesType && num >= 1 && num <= 9 && num != 3 && num != 5 && num != 6:
			ref.bytes[num] = s
		}
		return true
	})
	return ref, depth, ok
}

// ipnsErrors are the sentinels every error of package ipns wraps one of.
var ipnsErrors = []error{
	ipns.ErrTooLarge, ipns.ErrMalformed, ipns.ErrV1Only, ipns.ErrValidityType, ipns.ErrPublicKey,
	ipns.ErrSignature, ipns.ErrMismatch, ipns.ErrExpired, ipns.ErrInvalidName,
}

func ipnsSentinel(err error) bool {
	for _, s := range ipnsErrors {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzIPNSRecord: Unmarshal and Validate never panic, refuse with a
// sentinel, agree with protowire on the protobuf, and what validates is
// consistent: the signature verifies over the bytes protowire finds, the
// V1 copies match, the record is valid exactly up to its EOL, and signing
// its fields again gives a record that validates the same.
func FuzzIPNSRecord(f *testing.F) {
	key := ipnsFuzzKey(f)
	names := []peer.ID{peer.IDFromPublicKey(key.Public())}
	for _, v := range ipnsVectors(f) {
		names = append(names, v.name)
		f.Add(uint8(len(names)-1), v.record)
	}
	for _, seq := range []uint64{0, 1, 1 << 40} {
		b, err := ipns.Create(key, []byte("/ipfs/bafkqaaa"), seq, ipnsNow.Add(time.Hour), ipns.DefaultTTL)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(0), b)
		// The V2-only form: signatureV2 and data alone.
		ref, _, _ := ipnsRefDecode(b)
		v2 := protowire.AppendBytes(protowire.AppendTag(nil, 8, protowire.BytesType), ref.bytes[8])
		f.Add(uint8(0), protowire.AppendBytes(protowire.AppendTag(v2, 9, protowire.BytesType), ref.bytes[9]))
	}
	f.Fuzz(func(t *testing.T, sel uint8, b []byte) {
		name := names[int(sel)%len(names)]
		u, errU := ipns.Unmarshal(b)
		r, errV := ipns.Validate(name, b, ipnsNow)
		for _, err := range []error{errU, errV} {
			if err != nil && !ipnsSentinel(err) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
		}
		if len(b) > ipns.MaxRecordSize && (!errors.Is(errU, ipns.ErrTooLarge) || !errors.Is(errV, ipns.ErrTooLarge)) {
			t.Fatalf("%d bytes: %v, %v", len(b), errU, errV)
		}
		if errU != nil && errV == nil {
			t.Fatalf("validates what does not unmarshal: %v", errU)
		}
		ref, depth, refOK := ipnsRefDecode(b)
		if errU == nil && !refOK {
			t.Fatal("unmarshals what protowire refuses")
		}
		if refOK && depth <= 32 && len(b) <= ipns.MaxRecordSize && len(ref.bytes[9]) > 0 && errors.Is(errU, ipns.ErrV1Only) {
			t.Fatal("V1-only, yet protowire finds data")
		}
		if errU == nil && !bytes.Equal(u.Raw, b) {
			t.Fatal("Raw is not the input")
		}
		if errV != nil {
			return
		}

		if !bytes.Equal(r.Value, u.Value) || r.Sequence != u.Sequence || r.TTL != u.TTL || !r.Validity.Equal(u.Validity) {
			t.Fatalf("Validate and Unmarshal differ: %+v, %+v", r, u)
		}
		if r.TTL < 0 {
			t.Fatalf("negative TTL %v", r.TTL)
		}
		// The signature, checked on what protowire reads.
		pub := r.PublicKey
		if pk := ref.bytes[7]; len(pk) > 0 {
			k, err := peer.UnmarshalPublicKey(pk)
			if err != nil || !name.MatchesPublicKey(k) || pub == nil || !peer.KeyEqual(k, pub) {
				t.Fatalf("pubKey field: %v", err)
			}
		} else if pub != nil {
			t.Fatal("a public key from nowhere")
		} else {
			var err error
			if pub, err = name.PublicKey(); err != nil {
				t.Fatalf("valid without a key: %v", err)
			}
		}
		if err := pub.Verify(append([]byte("ipns-signature:"), ref.bytes[9]...), ref.bytes[8]); err != nil {
			t.Fatalf("signatureV2 over protowire's data: %v", err)
		}
		// The V1 copies, when a V1 reader would use them.
		if len(ref.bytes[1]) > 0 || len(ref.bytes[2]) > 0 {
			if !bytes.Equal(ref.bytes[1], r.Value) || ref.varint[3] != 0 || ref.varint[5] != r.Sequence || ref.varint[6] != uint64(r.TTL) {
				t.Fatalf("V1 fields differ from the data: %+v", ref)
			}
			if v, err := time.Parse(time.RFC3339Nano, string(ref.bytes[4])); err != nil || !v.Equal(r.Validity) {
				t.Fatalf("V1 validity %q: %v", ref.bytes[4], err)
			}
		}
		if _, err := ipns.Validate(name, b, r.Validity); err != nil {
			t.Fatalf("at its EOL: %v", err)
		}
		if _, err := ipns.Validate(name, b, r.Validity.Add(time.Nanosecond)); !errors.Is(err, ipns.ErrExpired) {
			t.Fatalf("after its EOL: %v", err)
		}
		if c := ipns.Compare(r, u); c != 0 {
			t.Fatalf("Compare with itself: %d", c)
		}
		if i, err := ipns.Select(name, [][]byte{b, {0xff}, b}, ipnsNow); i != 0 || err != nil {
			t.Fatalf("Select = %d, %v", i, err)
		}
		// Signing the fields again: a record that validates the same.
		if name != names[0] {
			return
		}
		again, err := ipns.Create(key, r.Value, r.Sequence, r.Validity, r.TTL)
		if err != nil {
			if r.Sequence > 1<<63-1 || errors.Is(err, ipns.ErrTooLarge) {
				// Create refuses sequences boxo would write as negative
				// integers; a value near the size limit does not fit
				// twice, in the data and in the V1 copy.
				return
			}
			t.Fatalf("Create from a valid record: %v", err)
		}
		r2, err := ipns.Validate(name, again, ipnsNow)
		if err != nil {
			t.Fatalf("re-created record: %v", err)
		}
		if !bytes.Equal(r2.Value, r.Value) || r2.Sequence != r.Sequence || r2.TTL != r.TTL || !r2.Validity.Equal(r.Validity) {
			t.Fatalf("re-created record differs: %+v, %+v", r2, r)
		}
		if again2, _ := ipns.Create(key, r2.Value, r2.Sequence, r2.Validity, r2.TTL); !bytes.Equal(again, again2) {
			t.Fatal("Create is not deterministic")
		}
	})
}

// FuzzDHTRecordValidator: the Amino validator never panics, refuses
// unknown namespaces and invalid values with its sentinels, agrees with
// the namespace rules checked here independently, and Select picks a
// valid value whenever there is one.
func FuzzDHTRecordValidator(f *testing.F) {
	key := ipnsFuzzKey(f)
	id := peer.IDFromPublicKey(key.Public())
	pk := peer.MarshalPublicKey(key.Public())
	rec, err := ipns.Create(key, []byte("/ipfs/bafkqaaa"), 1, ipnsNow.Add(time.Hour), ipns.DefaultTTL)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("/pk/"+string(id), pk, []byte("x"))
	f.Add("/ipns/"+string(id), rec, rec)
	f.Add("/ipns/"+string(id), []byte{}, rec)
	for _, v := range ipnsVectors(f) {
		f.Add("/ipns/"+string(v.name), v.record, rec)
		f.Add("/pk/"+string(v.name), v.record, pk)
	}
	for _, k := range []string{"", "/", "/pk", "//pk/x", "/v/x", "/providers/x", "/ipns/"} {
		f.Add(k, pk, rec)
	}
	v := kademlia.DefaultValidator(func() time.Time { return ipnsNow })
	f.Fuzz(func(t *testing.T, k string, value, value2 []byte) {
		err := v.Validate(k, value)
		i, errS := v.Select(k, [][]byte{value, value2})

		var want error // what the rules say of value
		switch {
		case strings.HasPrefix(k, "/pk/"):
			if pub, err := peer.UnmarshalPublicKey(value); err != nil || string(peer.IDFromPublicKey(pub)) != k[len("/pk/"):] {
				want = kademlia.ErrInvalidRecord
			}
		case strings.HasPrefix(k, "/ipns/"):
			if _, err := ipns.Validate(peer.ID(k[len("/ipns/"):]), value, ipnsNow); err != nil {
				want = kademlia.ErrInvalidRecord
			}
		default:
			want = kademlia.ErrUnknownNamespace
		}
		if (err == nil) != (want == nil) || (want != nil && !errors.Is(err, want)) {
			t.Fatalf("Validate(%q) = %v, want %v", k, err, want)
		}
		if errors.Is(err, kademlia.ErrUnknownNamespace) && errors.Is(err, kademlia.ErrInvalidRecord) {
			t.Fatalf("both sentinels: %v", err)
		}

		switch {
		case errors.Is(want, kademlia.ErrUnknownNamespace):
			if !errors.Is(errS, kademlia.ErrUnknownNamespace) || i != -1 {
				t.Fatalf("Select(%q) = %d, %v", k, i, errS)
			}
		case strings.HasPrefix(k, "/pk/"):
			if i != 0 || errS != nil {
				t.Fatalf("Select of public keys = %d, %v", i, errS)
			}
		case errS != nil:
			if want == nil || v.Validate(k, value2) == nil || !errors.Is(errS, kademlia.ErrInvalidRecord) || i != -1 {
				t.Fatalf("Select = %d, %v, with a valid value", i, errS)
			}
		case i != 0 && i != 1:
			t.Fatalf("Select = %d of 2", i)
		case v.Validate(k, [][]byte{value, value2}[i]) != nil:
			t.Fatalf("Select picked invalid value %d", i)
		}
	})
}
