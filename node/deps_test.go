package node

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestNodeDeps: node imports none of the packages built on it, so that
// each protocol stays a package above node (the layering DEVELOPERS.md
// sets) and a binary without a protocol does not link it.
func TestNodeDeps(t *testing.T) {
	const module = "github.com/mote-p2p/mote/"
	above := []string{
		"kademlia", "gossip", "autonat", "relayv2", "holepunch", "upnp", "mdns",
		"cmd", "interop", "fuzz", "bench", "examples",
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(gobin, "list", "-deps", module+"node").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %q", deps)
	}
	for _, d := range deps {
		for _, a := range above {
			if d == module+a || strings.HasPrefix(d, module+a+"/") {
				t.Errorf("node depends on %s", d)
			}
		}
	}
}
