//go:build nointerop

package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestInteropLeftOut(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"interop", "/ip4/127.0.0.1/tcp/1/p2p/x"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "built with the nointerop tag") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}
