package kademlia

import (
	"reflect"
	"testing"

	"github.com/mote-p2p/mote/node"
)

// TestPresetLimits: every node preset has DHT limits, every field set,
// none larger than the preset above it.
func TestPresetBudgets(t *testing.T) {
	var prev Budget
	for i, name := range node.PresetNames {
		l, err := PresetBudget(name)
		if err != nil {
			t.Fatal(err)
		}
		v, pv := reflect.ValueOf(l), reflect.ValueOf(prev)
		for f := range v.NumField() {
			field := v.Type().Field(f).Name
			x := v.Field(f)
			if x.IsZero() {
				t.Errorf("preset %s: %s is zero", name, field)
			}
			if i > 0 && ((x.CanInt() && x.Int() > pv.Field(f).Int()) || (x.CanFloat() && x.Float() > pv.Field(f).Float())) {
				t.Errorf("preset %s: %s is larger than in %s", name, field, node.PresetNames[i-1])
			}
		}
		if l.MaxMessageSize > MaxMessageSize {
			t.Errorf("preset %s reads messages larger than go sends", name)
		}
		prev = l
	}
	if _, err := PresetBudget("huge"); err == nil {
		t.Error("an unknown preset was accepted")
	}
}

func TestLimitsApply(t *testing.T) {
	l, _ := PresetBudget("iot")
	l = l.Override(Budget{MaxValueRecords: 7})
	var c Config
	l.Apply(&c)
	c.setDefaults()
	if c.Messages.MaxMessageSize != 256<<10 || c.Values.MaxRecords != 7 || c.Providers.MaxPerKey != 20 || c.WriteRate != 10 {
		t.Errorf("applied config %+v", c)
	}
	// A zero Budget changes nothing.
	var d Config
	Budget{}.Apply(&d)
	if !reflect.DeepEqual(d, Config{}) {
		t.Errorf("zero limits changed the config: %+v", d)
	}
}
