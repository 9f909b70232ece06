package noise

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

func TestHMACAndHKDF(t *testing.T) {
	var s symmetricState
	s.init()
	for i := range 50 {
		var key [hashLen]byte
		copy(key[:], randBytes(hashLen))
		a, b := randBytes(i*7), randBytes(i%3)
		var got [hashLen]byte
		s.hmac(&got, &key, a, b)
		m := hmac.New(sha256.New, key[:])
		m.Write(a)
		m.Write(b)
		if want := m.Sum(nil); string(got[:]) != string(want) {
			t.Fatal("hmac mismatch")
		}
		// Noise HKDF = RFC 5869 HKDF with salt ck and empty info.
		s.ck = key
		s.hkdf(a)
		want, err := hkdf.Key(sha256.New, a, key[:], "", 2*hashLen)
		if err != nil {
			t.Fatal(err)
		}
		if string(s.okm[0][:]) != string(want[:32]) || string(s.okm[1][:]) != string(want[32:]) {
			t.Fatal("hkdf mismatch")
		}
	}
}

func TestInitialState(t *testing.T) {
	var s symmetricState
	s.init()
	if len(protocolName) != hashLen {
		t.Fatal("protocol name must be HASHLEN bytes")
	}
	want := sha256.Sum256([]byte(protocolName))
	if s.h != want || string(s.ck[:]) != protocolName {
		t.Fatal("initial h/ck")
	}
}
