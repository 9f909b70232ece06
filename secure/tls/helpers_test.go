package tls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/mote-p2p/mote/internal/testconn"
	"github.com/mote-p2p/mote/peer"
)

const yamux = "/yamux/1.0.0"

// keyTypes lists the host key types under test; RSA keys are slow to
// generate, so one is made per test binary.
var keyTypes = []struct {
	name string
	gen  func(testing.TB) peer.PrivateKey
}{
	{"Ed25519", func(t testing.TB) peer.PrivateKey {
		k, err := peer.GenerateEd25519(nil)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}},
	{"ECDSA", func(t testing.TB) peer.PrivateKey {
		k, err := peer.GenerateECDSA(nil)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}},
	{"Secp256k1", func(t testing.TB) peer.PrivateKey {
		k, err := peer.GenerateSecp256k1(nil)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}},
	{"RSA-2048", func(t testing.TB) peer.PrivateKey {
		k, err := rsaKey()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}},
}

var rsaKey = sync.OnceValues(func() (peer.PrivateKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return peer.NewRSAPrivateKey(k)
})

func edKey(t testing.TB) peer.PrivateKey { return keyTypes[0].gen(t) }

func newTransport(t testing.TB, key peer.PrivateKey, muxers ...string) *Transport {
	t.Helper()
	if key == nil {
		key = edKey(t)
	}
	tr, err := New(Config{Key: key, Muxers: muxers})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func pipePair(t testing.TB) (net.Conn, net.Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// tcpPair returns both ends of a loopback TCP connection (dialer first).
var tcpPair = testconn.TCPPair

var pairs = []struct {
	name string
	mk   func(testing.TB) (net.Conn, net.Conn)
}{
	{"pipe", pipePair},
	{"tcp", tcpPair},
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// secureBoth runs both handshakes, the server in a goroutine. A side that
// fails closes its raw conn, which unblocks the other.
func secureBoth(ctx context.Context, client, server *Transport, cc, sc net.Conn, expect peer.ID) (*Conn, *Conn, error, error) {
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := server.SecureInbound(ctx, sc)
		if err != nil {
			sc.Close()
		}
		ch <- res{c, err}
	}()
	a, errC := client.SecureOutbound(ctx, cc, expect)
	if errC != nil {
		cc.Close()
	}
	r := <-ch
	return a, r.c, errC, r.err
}

// certOpts describes a test certificate; the zero value of each field
// means "as a correct libp2p implementation would do it".
type certOpts struct {
	host      peer.PrivateKey // key in the extension (required)
	signer    peer.PrivateKey // key signing the extension; default host
	signSPKI  []byte          // SPKI the extension signs; default the cert's
	prefix    *string         // signature prefix; default sigPrefix
	notBefore time.Time
	notAfter  time.Time
	noExt     bool
	extValue  []byte // raw extension value; default a correct SignedKey
	critical  bool   // mark the libp2p extension critical
	extra     []pkix.Extension
}

// makeCert builds a self-signed certificate per o and returns it with its
// ECDSA P-256 key.
func makeCert(t testing.TB, o certOpts) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&certKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var exts []pkix.Extension
	if !o.noExt {
		value := o.extValue
		if value == nil {
			signer := o.signer
			if signer == nil {
				signer = o.host
			}
			signed := o.signSPKI
			if signed == nil {
				signed = spki
			}
			prefix := sigPrefix
			if o.prefix != nil {
				prefix = *o.prefix
			}
			sig, err := signer.Sign(append([]byte(prefix), signed...))
			if err != nil {
				t.Fatal(err)
			}
			if value, err = marshalExtension(peer.MarshalPublicKey(o.host.Public()), sig); err != nil {
				t.Fatal(err)
			}
		}
		exts = append(exts, pkix.Extension{Id: ExtensionOID, Critical: o.critical, Value: value})
	}
	exts = append(exts, o.extra...)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(1234),
		NotBefore:       now.Add(-time.Hour),
		NotAfter:        now.Add(time.Hour),
		ExtraExtensions: exts,
	}
	if !o.notBefore.IsZero() {
		tmpl.NotBefore = o.notBefore
	}
	if !o.notAfter.IsZero() {
		tmpl.NotAfter = o.notAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &certKey.PublicKey, certKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, certKey
}

// withUniqueID re-encodes cert with an issuerUniqueID [1] after the
// SubjectPublicKeyInfo and re-signs it with key.
func withUniqueID(t testing.TB, cert *x509.Certificate, key *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	in := cryptobyte.String(cert.RawTBSCertificate)
	var body cryptobyte.String
	if !in.ReadASN1(&body, casn1.SEQUENCE) {
		t.Fatal("bad TBS")
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		var el cryptobyte.String
		var tag casn1.Tag
		for i := 0; i < 7; i++ { // version … subjectPublicKeyInfo
			if !body.ReadAnyASN1Element(&el, &tag) {
				t.Fatal("bad TBS element")
			}
			b.AddBytes(el)
		}
		b.AddASN1(casn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddBytes([]byte{0, 0xab, 0xcd}) // BIT STRING contents
		})
		b.AddBytes(body) // extensions
	})
	tbs := b.BytesOrPanic()
	h := sha256.Sum256(tbs)
	sig, err := ecdsa.SignASN1(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	var c cryptobyte.Builder
	c.AddASN1(casn1.SEQUENCE, func(c *cryptobyte.Builder) {
		c.AddBytes(tbs)
		c.AddASN1(casn1.SEQUENCE, func(c *cryptobyte.Builder) {
			c.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}) // ecdsa-with-SHA256
		})
		c.AddASN1BitString(sig)
	})
	out, err := x509.ParseCertificate(c.BytesOrPanic())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rawServer runs a plain crypto/tls server presenting cert (signed by
// certKey) in the background and returns its handshake error.
func rawServer(conn net.Conn, cert *x509.Certificate, certKey *ecdsa.PrivateKey, protos []string) <-chan error {
	cfg := &stdtls.Config{
		MinVersion:             stdtls.VersionTLS13,
		Certificates:           []stdtls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: certKey}},
		ClientAuth:             stdtls.RequireAnyClientCert,
		NextProtos:             protos,
		SessionTicketsDisabled: true,
	}
	ch := make(chan error, 1)
	go func() {
		tc := stdtls.Server(conn, cfg)
		err := tc.Handshake()
		if err != nil {
			conn.Close()
		}
		ch <- err
	}()
	return ch
}

// rawClient runs a plain crypto/tls client handshake presenting cert.
func rawClient(conn net.Conn, cert *x509.Certificate, certKey *ecdsa.PrivateKey, protos []string) (*stdtls.Conn, error) {
	cfg := &stdtls.Config{
		MinVersion:         stdtls.VersionTLS13,
		Certificates:       []stdtls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: certKey}},
		InsecureSkipVerify: true,
		NextProtos:         protos,
	}
	tc := stdtls.Client(conn, cfg)
	return tc, tc.Handshake()
}
