package kademlia

import "crypto/sha256"

// multihash is the sha2-256 multihash of data.
func multihash(data string) []byte {
	sum := sha256.Sum256([]byte(data))
	return append([]byte{0x12, 0x20}, sum[:]...)
}
