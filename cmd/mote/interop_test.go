//go:build !nointerop

package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mote-p2p/mote/identify"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/perf"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// interopPeer starts an in-process mote node on loopback TCP and QUIC
// that serves perf, changed by mod, and returns its addresses.
func interopPeer(t *testing.T, mod func(*node.Node)) []string {
	t.Helper()
	n, err := node.New(node.Config{ListenAddrs: []ma.Multiaddr{
		ma.StringCast("/ip4/127.0.0.1/tcp/0"), ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	n.SetHandler(perf.ID, servePerf)
	if mod != nil {
		mod(n)
	}
	var addrs []string
	for _, a := range n.Addrs() {
		addrs = append(addrs, a.String()+"/p2p/"+n.ID().String())
	}
	return addrs
}

func runMote(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestInteropGoodPeer: against a mote node nothing fails, so the exit
// status is 0; --quiet leaves stderr empty; the JSON and Markdown files
// hold the same matrix. (From outside, the checks that need the peer's
// side are not checked, with the reason.)
func TestInteropGoodPeer(t *testing.T) {
	addrs := interopPeer(t, nil)
	dir := t.TempDir()
	jsonFile, mdFile := filepath.Join(dir, "m.json"), filepath.Join(dir, "m.md")
	code, stdout, stderr := runMote(append([]string{"interop", "--quiet", "--timeout", "5s", "--json", jsonFile, "--markdown", mdFile}, addrs...)...)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
	for _, s := range []string{"tcp+noise out", "tcp+tls out", "quic-v1 out", " 0 FAIL,", "perf           mote asks peer                  pass"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout)
		}
	}
	if strings.Contains(stdout, "FAIL [") {
		t.Errorf("a cell failed:\n%s", stdout)
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Peer     string
		Versions []string
		Cells    []struct{ Row, Column, Status string }
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Cells) != 27*3 || len(m.Versions) != 1 || m.Versions[0] != "mote/"+node.Version || !strings.HasSuffix(addrs[0], m.Peer) {
		t.Errorf("JSON: peer %s, versions %v, %d cells", m.Peer, m.Versions, len(m.Cells))
	}
	md, err := os.ReadFile(mdFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| protocol | check | tcp+noise out | tcp+tls out | quic-v1 out |") {
		t.Errorf("markdown:\n%s", md)
	}
}

// TestInteropBrokenPeer: a peer whose signed record is not its own fails
// the record check, and the exit status says so.
func TestInteropBrokenPeer(t *testing.T) {
	other, err := peer.GenerateEd25519(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	addrs := interopPeer(t, func(n *node.Node) {
		n.SetHandler(identify.ID, func(s *node.Stream) {
			rec, err := peer.SealPeerRecord(other, &peer.PeerRecord{ID: peer.IDFromPublicKey(other.Public()), Seq: 1, Addrs: n.Addrs()})
			if err != nil {
				s.Reset()
				return
			}
			identify.Serve(s, &identify.Info{Key: n.Key(), ListenAddrs: n.Addrs(), Protocols: n.Protocols(), AgentVersion: "broken/1", SignedRecord: rec}, s.Conn().RemoteMultiaddr())
		})
	})
	code, stdout, stderr := runMote(append([]string{"interop", "--timeout", "5s"}, addrs...)...)
	if code != 1 || !strings.Contains(stderr, "Error: interop: some checks failed") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stderr, "[81/81] quic-v1 out: ") {
		t.Errorf("no progress on stderr:\n%s", stderr)
	}
	for _, s := range []string{"identify       signed peer record              FAIL [", "(signed with its key), not the peer's", " 3 FAIL,", "(broken/1)"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout)
		}
	}
}

func TestInteropUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"interop"}, 1, "want MULTIADDR/p2p/<id>"},
		{[]string{"interop", "--kubo-config", "A=1", "/ip4/127.0.0.1/tcp/1/p2p/x"}, 1, "--kubo-config needs --kubo"},
		{[]string{"interop", "--kubo", "/nonexistent/ipfs", "/ip4/127.0.0.1/tcp/1/p2p/x"}, 1, "give no addresses"},
		{[]string{"interop", "--kubo", "/nonexistent/ipfs", "--kubo-config", "A"}, 1, "want KEY=JSON"},
		{[]string{"interop", "--kubo", "/nonexistent/ipfs", "--kubo-config", "A=nope"}, 1, "want KEY=JSON"},
		{[]string{"interop", "--kubo", filepath.Join(t.TempDir(), "ipfs")}, 1, "no such file"},
		{[]string{"interop", "/ip4/127.0.0.1/tcp/1"}, 1, "has no /p2p/"},
		{[]string{"interop", "--bogus"}, 2, "flag provided but not defined: -bogus"},
	} {
		code, _, stderr := runMote(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("mote %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, stderr, tc.code, tc.want)
		}
	}
}
