package kademlia

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mote-p2p/mote/ipns"
	"github.com/mote-p2p/mote/peer"
)

// recordsNow is the clock of the validators under test.
var recordsNow = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func recordsKey(t *testing.T, seed byte) peer.PrivateKey {
	t.Helper()
	k, err := peer.GenerateEd25519(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func recordsIPNS(t *testing.T, key peer.PrivateKey, seq uint64, eol time.Time) []byte {
	t.Helper()
	b, err := ipns.Create(key, []byte("/ipfs/bafkqaaa"), seq, eol, ipns.DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidatorPublicKeys(t *testing.T) {
	ed := recordsKey(t, 1)
	ec, err := peer.GenerateECDSA(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edID := string(peer.IDFromPublicKey(ed.Public()))
	ecID := string(peer.IDFromPublicKey(ec.Public()))
	edPK := peer.MarshalPublicKey(ed.Public())
	ecPK := peer.MarshalPublicKey(ec.Public())
	tests := []struct {
		name  string
		key   string
		value []byte
		valid bool
	}{
		{name: "Ed25519, inlined ID", key: "/pk/" + edID, value: edPK, valid: true},
		{name: "ECDSA, hashed ID", key: "/pk/" + ecID, value: ecPK, valid: true},
		{name: "another peer's key", key: "/pk/" + edID, value: ecPK},
		{name: "Ed25519 key under an ECDSA ID", key: "/pk/" + ecID, value: edPK},
		{name: "not a key", key: "/pk/" + edID, value: []byte("garbage")},
		{name: "empty value", key: "/pk/" + edID},
		{name: "no peer ID", key: "/pk/", value: edPK},
		{name: "peer ID with a trailing byte", key: "/pk/" + edID + "x", value: edPK},
		{name: "text peer ID", key: "/pk/" + peer.ID(edID).String(), value: edPK},
	}
	v := DefaultValidator(func() time.Time { return recordsNow })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(tt.key, tt.value)
			if tt.valid != (err == nil) {
				t.Fatalf("Validate: %v, want valid %v", err, tt.valid)
			}
			if !tt.valid && !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("Validate: %v, want ErrInvalidRecord", err)
			}
		})
	}
	// All valid values are the same key: the first is as good as any.
	for _, values := range [][][]byte{{edPK}, {edPK, edPK}, {[]byte("x"), edPK}} {
		if i, err := v.Select("/pk/"+edID, values); i != 0 || err != nil {
			t.Fatalf("Select(%d values) = %d, %v", len(values), i, err)
		}
	}
	if i, err := v.Select("/pk/"+edID, nil); !errors.Is(err, ErrInvalidRecord) || i != -1 {
		t.Fatalf("Select of nothing = %d, %v", i, err)
	}
}

func TestValidatorIPNS(t *testing.T) {
	key, other := recordsKey(t, 2), recordsKey(t, 3)
	name := string(ipns.Key(peer.IDFromPublicKey(key.Public())))
	eol := recordsNow.Add(ipns.DefaultLifetime)
	rec1 := recordsIPNS(t, key, 1, eol)
	rec2 := recordsIPNS(t, key, 2, eol)
	expired := recordsIPNS(t, key, 3, recordsNow.Add(-time.Nanosecond))
	foreign := recordsIPNS(t, other, 4, eol)
	v := DefaultValidator(func() time.Time { return recordsNow })

	tests := []struct {
		name    string
		key     string
		value   []byte
		wantErr error // nil: valid
	}{
		{name: "valid", key: name, value: rec1},
		{name: "expired", key: name, value: expired, wantErr: ipns.ErrExpired},
		{name: "another name's record", key: name, value: foreign, wantErr: ipns.ErrSignature},
		{name: "not a record", key: name, value: []byte("garbage"), wantErr: ipns.ErrMalformed},
		{name: "too large", key: name, value: make([]byte, ipns.MaxRecordSize+1), wantErr: ipns.ErrTooLarge},
		{name: "no peer ID", key: "/ipns/", value: rec1, wantErr: ipns.ErrInvalidName},
		{name: "text peer ID", key: "/ipns/" + peer.IDFromPublicKey(key.Public()).String(), value: rec1, wantErr: ipns.ErrInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(tt.key, tt.value)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidRecord) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate: %v, want ErrInvalidRecord and %v", err, tt.wantErr)
			}
		})
	}

	selects := []struct {
		name   string
		values [][]byte
		want   int // -1: an error
	}{
		{name: "one", values: [][]byte{rec1}, want: 0},
		{name: "newer second", values: [][]byte{rec1, rec2}, want: 1},
		{name: "newer first", values: [][]byte{rec2, rec1}, want: 0},
		{name: "invalid ones passed over", values: [][]byte{expired, foreign, rec1, []byte("x")}, want: 2},
		{name: "none valid", values: [][]byte{expired, foreign}, want: -1},
		{name: "none", want: -1},
	}
	for _, tt := range selects {
		t.Run("Select "+tt.name, func(t *testing.T) {
			got, err := v.Select(name, tt.values)
			if tt.want < 0 {
				if !errors.Is(err, ErrInvalidRecord) || got != -1 {
					t.Fatalf("Select = %d, %v, want -1 and ErrInvalidRecord", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Select = %d, %v, want %d", got, err, tt.want)
			}
		})
	}

	// The clock is read at each call: the same record expires.
	now := recordsNow
	clocked := DefaultValidator(func() time.Time { return now })
	if err := clocked.Validate(name, rec1); err != nil {
		t.Fatal(err)
	}
	now = eol.Add(time.Nanosecond)
	if err := clocked.Validate(name, rec1); !errors.Is(err, ipns.ErrExpired) {
		t.Fatalf("after the EOL: %v, want ErrExpired", err)
	}
	if _, err := clocked.Select(name, [][]byte{rec1, rec2}); !errors.Is(err, ipns.ErrNoValidRecord) {
		t.Fatalf("Select after the EOL: %v, want ErrNoValidRecord", err)
	}
}

// TestValidatorNilClock checks that a nil clock is the wall clock.
func TestValidatorNilClock(t *testing.T) {
	key := recordsKey(t, 4)
	name := string(ipns.Key(peer.IDFromPublicKey(key.Public())))
	v := DefaultValidator(nil)
	if err := v.Validate(name, recordsIPNS(t, key, 1, time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(name, recordsIPNS(t, key, 1, time.Now().Add(-time.Hour))); !errors.Is(err, ipns.ErrExpired) {
		t.Fatalf("an hour past its EOL: %v, want ErrExpired", err)
	}
}

func TestValidatorNamespaces(t *testing.T) {
	key := recordsKey(t, 5)
	id := string(peer.IDFromPublicKey(key.Public()))
	pk := peer.MarshalPublicKey(key.Public())
	v := DefaultValidator(func() time.Time { return recordsNow })
	for _, k := range []string{
		"", "/", "//", "pk", "/pk", "ipns", "/ipns", "pk/" + id, "//pk/" + id, "/PK/" + id, "/IPNS/" + id,
		"/pkx/" + id, "/ipnsx/" + id, "/v/" + id, "/providers/" + id, "/ipld/" + id, " /pk/" + id,
		"/pk\x00/" + id,
	} {
		if err := v.Validate(k, pk); !errors.Is(err, ErrUnknownNamespace) {
			t.Errorf("Validate(%q): %v, want ErrUnknownNamespace", k, err)
		}
		if i, err := v.Select(k, [][]byte{pk}); !errors.Is(err, ErrUnknownNamespace) || i != -1 {
			t.Errorf("Select(%q) = %d, %v, want ErrUnknownNamespace", k, i, err)
		}
	}
	// A binary peer ID may hold slashes: only the first one after the
	// namespace ends it.
	for seed := byte(6); ; seed++ {
		k := recordsKey(t, seed)
		id := string(peer.IDFromPublicKey(k.Public()))
		if !strings.Contains(id, "/") {
			continue
		}
		if err := v.Validate("/pk/"+id, peer.MarshalPublicKey(k.Public())); err != nil {
			t.Fatalf("peer ID with a slash: %v", err)
		}
		rec := recordsIPNS(t, k, 1, recordsNow.Add(time.Hour))
		if err := v.Validate("/ipns/"+id, rec); err != nil {
			t.Fatalf("peer ID with a slash: %v", err)
		}
		break
	}
}
