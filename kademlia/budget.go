package kademlia

import (
	"fmt"

	"github.com/mote-p2p/mote/node"
)

// Budget is the DHT's bounds on what peers can make it hold, sized per
// node preset (node.PresetNames); Limits, in message.go, are the codec's. A zero field takes the preset's value
// in Override, and Config's default in Apply.
type Budget struct {
	// MaxMessageSize bounds each message read from a peer. go sends up
	// to 4 MiB (MaxMessageSize); what honest peers send is far smaller:
	// K peers with their addresses (a few KiB), a provider list, a
	// record of at most 10 KiB.
	MaxMessageSize int `json:",omitempty"`
	// MaxProviderRecords, MaxProviderKeys and MaxProvidersPerKey bound
	// the provider store (ProviderConfig).
	MaxProviderRecords int `json:",omitempty"`
	MaxProviderKeys    int `json:",omitempty"`
	MaxProvidersPerKey int `json:",omitempty"`
	// MaxValueRecords and MaxValueBytes bound the value store
	// (ValueConfig).
	MaxValueRecords int `json:",omitempty"`
	MaxValueBytes   int `json:",omitempty"`
	// WriteRate and WriteBurst bound each peer's ADD_PROVIDER and
	// PUT_VALUE requests (Config.WriteRate).
	WriteRate  float64 `json:",omitempty"`
	WriteBurst int     `json:",omitempty"`
}

// PresetLimits returns the DHT limits of a node preset. The server's are
// Config's defaults; the smaller presets store less for others and read
// smaller messages, which no Kubo answer of a usual size exceeds.
func PresetBudget(name string) (Budget, error) {
	switch name {
	case "server", "":
		return Budget{
			MaxMessageSize: MaxMessageSize, MaxProviderRecords: DefaultMaxProviderRecords, MaxProviderKeys: DefaultMaxProviderKeys,
			MaxProvidersPerKey: DefaultMaxProvidersPerKey, MaxValueRecords: DefaultMaxValueRecords, MaxValueBytes: DefaultMaxValueBytes,
			WriteRate: 50, WriteBurst: 1000,
		}, nil
	case "mobile":
		return Budget{
			MaxMessageSize: 1 << 20, MaxProviderRecords: 1 << 15, MaxProviderKeys: 1 << 13,
			MaxProvidersPerKey: 32, MaxValueRecords: 1024, MaxValueBytes: 2 << 20,
			WriteRate: 20, WriteBurst: 400,
		}, nil
	case "iot":
		return Budget{
			MaxMessageSize: 256 << 10, MaxProviderRecords: 1 << 13, MaxProviderKeys: 1 << 11,
			MaxProvidersPerKey: 20, MaxValueRecords: 256, MaxValueBytes: 512 << 10,
			WriteRate: 10, WriteBurst: 200,
		}, nil
	case "low-memory":
		return Budget{
			MaxMessageSize: 128 << 10, MaxProviderRecords: 1 << 11, MaxProviderKeys: 1 << 9,
			MaxProvidersPerKey: 20, MaxValueRecords: 64, MaxValueBytes: 128 << 10,
			WriteRate: 5, WriteBurst: 100,
		}, nil
	}
	return Budget{}, fmt.Errorf("kademlia: unknown preset %q (have %v)", name, node.PresetNames)
}

// Override returns l with the non-zero fields of o.
func (l Budget) Override(o Budget) Budget {
	setNonZero(&l.MaxMessageSize, o.MaxMessageSize)
	setNonZero(&l.MaxProviderRecords, o.MaxProviderRecords)
	setNonZero(&l.MaxProviderKeys, o.MaxProviderKeys)
	setNonZero(&l.MaxProvidersPerKey, o.MaxProvidersPerKey)
	setNonZero(&l.MaxValueRecords, o.MaxValueRecords)
	setNonZero(&l.MaxValueBytes, o.MaxValueBytes)
	setNonZero(&l.WriteBurst, o.WriteBurst)
	if o.WriteRate != 0 {
		l.WriteRate = o.WriteRate
	}
	return l
}

// Apply sets c's bounds from l (its zero fields leave c's as they are).
func (l Budget) Apply(c *Config) {
	setNonZero(&c.Messages.MaxMessageSize, l.MaxMessageSize)
	setNonZero(&c.Providers.MaxRecords, l.MaxProviderRecords)
	setNonZero(&c.Providers.MaxKeys, l.MaxProviderKeys)
	setNonZero(&c.Providers.MaxPerKey, l.MaxProvidersPerKey)
	setNonZero(&c.Values.MaxRecords, l.MaxValueRecords)
	setNonZero(&c.Values.MaxBytes, l.MaxValueBytes)
	setNonZero(&c.WriteBurst, l.WriteBurst)
	if l.WriteRate != 0 {
		c.WriteRate = l.WriteRate
	}
}

// setNonZero sets *dst to v unless v is zero (not set).
func setNonZero(dst *int, v int) {
	if v != 0 {
		*dst = v
	}
}
