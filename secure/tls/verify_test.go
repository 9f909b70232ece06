package tls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mote-p2p/mote/peer"
)

// Test vectors from libp2p/specs tls/tls.md ("Test vectors"): certificates
// valid from 1975 to 4096.
var specVectors = []struct {
	name   string
	cert   string
	peerID string // "" for the invalid certificate
}{
	{
		name:   "Ed25519",
		cert:   "308201ae30820156a0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea37c307a3078060a2b0601040183a25a0101046a3068042408011220a77f1d92fedb59dddaea5a1c4abd1ac2fbde7d7b879ed364501809923d7c11b90440d90d2769db992d5e6195dbb08e706b6651e024fda6cfb8846694a435519941cac215a8207792e42849cccc6cd8136c6e4bde92a58c5e08cfd4206eb5fe0bf909300a06082a8648ce3d0403020346003043021f50f6b6c52711a881778718238f650c9fb48943ae6ee6d28427dc6071ae55e702203625f116a7a454db9c56986c82a25682f7248ea1cb764d322ea983ed36a31b77",
		peerID: "12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv",
	},
	{
		name:   "ECDSA",
		cert:   "308201f63082019da0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea381c23081bf3081bc060a2b0601040183a25a01010481ad3081aa045f0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004bf30511f909414ebdd3242178fd290f093a551cf75c973155de0bb5a96fedf6cb5d52da7563e794b512f66e60c7f55ba8a3acf3dd72a801980d205e8a1ad29f2044730450220064ea8124774caf8f50e57f436aa62350ce652418c019df5d98a3ac666c9386a022100aa59d704a931b5f72fb9222cb6cc51f954d04a4e2e5450f8805fe8918f71eaae300a06082a8648ce3d04030203470030440220799395b0b6c1e940a7e4484705f610ab51ed376f19ff9d7c16757cfbf61b8d4302206205c03fbb0f95205c779be86581d3e31c01871ad5d1f3435bcf375cb0e5088a",
		peerID: "QmfXbAwNjJLXfesgztEHe8HwgVDCMMpZ9Eax1HYq6hn9uE",
	},
	{
		name:   "Secp256k1",
		cert:   "308201ba3082015fa0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea38184308181307f060a2b0601040183a25a01010471306f0425080212210206dc6968726765b820f050263ececf7f71e4955892776c0970542efd689d2382044630440220145e15a991961f0d08cd15425bb95ec93f6ffa03c5a385eedc34ecf464c7a8ab022026b3109b8a3f40ef833169777eb2aa337cfb6282f188de0666d1bcec2a4690dd300a06082a8648ce3d0403020349003046022100e1a217eeef9ec9204b3f774a08b70849646b6a1e6b8b27f93dc00ed58545d9fe022100b00dafa549d0f03547878338c7b15e7502888f6d45db387e5ae6b5d46899cef0",
		peerID: "16Uiu2HAkutTMoTzDw1tCvSRtu6YoixJwS46S1ZFxW8hSx9fWHiPs",
	},
	{
		// The extension's signature does not match the key it names.
		name: "invalid",
		cert: "308201f73082019da0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea381c23081bf3081bc060a2b0601040183a25a01010481ad3081aa045f0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004bf30511f909414ebdd3242178fd290f093a551cf75c973155de0bb5a96fedf6cb5d52da7563e794b512f66e60c7f55ba8a3acf3dd72a801980d205e8a1ad29f204473045022100bb6e03577b7cc7a3cd1558df0da2b117dfdcc0399bc2504ebe7de6f65cade72802206de96e2a5be9b6202adba24ee0362e490641ac45c240db71fe955f2c5cf8df6e300a06082a8648ce3d0403020348003045022100e847f267f43717358f850355bdcabbefb2cfbf8a3c043b203a14788a092fe8db022027c1d04a2d41fd6b57a7e8b3989e470325de4406e52e084e34a3fd56eef0d0df",
	},
}

