package fuzz

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"testing"

	"github.com/mote-p2p/mote/peer"
	p2ptls "github.com/mote-p2p/mote/secure/tls"
)

// tlsSpecEd25519Cert is test vector 1 of libp2p/specs tls/tls.md.
const tlsSpecEd25519Cert = "308201ae30820156a0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea37c307a3078060a2b0601040183a25a0101046a3068042408011220a77f1d92fedb59dddaea5a1c4abd1ac2fbde7d7b879ed364501809923d7c11b90440d90d2769db992d5e6195dbb08e706b6651e024fda6cfb8846694a435519941cac215a8207792e42849cccc6cd8136c6e4bde92a58c5e08cfd4206eb5fe0bf909300a06082a8648ce3d0403020346003043021f50f6b6c52711a881778718238f650c9fb48943ae6ee6d28427dc6071ae55e702203625f116a7a454db9c56986c82a25682f7248ea1cb764d322ea983ed36a31b77"

// tlsSeedCerts returns valid certificates: the spec vector and fresh ones
// made by NewIdentity for several host key types.
func tlsSeedCerts(f *testing.F) [][]byte {
	f.Helper()
	vec, err := hex.DecodeString(tlsSpecEd25519Cert)
	if err != nil {
		f.Fatal(err)
	}
	certs := [][]byte{vec}
	ed, err := peer.GenerateEd25519(nil)
	if err != nil {
		f.Fatal(err)
	}
	ec, err := peer.GenerateECDSA(nil)
	if err != nil {
		f.Fatal(err)
	}
	secp, err := peer.GenerateSecp256k1(nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, k := range []peer.PrivateKey{ed, ec, secp} {
		id, err := p2ptls.NewIdentity(k)
		if err != nil {
			f.Fatal(err)
		}
		certs = append(certs, id.ConfigForServer(nil).Certificates[0].Certificate[0])
	}
	return certs
}

// tlsExtensionValue returns the libp2p extension value of a certificate.
func tlsExtensionValue(f *testing.F, der []byte) []byte {
	f.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range cert.Extensions {
		if e.Id.Equal(p2ptls.ExtensionOID) {
			return e.Value
		}
	}
	f.Fatal("seed certificate without libp2p extension")
	return nil
}

// tlsSignedKey mirrors the SignedKey ASN.1 structure.
type tlsSignedKey struct {
	PublicKey []byte
	Signature []byte
}

func FuzzTLSExtension(f *testing.F) {
	for _, der := range tlsSeedCerts(f) {
		f.Add(tlsExtensionValue(f, der))
	}
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x06, 0x04, 0x01, 1, 0x04, 0x01, 2})
	f.Add([]byte{0x30, 0x08, 0x03, 0x02, 0x00, 1, 0x03, 0x02, 0x00, 2})
	f.Add([]byte{0x30, 0x80, 0x04, 0x01, 1, 0x04, 0x01, 2, 0, 0})
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		pk, sig, err := p2ptls.ParseExtension(b)
		if err != nil {
			if pk != nil || sig != nil {
				t.Fatal("values returned with an error")
			}
			return
		}
		if len(b) > 8<<10 {
			t.Fatalf("%d-byte extension accepted", len(b))
		}
		if len(pk) == 0 || len(sig) == 0 {
			t.Fatal("empty field accepted")
		}
		// Only strict DER is accepted: re-encoding gives the input back.
		enc, err := asn1.Marshal(tlsSignedKey{pk, sig})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("accepted non-canonical encoding %x (canonical %x)", b, enc)
		}
	})
}

func FuzzTLSCertificate(f *testing.F) {
	for _, der := range tlsSeedCerts(f) {
		f.Add(der)
	}
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		cert, err := x509.ParseCertificate(b)
		if err != nil {
			return
		}
		key, err := p2ptls.PublicKeyFromChain([]*x509.Certificate{cert})
		if err == nil {
			if key == nil {
				t.Fatal("nil key without error")
			}
			// A key from a valid certificate derives a peer ID.
			if err := peer.IDFromPublicKey(key).Validate(); err != nil {
				t.Fatalf("peer ID of accepted key: %v", err)
			}
		}
		if _, err := p2ptls.PublicKeyFromChain([]*x509.Certificate{cert, cert}); err == nil {
			t.Fatal("two-certificate chain accepted")
		}
	})
}
