package tls

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/mote-p2p/mote/peer"
)

// ExtensionOID identifies the libp2p Public Key Extension
// (1.3.6.1.4.1.53594.1.1; IANA PEN 53594 is libp2p).
var ExtensionOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 53594, 1, 1}

// sigPrefix is prepended to the certificate's SubjectPublicKeyInfo before
// the host key signs it.
const sigPrefix = "libp2p-tls-handshake:"

// maxExtensionLen bounds the extension value ParseExtension accepts. The
// largest legitimate value (an RSA-8192 host key and its signature) is
// about 2.1 KiB.
const maxExtensionLen = 8 << 10

// Errors returned (wrapped, with details) by PublicKeyFromChain and by
// handshakes that it rejects. Test with errors.Is. A signature in the
// extension that does not verify wraps peer.ErrBadSignature instead.
var (
	ErrChainLength              = errors.New("tls: peer must present exactly one certificate")
	ErrNotYetValid              = errors.New("tls: certificate is not yet valid")
	ErrExpired                  = errors.New("tls: certificate has expired")
	ErrUnknownCriticalExtension = errors.New("tls: certificate has an unknown critical extension")
	ErrCertSignature            = errors.New("tls: certificate self-signature is invalid")
	ErrUniqueID                 = errors.New("tls: certificate carries a subjectUniqueID or issuerUniqueID")
	ErrNoExtension              = errors.New("tls: certificate lacks the libp2p public key extension")
	ErrMalformedExtension       = errors.New("tls: malformed libp2p public key extension")
	ErrHostKey                  = errors.New("tls: invalid host key in libp2p public key extension")
)

// ParseExtension decodes the value of the libp2p Public Key Extension,
// DER SignedKey ::= SEQUENCE { publicKey OCTET STRING, signature OCTET
// STRING }, strictly (no trailing bytes, no empty fields, at most 8 KiB).
// The results alias der.
func ParseExtension(der []byte) (publicKey, signature []byte, err error) {
	if len(der) > maxExtensionLen {
		return nil, nil, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformedExtension, len(der), maxExtensionLen)
	}
	s := cryptobyte.String(der)
	var seq, pk, sig cryptobyte.String
	if !s.ReadASN1(&seq, casn1.SEQUENCE) || !s.Empty() {
		return nil, nil, fmt.Errorf("%w: not a single DER SEQUENCE", ErrMalformedExtension)
	}
	if !seq.ReadASN1(&pk, casn1.OCTET_STRING) || !seq.ReadASN1(&sig, casn1.OCTET_STRING) || !seq.Empty() {
		return nil, nil, fmt.Errorf("%w: want SEQUENCE { OCTET STRING, OCTET STRING }", ErrMalformedExtension)
	}
	if len(pk) == 0 || len(sig) == 0 {
		return nil, nil, fmt.Errorf("%w: empty public key or signature", ErrMalformedExtension)
	}
	return pk, sig, nil
}

// marshalExtension encodes SignedKey (the inverse of ParseExtension).
func marshalExtension(publicKey, signature []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1OctetString(publicKey)
		b.AddASN1OctetString(signature)
	})
	return b.Bytes()
}

// PublicKeyFromChain checks a certificate chain presented by a peer
// against the libp2p TLS spec and returns the peer's host key:
//   - exactly one certificate, valid now;
//   - no critical extension other than the libp2p one (which may be
//     critical);
//   - a valid self-signature (MD5 and SHA-1 based algorithms refused);
//   - no subjectUniqueID / issuerUniqueID;
//   - the libp2p extension present exactly once and well formed, holding
//     a host key that signed "libp2p-tls-handshake:" ‖ the certificate's
//     DER SubjectPublicKeyInfo.
//
// It does not modify the certificates and keeps no reference to them.
func PublicKeyFromChain(chain []*x509.Certificate) (peer.PublicKey, error) {
	if len(chain) != 1 || chain[0] == nil {
		return nil, fmt.Errorf("%w, got %d", ErrChainLength, len(chain))
	}
	cert := chain[0]
	now := time.Now()
	if now.Before(cert.NotBefore) {
		return nil, fmt.Errorf("%w: valid from %s", ErrNotYetValid, cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(cert.NotAfter) {
		return nil, fmt.Errorf("%w: valid until %s", ErrExpired, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	for _, oid := range cert.UnhandledCriticalExtensions {
		if !oid.Equal(ExtensionOID) {
			return nil, fmt.Errorf("%w: %s", ErrUnknownCriticalExtension, oid)
		}
	}
	switch cert.SignatureAlgorithm {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return nil, fmt.Errorf("%w: insecure algorithm %s", ErrCertSignature, cert.SignatureAlgorithm)
	}
	// Checked against the certificate's own key: it is self-signed. The
	// libp2p OID possibly listed as an unhandled critical extension plays
	// no part in this check.
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCertSignature, err)
	}
	if err := checkNoUniqueIDs(cert.RawTBSCertificate); err != nil {
		return nil, err
	}

	var value []byte
	found := false
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(ExtensionOID) {
			continue
		}
		if found {
			return nil, fmt.Errorf("%w: present twice", ErrMalformedExtension)
		}
		value, found = ext.Value, true
	}
	if !found {
		return nil, ErrNoExtension
	}
	pkBytes, sig, err := ParseExtension(value)
	if err != nil {
		return nil, err
	}
	key, err := peer.UnmarshalPublicKey(pkBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHostKey, err)
	}
	spki := cert.RawSubjectPublicKeyInfo
	msg := make([]byte, 0, len(sigPrefix)+len(spki))
	msg = append(append(msg, sigPrefix...), spki...)
	if err := key.Verify(msg, sig); err != nil {
		return nil, fmt.Errorf("tls: libp2p extension: host key of %s did not sign this certificate's key: %w",
			peer.IDFromPublicKey(key), err)
	}
	return key, nil
}

// checkNoUniqueIDs walks the TBSCertificate up to the optional
// issuerUniqueID [1] / subjectUniqueID [2] fields, which Go's parser
// skips silently, and refuses them as the spec allows.
func checkNoUniqueIDs(tbs []byte) error {
	s := cryptobyte.String(tbs)
	var t cryptobyte.String
	ok := s.ReadASN1(&t, casn1.SEQUENCE) &&
		t.SkipOptionalASN1(casn1.Tag(0).Constructed().ContextSpecific()) && // version
		t.SkipASN1(casn1.INTEGER) && // serialNumber
		t.SkipASN1(casn1.SEQUENCE) && // signature
		t.SkipASN1(casn1.SEQUENCE) && // issuer
		t.SkipASN1(casn1.SEQUENCE) && // validity
		t.SkipASN1(casn1.SEQUENCE) && // subject
		t.SkipASN1(casn1.SEQUENCE) // subjectPublicKeyInfo
	if !ok {
		return errors.New("tls: malformed TBSCertificate")
	}
	for _, tag := range []casn1.Tag{1, 2} {
		if t.PeekASN1Tag(tag.ContextSpecific()) || t.PeekASN1Tag(tag.ContextSpecific().Constructed()) {
			return ErrUniqueID
		}
	}
	return nil
}
