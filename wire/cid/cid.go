// Package cid parses and prints content identifiers (multiformats CIDs),
// version 0 ("Qm…", a bare base58btc sha2-256 multihash) and version 1
// (multibase of 0x01, the content codec and the multihash), as far as the
// DHT needs them: its provider keys are the multihash inside a CID, never
// the CID itself.
//
// Source: multiformats/cid README (the specification) and multihash's.
package cid

import (
	"encoding/base32"
	"errors"
	"fmt"

	"github.com/mote-p2p/mote/wire"
	"github.com/mote-p2p/mote/wire/multibase"
)

// Content codecs from the multicodec table.
const (
	Raw       = 0x55
	DagPB     = 0x70
	DagCBOR   = 0x71
	Libp2pKey = 0x72
)

// sha2-256, the multihash of CIDv0.
const (
	sha256Code = 0x12
	sha256Len  = 32
)

// MaxDigest bounds a multihash's digest: 64 bytes fits every common hash
// (sha2-512, blake2b-512), and the DHT takes provider keys of at most 80
// bytes.
const MaxDigest = 64

// ErrMalformed is wrapped by every parse error.
var ErrMalformed = errors.New("malformed CID")

// CID is a parsed content identifier.
type CID struct {
	// Version is 0 or 1.
	Version int
	// Codec is the content's codec (DagPB for version 0).
	Codec uint64
	// Multihash is the binary multihash: hash code, digest length, digest.
	Multihash []byte
}

var base32Lower = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Parse parses the text form of a CID: "Qm…" (version 0) or any multibase
// form of version 1 ("bafy…", "bafk…", "k51…", "z…").
func Parse(s string) (CID, error) {
	if len(s) == 46 && s[:2] == "Qm" {
		mh, err := multibase.DecodeBase58(s)
		if err != nil {
			return CID{}, fmt.Errorf("%w: %q: %w", ErrMalformed, s, err)
		}
		if err := checkMultihash(mh); err != nil {
			return CID{}, fmt.Errorf("%q: %w", s, err)
		}
		return CID{Version: 0, Codec: DagPB, Multihash: mh}, nil
	}
	b, err := multibase.Decode(s)
	if err != nil {
		return CID{}, fmt.Errorf("%w: %q: %w", ErrMalformed, s, err)
	}
	c, err := FromBytes(b)
	if err != nil {
		return CID{}, fmt.Errorf("%q: %w", s, err)
	}
	return c, nil
}

// FromBytes parses the binary form of a version 1 CID.
func FromBytes(b []byte) (CID, error) {
	v, n, err := wire.Uvarint(b)
	if err != nil || v != 1 {
		return CID{}, fmt.Errorf("%w: version is not 1", ErrMalformed)
	}
	b = b[n:]
	codec, n, err := wire.Uvarint(b)
	if err != nil {
		return CID{}, fmt.Errorf("%w: codec: %w", ErrMalformed, err)
	}
	mh := b[n:]
	if err := checkMultihash(mh); err != nil {
		return CID{}, err
	}
	return CID{Version: 1, Codec: codec, Multihash: append([]byte(nil), mh...)}, nil
}

// checkMultihash checks that mh is one whole multihash.
func checkMultihash(mh []byte) error {
	_, n, err := wire.Uvarint(mh)
	if err != nil {
		return fmt.Errorf("%w: multihash code: %w", ErrMalformed, err)
	}
	l, m, err := wire.Uvarint(mh[n:])
	if err != nil {
		return fmt.Errorf("%w: multihash length: %w", ErrMalformed, err)
	}
	if l > MaxDigest || uint64(len(mh)-n-m) != l {
		return fmt.Errorf("%w: multihash digest of %d bytes, length says %d", ErrMalformed, len(mh)-n-m, l)
	}
	return nil
}

// NewV1 is the version 1 CID of codec and multihash mh.
func NewV1(codec uint64, mh []byte) CID {
	return CID{Version: 1, Codec: codec, Multihash: mh}
}

// Bytes is the binary form (the bare multihash for version 0).
func (c CID) Bytes() []byte {
	if c.Version == 0 {
		return append([]byte(nil), c.Multihash...)
	}
	b := wire.AppendUvarint([]byte{1}, c.Codec)
	return append(b, c.Multihash...)
}

// String is the canonical text form: base58btc for version 0, base32
// ("b…") for version 1, as Kubo prints them.
func (c CID) String() string {
	if c.Version == 0 {
		return string(multibase.AppendBase58(nil, string(c.Multihash)))
	}
	return "b" + base32Lower.EncodeToString(c.Bytes())
}

// Sum256 is the sha2-256 multihash of data.
func Sum256(digest [sha256Len]byte) []byte {
	return append([]byte{sha256Code, sha256Len}, digest[:]...)
}
