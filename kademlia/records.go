package kademlia

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mote-p2p/mote/ipns"
	"github.com/mote-p2p/mote/peer"
)

// Record namespaces of the Amino DHT: the first path segment of a value
// key (go-libp2p-kad-dht v0.42 records/; Kubo's validator is
// go-libp2p-record v0.3.1's NamespacedValidator with these two).
const (
	// NamespacePK holds public keys: "/pk/" followed by the binary peer
	// ID of the key (go-libp2p-record PublicKeyValidator).
	NamespacePK = "pk"
	// NamespaceIPNS holds IPNS records: "/ipns/" followed by the binary
	// peer ID of the name (boxo v0.42 ipns.Validator).
	NamespaceIPNS = "ipns"
)

var (
	// ErrUnknownNamespace is wrapped when a value key is not
	// "/<namespace>/…" with a namespace of the Amino DHT, which refuses
	// such records on PUT_VALUE and in GET_VALUE answers.
	ErrUnknownNamespace = errors.New("kademlia: record key in no known namespace")
	// ErrInvalidRecord is wrapped when a value fails the validation of
	// its namespace; the namespace's own error is wrapped too (for
	// "ipns", the sentinels of package ipns).
	ErrInvalidRecord = errors.New("kademlia: invalid record")
)

// Validator checks the value records of one DHT, by their key, as
// go-libp2p-record's Validator does. A DHT calls it on every record it is
// asked to store and every record a lookup returns, so it must be safe
// for concurrent use.
type Validator interface {
	// Validate returns nil if value is a valid record for key.
	Validate(key string, value []byte) error
	// Select returns the index of the best of values, all records for
	// key. Its choice must not depend on the order of values beyond
	// ties, so that nodes agree on the best record.
	Select(key string, values [][]byte) (int, error)
}

// DefaultValidator returns the validator of the Amino DHT: keys
// "/pk/<peer ID>" and "/ipns/<peer ID>", with the peer ID in binary,
// validated as go-libp2p-record and boxo do, and nothing else. now
// (time.Now if nil) is the clock IPNS records are checked against.
//
// For "pk", a value is valid if it is a PublicKey protobuf whose peer ID
// is the key's, and Select returns 0, since all valid values are the
// same key. For "ipns", a value is valid if ipns.Validate accepts it for
// the key's name, and Select is ipns.Select: the newest valid record.
func DefaultValidator(now func() time.Time) Validator {
	if now == nil {
		now = time.Now
	}
	return aminoValidator{now: now}
}

// aminoValidator is the validator DefaultValidator returns.
type aminoValidator struct {
	now func() time.Time
}

// splitRecordKey splits "/<namespace>/<rest>" as go-libp2p-record's
// SplitKey does: the namespace ends at the first slash after the leading
// one and must not be empty; rest is the binary peer ID, which may hold
// slashes itself.
func splitRecordKey(key string) (ns, rest string, err error) {
	after, ok := strings.CutPrefix(key, "/")
	if ok {
		ns, rest, ok = strings.Cut(after, "/")
	}
	if !ok || (ns != NamespacePK && ns != NamespaceIPNS) {
		return "", "", fmt.Errorf("%w: %q", ErrUnknownNamespace, truncateKey(key))
	}
	return ns, rest, nil
}

// truncateKey bounds a key quoted in an error: keys come from peers.
func truncateKey(key string) string {
	const maxQuoted = 64
	if len(key) > maxQuoted {
		return key[:maxQuoted] + "…"
	}
	return key
}

// Validate implements Validator.
func (v aminoValidator) Validate(key string, value []byte) error {
	ns, rest, err := splitRecordKey(key)
	if err != nil {
		return fmt.Errorf("kademlia: validate record: %w", err)
	}
	if ns == NamespacePK {
		err = validatePublicKeyRecord(peer.ID(rest), value)
	} else {
		_, err = ipns.Validate(peer.ID(rest), value, v.now())
	}
	if err != nil {
		return fmt.Errorf("kademlia: validate /%s/ record: %w: %w", ns, ErrInvalidRecord, err)
	}
	return nil
}

// validatePublicKeyRecord checks that value is the public key of id.
// Comparing with the ID derived from the key also checks that id is a
// well-formed multihash: a derived ID always is.
func validatePublicKeyRecord(id peer.ID, value []byte) error {
	k, err := peer.UnmarshalPublicKey(value)
	if err != nil {
		return err
	}
	if got := peer.IDFromPublicKey(k); got != id {
		return fmt.Errorf("public key of %s stored under %s", got.ShortString(), id.ShortString())
	}
	return nil
}

// Select implements Validator. Like go-libp2p-record's
// NamespacedValidator, it refuses an empty list.
func (v aminoValidator) Select(key string, values [][]byte) (int, error) {
	ns, rest, err := splitRecordKey(key)
	if err != nil {
		return -1, fmt.Errorf("kademlia: select record: %w", err)
	}
	if len(values) == 0 {
		return -1, fmt.Errorf("kademlia: select /%s/ record: %w: no values", ns, ErrInvalidRecord)
	}
	if ns == NamespacePK {
		return 0, nil
	}
	i, err := ipns.Select(peer.ID(rest), values, v.now())
	if err != nil {
		return -1, fmt.Errorf("kademlia: select /%s/ record: %w: %w", ns, ErrInvalidRecord, err)
	}
	return i, nil
}
