package peer

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/mote-p2p/mote/wire"
	"github.com/mote-p2p/mote/wire/multibase"
)

// Multihash and CID constants used by peer IDs.
const (
	mhIdentity = 0x00
	mhSHA256   = 0x12
	cidV1      = 0x01
	codecKey   = 0x72 // libp2p-key multicodec

	// maxInlineKeyLen is the longest marshalled public key that is inlined
	// in an identity multihash instead of being hashed (spec: 42 bytes).
	maxInlineKeyLen = 42

	// MaxIdentityDigest bounds the digest of an identity-multihash peer ID
	// accepted from the network. IDFromPublicKey never makes one over 42
	// bytes, but other implementations could; a fixed bound keeps map
	// keys and log lines small.
	MaxIdentityDigest = 128

	// MaxIDStringLen bounds the text accepted by Decode. It fits every ID
	// that IDFromBytes accepts, even in hexadecimal CID form.
	MaxIDStringLen = 512
)

// ErrNoPublicKey is returned (wrapped) by ID.PublicKey for IDs that hash
// the key instead of inlining it; such peers must send their key.
var ErrNoPublicKey = errors.New("peer ID does not embed a public key")

// ID is a peer ID: the binary multihash of the peer's marshalled public
// key. It is a string so that it can be a map key and compared with ==;
// it holds bytes, not text (see String). The zero value is "no peer".
type ID string

// IDFromPublicKey derives the ID of k: an identity multihash of the
// marshalled key when that is at most 42 bytes (Ed25519, secp256k1), a
// SHA-256 multihash otherwise (RSA, ECDSA). A nil key yields "".
func IDFromPublicKey(k PublicKey) ID {
	if k == nil {
		return ""
	}
	t, raw := k.Type(), k.Raw()
	if n := keyLen(t, raw); n <= maxInlineKeyLen {
		// Build the identity multihash in place: one allocation, for
		// the string, on this hot path (every handshake and DHT reply).
		var buf [2 + maxInlineKeyLen]byte
		b := append(buf[:0], mhIdentity, byte(n))
		return ID(appendKey(b, t, raw))
	}
	sum := sha256.Sum256(marshalKey(t, raw))
	var buf [2 + sha256.Size]byte
	b := append(buf[:0], mhSHA256, sha256.Size)
	return ID(append(b, sum[:]...))
}

// IDFromBytes validates b as a binary peer ID and returns it. Only the
// two multihashes libp2p peer IDs use are accepted: identity (digest of 1
// to MaxIdentityDigest bytes) and sha2-256 (32-byte digest). Varints must
// be minimal and nothing may follow the digest.
func IDFromBytes(b []byte) (ID, error) {
	if _, _, err := parseMultihash(b); err != nil {
		return "", fmt.Errorf("peer ID from bytes: %w", err)
	}
	return ID(b), nil
}

// parseMultihash splits a peer ID multihash into its code and digest.
func parseMultihash(b []byte) (code uint64, digest []byte, err error) {
	code, n, err := wire.Uvarint(b)
	if err != nil {
		return 0, nil, fmt.Errorf("multihash code: %w", err)
	}
	b = b[n:]
	l, n, err := wire.Uvarint(b)
	if err != nil {
		return 0, nil, fmt.Errorf("multihash length: %w", err)
	}
	b = b[n:]
	if l != uint64(len(b)) {
		return 0, nil, fmt.Errorf("multihash length %d, but %d digest bytes follow", l, len(b))
	}
	switch code {
	case mhIdentity:
		if l == 0 || l > MaxIdentityDigest {
			return 0, nil, fmt.Errorf("identity multihash digest is %d bytes, want 1 to %d", l, MaxIdentityDigest)
		}
	case mhSHA256:
		if l != sha256.Size {
			return 0, nil, fmt.Errorf("sha2-256 multihash digest is %d bytes, want %d", l, sha256.Size)
		}
	default:
		return 0, nil, fmt.Errorf("multihash code 0x%x is not identity or sha2-256", code)
	}
	return code, b, nil
}

// Validate reports whether id is a well-formed peer ID (see IDFromBytes).
func (id ID) Validate() error {
	if id == "" {
		return errors.New("empty peer ID")
	}
	_, err := IDFromBytes([]byte(id))
	return err
}

