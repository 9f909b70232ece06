package node

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// limitCell writes one preset value as docs/SECURITY.md shows it.
func limitCell(name string, v reflect.Value) string {
	if v.Type() == durationType {
		switch d := time.Duration(v.Int()); {
		case d < 0:
			return "never"
		case d == 0:
			return "none"
		default:
			return d.String()
		}
	}
	var n int64
	switch v.Kind() {
	case reflect.Uint32, reflect.Uint64:
		n = int64(v.Uint())
	default:
		n = v.Int()
	}
	bytes := strings.Contains(name, "Window") || strings.Contains(name, "Memory") || strings.Contains(name, "Bytes")
	switch {
	case n == 0:
		return "none"
	case bytes && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case bytes && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case strings.Contains(name, "RateLimit"):
		return fmt.Sprintf("%d B/s", n)
	}
	return fmt.Sprint(n)
}

// TestSecurityDocListsEveryLimit: docs/SECURITY.md has a row for every
// field of Limits, with each preset's value, so that a new limit or a
// changed value cannot leave the document behind.
func TestSecurityDocListsEveryLimit(t *testing.T) {
	doc, err := os.ReadFile("../docs/SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	var presets []reflect.Value
	for _, name := range PresetNames {
		l, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		presets = append(presets, reflect.ValueOf(l))
	}
	typ := reflect.TypeFor[Limits]()
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		row := "| `" + name + "` |"
		for _, p := range presets {
			row += " " + limitCell(name, p.Field(i)) + " |"
		}
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/SECURITY.md lacks the row (or has other values):\n%s", row)
		}
	}
}
