//go:build tools

// Package internal pins dependencies while the packages that use them are written.
package internal

import (
	_ "github.com/decred/dcrd/dcrec/secp256k1/v4"
	_ "github.com/flynn/noise"
	_ "github.com/hashicorp/yamux"
	_ "github.com/multiformats/go-multiaddr"
	_ "github.com/multiformats/go-multihash"
	_ "github.com/mr-tron/base58"
	_ "golang.org/x/crypto/chacha20poly1305"
)