func TestSpecVectors(t *testing.T) {
	for _, v := range specVectors {
		t.Run(v.name, func(t *testing.T) {
			der, err := hex.DecodeString(v.cert)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			key, err := PublicKeyFromChain([]*x509.Certificate{cert})
			if v.peerID == "" {
				if !errors.Is(err, peer.ErrBadSignature) {
					t.Fatalf("invalid vector: err = %v, want ErrBadSignature", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := peer.IDFromPublicKey(key).String(); got != v.peerID {
				t.Fatalf("peer ID %s, want %s", got, v.peerID)
			}
		})
	}
}

func TestPublicKeyFromChain(t *testing.T) {
	host := edKey(t)
	other := edKey(t)
	otherCertKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherSPKI, err := x509.MarshalPKIXPublicKey(&otherCertKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	noPrefix, wrongPrefix := "", "libp2p-noise-handshake:"
	goodValue := func() []byte {
		v, err := marshalExtension(peer.MarshalPublicKey(host.Public()), bytes.Repeat([]byte{1}, 64))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}()
	now := time.Now()
	unknownOID := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}

	tests := []struct {
		name    string
		opts    certOpts
		chain   func(c *x509.Certificate) []*x509.Certificate // default {c}
		wantErr error                                         // nil: valid
	}{
		{name: "valid", opts: certOpts{}},
		{name: "valid, libp2p extension critical", opts: certOpts{critical: true}},
		{name: "valid, unknown non-critical extension", opts: certOpts{extra: []pkix.Extension{{Id: unknownOID, Value: []byte{5, 0}}}}},
		{name: "no extension", opts: certOpts{noExt: true}, wantErr: ErrNoExtension},
		{name: "extension not DER", opts: certOpts{extValue: []byte("garbage")}, wantErr: ErrMalformedExtension},
		{name: "extension with BIT STRINGs", opts: certOpts{extValue: []byte{0x30, 0x08, 0x03, 0x02, 0x00, 0x01, 0x03, 0x02, 0x00, 0x02}}, wantErr: ErrMalformedExtension},
		{name: "extension with trailing bytes", opts: certOpts{extValue: append(goodValue, 0)}, wantErr: ErrMalformedExtension},
		{name: "extension with a bad host key", opts: certOpts{extValue: []byte{0x30, 0x06, 0x04, 0x01, 0xff, 0x04, 0x01, 0x01}}, wantErr: ErrHostKey},
		{name: "extension signed by another key", opts: certOpts{signer: other}, wantErr: peer.ErrBadSignature},
		{name: "extension signs another certificate key", opts: certOpts{signSPKI: otherSPKI}, wantErr: peer.ErrBadSignature},
		{name: "extension signature without prefix", opts: certOpts{prefix: &noPrefix}, wantErr: peer.ErrBadSignature},
		{name: "extension signature with another prefix", opts: certOpts{prefix: &wrongPrefix}, wantErr: peer.ErrBadSignature},
		{name: "expired", opts: certOpts{notBefore: now.Add(-2 * time.Hour), notAfter: now.Add(-time.Hour)}, wantErr: ErrExpired},
		{name: "not yet valid", opts: certOpts{notBefore: now.Add(time.Hour), notAfter: now.Add(2 * time.Hour)}, wantErr: ErrNotYetValid},
		{name: "unknown critical extension", opts: certOpts{extra: []pkix.Extension{{Id: unknownOID, Critical: true, Value: []byte{5, 0}}}}, wantErr: ErrUnknownCriticalExtension},
		{name: "unknown critical extension beside critical libp2p", opts: certOpts{critical: true, extra: []pkix.Extension{{Id: unknownOID, Critical: true, Value: []byte{5, 0}}}}, wantErr: ErrUnknownCriticalExtension},
		{name: "two certificates", chain: func(c *x509.Certificate) []*x509.Certificate { return []*x509.Certificate{c, c} }, wantErr: ErrChainLength},
		{name: "no certificate", chain: func(*x509.Certificate) []*x509.Certificate { return nil }, wantErr: ErrChainLength},
		{name: "nil certificate", chain: func(*x509.Certificate) []*x509.Certificate { return []*x509.Certificate{nil} }, wantErr: ErrChainLength},
		{name: "bad self-signature", chain: func(c *x509.Certificate) []*x509.Certificate {
			cc := *c
			cc.Signature = bytes.Clone(c.Signature)
			cc.Signature[len(cc.Signature)-1] ^= 1
			return []*x509.Certificate{&cc}
		}, wantErr: ErrCertSignature},
		{name: "SHA-1 self-signature", chain: func(c *x509.Certificate) []*x509.Certificate {
			cc := *c
			cc.SignatureAlgorithm = x509.ECDSAWithSHA1
			return []*x509.Certificate{&cc}
		}, wantErr: ErrCertSignature},
		{name: "extension twice", chain: func(c *x509.Certificate) []*x509.Certificate {
			cc := *c
			cc.Extensions = append(append([]pkix.Extension(nil), c.Extensions...), c.Extensions...)
			return []*x509.Certificate{&cc}
		}, wantErr: ErrMalformedExtension},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.host = host
			cert, _ := makeCert(t, o)
			chain := []*x509.Certificate{cert}
			if tc.chain != nil {
				chain = tc.chain(cert)
			}
			key, err := PublicKeyFromChain(chain)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !peer.KeyEqual(key, host.Public()) {
					t.Fatal("wrong key returned")
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if key != nil {
				t.Fatal("key returned with an error")
			}
		})
	}
}

func TestUniqueIDRefused(t *testing.T) {
	cert, certKey := makeCert(t, certOpts{host: edKey(t)})
	if _, err := PublicKeyFromChain([]*x509.Certificate{cert}); err != nil {
		t.Fatal(err)
	}
	bad := withUniqueID(t, cert, certKey)
	if _, err := PublicKeyFromChain([]*x509.Certificate{bad}); !errors.Is(err, ErrUniqueID) {
		t.Fatalf("err = %v, want ErrUniqueID", err)
	}
}

func TestParseExtension(t *testing.T) {
	pk, sig := []byte("public key"), []byte("signature")
	good, err := marshalExtension(pk, sig)
	if err != nil {
		t.Fatal(err)
	}
	big := append([]byte{0x30, 0x82, 0x20, 0x08, 0x04, 0x82, 0x20, 0x00}, make([]byte, 0x2000)...)
	big = append(big, 0x04, 0x02, 1, 2)
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"valid", good, true},
		{"empty input", nil, false},
		{"trailing byte", append(bytes.Clone(good), 0), false},
		{"truncated", good[:len(good)-1], false},
		{"three fields", []byte{0x30, 0x09, 0x04, 0x01, 1, 0x04, 0x01, 2, 0x04, 0x01, 3}, false},
		{"one field", []byte{0x30, 0x03, 0x04, 0x01, 1}, false},
		{"empty key", []byte{0x30, 0x05, 0x04, 0x00, 0x04, 0x01, 2}, false},
		{"empty signature", []byte{0x30, 0x05, 0x04, 0x01, 1, 0x04, 0x00}, false},
		{"BIT STRING fields", []byte{0x30, 0x08, 0x03, 0x02, 0x00, 1, 0x03, 0x02, 0x00, 2}, false},
		{"SET instead of SEQUENCE", []byte{0x31, 0x06, 0x04, 0x01, 1, 0x04, 0x01, 2}, false},
		{"non-minimal length", []byte{0x30, 0x81, 0x06, 0x04, 0x01, 1, 0x04, 0x01, 2}, false},
		{"indefinite length", []byte{0x30, 0x80, 0x04, 0x01, 1, 0x04, 0x01, 2, 0, 0}, false},
		{"over the size bound", big, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gotPK, gotSig, err := ParseExtension(tc.in)
			if !tc.ok {
				if !errors.Is(err, ErrMalformedExtension) {
					t.Fatalf("err = %v, want ErrMalformedExtension", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotPK, pk) || !bytes.Equal(gotSig, sig) {
				t.Fatalf("got %q %q", gotPK, gotSig)
			}
		})
	}
}

func TestIdentityCertificate(t *testing.T) {
	for _, kt := range keyTypes {
		t.Run(kt.name, func(t *testing.T) {
			key := kt.gen(t)
			before := time.Now()
			id, err := NewIdentity(key)
			if err != nil {
				t.Fatal(err)
			}
			if want := peer.IDFromPublicKey(key.Public()); id.LocalPeer() != want {
				t.Fatalf("LocalPeer %s, want %s", id.LocalPeer(), want)
			}
			if len(id.certs) != 1 || len(id.certs[0].Certificate) != 1 {
				t.Fatal("identity must hold exactly one certificate")
			}
			cert, err := x509.ParseCertificate(id.certs[0].Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
				t.Fatalf("certificate key is %T, want ECDSA P-256", cert.PublicKey)
			}
			if cert.SignatureAlgorithm != x509.ECDSAWithSHA256 {
				t.Fatalf("signature algorithm %s", cert.SignatureAlgorithm)
			}
			if d := before.Sub(cert.NotBefore); d < time.Hour-time.Second || d > time.Hour+time.Minute {
				t.Fatalf("NotBefore %s is not about now-1h", cert.NotBefore)
			}
			if cert.NotAfter.Before(before.AddDate(99, 0, 0)) {
				t.Fatalf("NotAfter %s: want about 100 years", cert.NotAfter)
			}
			if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 62 {
				t.Fatalf("serial %s", cert.SerialNumber)
			}
			if cert.Subject.SerialNumber == "" || !bytes.Equal(cert.RawIssuer, cert.RawSubject) {
				t.Fatalf("subject %q / issuer %q", cert.Subject, cert.Issuer)
			}
			if len(cert.UnhandledCriticalExtensions) != 0 {
				t.Fatalf("critical extensions %v", cert.UnhandledCriticalExtensions)
			}
			for _, e := range cert.Extensions {
				if e.Critical {
					t.Fatalf("extension %s is critical", e.Id)
				}
			}
			got, err := PublicKeyFromChain([]*x509.Certificate{cert})
			if err != nil {
				t.Fatal(err)
			}
			if !peer.KeyEqual(got, key.Public()) {
				t.Fatal("extension carries the wrong host key")
			}
		})
	}
	// Two identities for one key use unrelated certificate keys.
	key := edKey(t)
	a, _ := NewIdentity(key)
	b, _ := NewIdentity(key)
	if bytes.Equal(a.certs[0].Certificate[0], b.certs[0].Certificate[0]) {
		t.Fatal("identical certificates")
	}
}

func TestNewErrors(t *testing.T) {
	key := edKey(t)
	long := strings.Repeat("x", 256)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no key", Config{}},
		{"empty muxer", Config{Key: key, Muxers: []string{""}}},
		{"muxer too long", Config{Key: key, Muxers: []string{long}}},
		{"muxer named libp2p", Config{Key: key, Muxers: []string{ALPN}}},
		{"too many muxers", Config{Key: key, Muxers: make([]string, maxMuxers+1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
	if _, err := NewIdentity(nil); err == nil {
		t.Fatal("NewIdentity(nil) succeeded")
	}
	// A host key that cannot sign is refused up front.
	if _, err := NewIdentity(peer.Ed25519PrivateKey(make([]byte, 10))); err == nil {
		t.Fatal("NewIdentity accepted a broken key")
	}
}

func TestALPNList(t *testing.T) {
	got := alpnList([]string{yamux, "", ALPN, strings.Repeat("x", 256), "/mplex/6.7.0"})
	want := []string{yamux, "/mplex/6.7.0", ALPN}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("alpnList = %q, want %q", got, want)
	}
}