// String returns the legacy base58btc text form ("12D3KooW…", "Qm…"),
// which is what Kubo prints and what multiaddrs carry after /p2p/.
func (id ID) String() string {
	return string(multibase.AppendBase58(make([]byte, 0, 2*len(id)), string(id)))
}

// CID returns the CIDv1 text form: multibase base32 of 0x01 0x72
// multihash ("bafz…"). Use it where case-insensitive text is required,
// such as DNS labels.
func (id ID) CID() string {
	if id == "" {
		return ""
	}
	b := make([]byte, 0, 2+len(id))
	b = append(b, cidV1, codecKey)
	b = append(b, id...)
	return "b" + base32Lower.EncodeToString(b)
}

// ShortString abbreviates the text form for log lines: the first 8 and
// the last 6 characters ("12D3KooW…o7R3pq"). The tail carries the entropy
// (Ed25519 IDs all start alike); 6 base58 characters keep accidental
// collisions rare among the peers one node talks to.
func (id ID) ShortString() string {
	s := id.String()
	if len(s) <= 16 {
		return s
	}
	return s[:8] + "…" + s[len(s)-6:]
}

// PublicKey extracts the key from an identity-multihash ID. For hashed
// IDs it returns an error wrapping ErrNoPublicKey.
func (id ID) PublicKey() (PublicKey, error) {
	code, digest, err := parseMultihash([]byte(id))
	if err != nil {
		return nil, fmt.Errorf("extract public key: %w", err)
	}
	if code != mhIdentity {
		return nil, fmt.Errorf("extract public key from %s: %w", id.ShortString(), ErrNoPublicKey)
	}
	k, err := UnmarshalPublicKey(digest)
	if err != nil {
		return nil, fmt.Errorf("extract public key from %s: %w", id.ShortString(), err)
	}
	return k, nil
}

// MatchesPublicKey reports whether id is the ID derived from k.
func (id ID) MatchesPublicKey(k PublicKey) bool {
	return k != nil && id != "" && IDFromPublicKey(k) == id
}

// MarshalText implements encoding.TextMarshaler with the base58btc form,
// so IDs read naturally in JSON configuration.
func (id ID) MarshalText() ([]byte, error) {
	return []byte(id.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler using Decode.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := Decode(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

var base32Lower = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Decode parses either text form of a peer ID. A string starting with
// "Qm" or "1" is a bare base58btc multihash; anything else must be a
// multibase CIDv1 with the libp2p-key codec. Supported multibases: base32
// (b, B), base58btc (z), base36 (k, K), base16 (f, F) and unpadded base64
// (m, u), which covers what Kubo and the other libp2p implementations
// print.
func Decode(s string) (ID, error) {
	if len(s) > MaxIDStringLen {
		return "", fmt.Errorf("decode peer ID: %d characters, limit %d", len(s), MaxIDStringLen)
	}
	if s == "" {
		return "", errors.New("decode peer ID: empty string")
	}
	if strings.HasPrefix(s, "Qm") || s[0] == '1' {
		b, err := multibase.DecodeBase58(s)
		if err != nil {
			return "", fmt.Errorf("decode peer ID %q: base58btc: %w", s, err)
		}
		id, err := IDFromBytes(b)
		if err != nil {
			return "", fmt.Errorf("decode peer ID %q: %w", s, err)
		}
		return id, nil
	}
	b, err := multibase.Decode(s)
	if err != nil {
		return "", fmt.Errorf("decode peer ID %q: %w", s, err)
	}
	v, n, err := wire.Uvarint(b)
	if err != nil {
		return "", fmt.Errorf("decode peer ID %q: CID version: %w", s, err)
	}
	if v != cidV1 {
		return "", fmt.Errorf("decode peer ID %q: CID version %d, want 1", s, v)
	}
	b = b[n:]
	c, n, err := wire.Uvarint(b)
	if err != nil {
		return "", fmt.Errorf("decode peer ID %q: CID codec: %w", s, err)
	}
	if c != codecKey {
		return "", fmt.Errorf("decode peer ID %q: CID codec 0x%x, want libp2p-key (0x72)", s, c)
	}
	id, err := IDFromBytes(b[n:])
	if err != nil {
		return "", fmt.Errorf("decode peer ID %q: %w", s, err)
	}
	return id, nil
}
