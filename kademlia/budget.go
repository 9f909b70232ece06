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
	set := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	set(&l.MaxMessageSize, o.MaxMessageSize)
	set(&l.MaxProviderRecords, o.MaxProviderRecords)
	set(&l.MaxProviderKeys, o.MaxProviderKeys)
	set(&l.MaxProvidersPerKey, o.MaxProvidersPerKey)
	set(&l.MaxValueRecords, o.MaxValueRecords)
	set(&l.MaxValueBytes, o.MaxValueBytes)
	set(&l.WriteBurst, o.WriteBurst)
	if o.WriteRate != 0 {
		l.WriteRate = o.WriteRate
	}
	return l
}

// Apply sets c's bounds from l (its zero fields leave c's as they are).
func (l Budget) Apply(c *Config) {
	set := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	set(&c.Messages.MaxMessageSize, l.MaxMessageSize)
	set(&c.Providers.MaxRecords, l.MaxProviderRecords)
	set(&c.Providers.MaxKeys, l.MaxProviderKeys)
	set(&c.Providers.MaxPerKey, l.MaxProvidersPerKey)
	set(&c.Values.MaxRecords, l.MaxValueRecords)
	set(&c.Values.MaxBytes, l.MaxValueBytes)
	set(&c.WriteBurst, l.WriteBurst)
	if l.WriteRate != 0 {
		c.WriteRate = l.WriteRate
	}
}
