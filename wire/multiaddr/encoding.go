package multiaddr

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/mote-p2p/mote/wire"
	"github.com/mote-p2p/mote/wire/multibase"
)

// Multihash codes that may identify a peer.
const (
	mhIdentity = 0x00
	mhSHA256   = 0x12
)

// checkMultihash checks that v is exactly one multihash (varint code,
// varint digest length, digest) and returns its code and digest length.
// Like go-multihash, it accepts any code.
func checkMultihash(v string) (code uint64, digest int, err error) {
	if len(v) < 2 {
		return 0, 0, fmt.Errorf("multihash of %d bytes is too short", len(v))
	}
	code, n, err := wire.Uvarint(v)
	if err != nil {
		return 0, 0, fmt.Errorf("multihash code: %w", err)
	}
	size, m, err := wire.Uvarint(v[n:])
	if err != nil {
		return 0, 0, fmt.Errorf("multihash length: %w", err)
	}
	if rest := len(v) - n - m; size != uint64(rest) {
		return 0, 0, fmt.Errorf("multihash declares a %d-byte digest but has %d bytes", size, rest)
	}
	return code, int(size), nil
}

// checkPeerID checks that v is a multihash a peer ID may use: the public
// key itself (identity) or its SHA-256, as the peer ID spec requires.
func checkPeerID(v string) error {
	code, digest, err := checkMultihash(v)
	switch {
	case err != nil:
		return err
	case code == mhIdentity:
		return nil
	case code != mhSHA256:
		return fmt.Errorf("multihash code %#x is neither identity nor sha2-256", code)
	case digest != 32:
		return fmt.Errorf("sha2-256 digest of %d bytes, want 32", digest)
	}
	return nil
}

// libp2pKey is the multicodec of a CID that names a peer.
const libp2pKey = 0x72

// decodePeerID decodes the text form of a peer ID into its multihash. Like
// go-multiaddr, text starting with "Qm" or "1" is base58btc, and anything
// else must be a multibase CIDv1 with the libp2p-key codec.
func decodePeerID(s string) ([]byte, error) {
	if strings.HasPrefix(s, "Qm") || strings.HasPrefix(s, "1") {
		return multibase.DecodeBase58(s)
	}
	cid, err := multibase.Decode(s)
	if err != nil {
		return nil, fmt.Errorf("neither base58 nor a CID: %w", err)
	}
	version, n, err := wire.Uvarint(cid)
	if err != nil {
		return nil, fmt.Errorf("CID version: %w", err)
	}
	if version != 1 {
		return nil, fmt.Errorf("CID version %d, want 1", version)
	}
	codec, m, err := wire.Uvarint(cid[n:])
	if err != nil {
		return nil, fmt.Errorf("CID codec: %w", err)
	}
	if codec != libp2pKey {
		return nil, fmt.Errorf("CID codec %#x, want libp2p-key (0x72)", codec)
	}
	return cid[n+m:], nil
}

// appendBase64URL appends src in unpadded base64url, the encoding
// go-multiaddr prints certhashes in. Three bytes encode to four characters
// with no padding, so encoding a piece at a time from a small array gives
// the same text without copying src to the heap.
func appendBase64URL(dst []byte, src string) []byte {
	for len(src) > 0 {
		var in [3]byte
		n := copy(in[:], src)
		src = src[n:]
		dst = base64.RawURLEncoding.AppendEncode(dst, in[:n])
	}
	return dst
}
