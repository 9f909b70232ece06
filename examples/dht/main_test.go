package main

import "testing"

// TestExample runs the example against its own private DHT on loopback.
func TestExample(t *testing.T) {
	if err := run(nil); err != nil {
		t.Fatal(err)
	}
}
