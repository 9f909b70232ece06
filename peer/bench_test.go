package peer

import "testing"

func BenchmarkEd25519Sign(b *testing.B) {
	var k PrivateKey = testKey(1)
	msg := make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Sign(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEd25519Verify(b *testing.B) {
	var k PrivateKey = testKey(1)
	msg := make([]byte, 256)
	sig, _ := k.Sign(msg)
	pub := k.Public()
	b.ReportAllocs()
	for b.Loop() {
		if err := pub.Verify(msg, sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIDFromPublicKey(b *testing.B) {
	for _, tc := range []struct {
		name string
		key  PublicKey
	}{
		{"ed25519", testKey(1).Public()},
		{"rsa2048", testRSAKey(b).Public()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = IDFromPublicKey(tc.key)
			}
		})
	}
}

func BenchmarkIDString(b *testing.B) {
	id := IDFromPublicKey(testKey(1).Public())
	b.ReportAllocs()
	for b.Loop() {
		_ = id.String()
	}
}

func BenchmarkDecodeID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(vecEd25519ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenPeerRecord(b *testing.B) {
	k := testKey(1)
	rec := &PeerRecord{ID: IDFromPublicKey(k.Public()), Seq: 1}
	data, err := SealPeerRecord(k, rec)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := OpenPeerRecord(data); err != nil {
			b.Fatal(err)
		}
	}
}
