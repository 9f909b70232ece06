package kademlia

// keyspace.go holds the Kademlia keyspace: 256-bit points, their XOR
// distance and common-prefix length, and the random keys a bucket refresh
// looks up.
//
// Sources: spec kad-dht/README.md ("Distance"); go-libp2p-kbucket v0.9
// util.go (ConvertPeerID, ConvertKey, CommonPrefixLen), table_refresh.go
// (maxCplForRefresh).

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"

	"github.com/mote-p2p/mote/peer"
)

// MaxRefreshCPL is the largest common-prefix length RandomKeyBytes makes a
// key for. Finding one takes 2^(cpl+1) hashes on average, so 15 costs
// about 65,536; go refreshes no deeper either (go-libp2p-kbucket v0.9
// table_refresh.go maxCplForRefresh = PeerIDPreimageMaxCpl = 15).
const MaxRefreshCPL = 15

// maxRefreshAttempts bounds the hashes RandomKeyBytes tries: 256 times the
// expected count at MaxRefreshCPL, so that giving up is a practical
// impossibility rather than a hang if something is badly wrong.
const maxRefreshAttempts = 1 << 24

// ErrRefreshCPL is wrapped by RandomKeyBytes when it is asked for a
// common-prefix length outside 0..MaxRefreshCPL or cannot find a key.
var ErrRefreshCPL = errors.New("kademlia: no refresh key for that common-prefix length")

// Key is a point in the 256-bit keyspace: the SHA-256 of the key bytes.
// Peers and content share the space, so that "closest peers to a key"
// means the same thing for routing and for storage.
type Key [32]byte

// KeyOf places arbitrary key bytes in the keyspace: a binary peer ID, a
// multihash or a record key. Never pass a text form: every implementation
// hashes the raw bytes.
func KeyOf(b []byte) Key { return sha256.Sum256(b) }

// PeerKey is the keyspace point of a peer: the hash of its binary ID.
func PeerKey(id peer.ID) Key { return KeyOf([]byte(id)) }

// Distance is the XOR metric between k and o.
func (k Key) Distance(o Key) Key {
	var d Key
	for i := range d {
		d[i] = k[i] ^ o[i]
	}
	return d
}

// CommonPrefixLen is the number of leading bits a and b share, 0 to 256;
// the routing table files a peer under its CommonPrefixLen with self.
func CommonPrefixLen(a, b Key) int {
	for i := 0; i < len(a); i += 8 {
		x := binary.BigEndian.Uint64(a[i:]) ^ binary.BigEndian.Uint64(b[i:])
		if x != 0 {
			return i*8 + bits.LeadingZeros64(x)
		}
	}
	return len(a) * 8
}

// Closer reports whether a is strictly closer to k than b, comparing XOR
// distances as big-endian unsigned integers.
func (k Key) Closer(a, b Key) bool {
	for i := range k {
		x, y := a[i]^k[i], b[i]^k[i]
		if x != y {
			return x < y
		}
	}
	return false
}

// SortByDistance orders ids in place, closest to target first. Each key is
// hashed once. The sort is stable; only equal ids tie.
func SortByDistance(target Key, ids []peer.ID) {
	type item struct {
		d  Key
		id peer.ID
	}
	items := make([]item, len(ids))
	for i, id := range ids {
		items[i] = item{d: target.Distance(PeerKey(id)), id: id}
	}
	slices.SortStableFunc(items, func(a, b item) int { return bytes.Compare(a.d[:], b.d[:]) })
	for i := range items {
		ids[i] = items[i].id
	}
}

// RandomKeyBytes returns 32 bytes whose KeyOf has common-prefix length
// exactly cpl with self: a FIND_NODE key that lands in bucket cpl, for
// refreshing it. Peers hash whatever key arrives, so the bytes need not be
// a peer ID. It reads 32 bytes from rnd once (use crypto/rand) and then
// varies a counter in them until the hash fits, so the cost is hashing,
// about 2^(cpl+1) SHA-256 of 32 bytes, not reading.
func RandomKeyBytes(self Key, cpl int, rnd io.Reader) ([]byte, error) {
	if cpl < 0 || cpl > MaxRefreshCPL {
		return nil, fmt.Errorf("refresh key for common-prefix length %d (max %d): %w", cpl, MaxRefreshCPL, ErrRefreshCPL)
	}
	var seed [32]byte
	if _, err := io.ReadFull(rnd, seed[:]); err != nil {
		return nil, fmt.Errorf("refresh key: read random bytes: %w", err)
	}
	tail := binary.BigEndian.Uint64(seed[24:])
	for n := uint64(0); n < maxRefreshAttempts; n++ {
		// XOR keeps all 64 random tail bits; hashing makes each candidate
		// an independent point in the keyspace.
		binary.BigEndian.PutUint64(seed[24:], tail^n)
		if CommonPrefixLen(KeyOf(seed[:]), self) == cpl {
			return seed[:], nil
		}
	}
	return nil, fmt.Errorf("refresh key for common-prefix length %d: none in %d attempts: %w", cpl, maxRefreshAttempts, ErrRefreshCPL)
}
