package interop

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mote-p2p/mote/interop/check"
)

// TestMatrixKubo runs `mote interop --kubo`'s matrix (check.Run with a
// Kubo it drives) against a Kubo with its default transports, a
// Noise-only one and a TLS-only one, the variants given as --kubo-config
// would give them, each a DHT server as `mote interop --kubo` starts it,
// and asserts on every cell: each passes, or is n/a where the
// combination does not exist, except the push from Kubo, which Kubo
// cannot be made to send (not checked, with that reason). The DHT rows
// pass both ways: mote asks over /ipfs/kad/1.0.0 (on loopback Kubo
// serves its WAN DHT as well as the LAN one), Kubo asks mote's node over
// /ipfs/lan/kad/1.0.0 (the only one of its tables that takes a loopback
// peer).
func TestMatrixKubo(t *testing.T) {
	bin, err := KuboBinary(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		config  map[string]any
		missing string // the security protocol the variant lacks
	}{
		{"default", nil, ""},
		{"noise-only", map[string]any{"Swarm.Transports.Security.TLS": false}, "/tls/1.0.0"},
		{"tls-only", map[string]any{"Swarm.Transports.Security.Noise": false}, "/noise"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			k, err := check.StartKubo(ctx, bin, check.KuboOptions{Routing: "dhtserver", Config: tc.config})
			if err != nil {
				t.Fatal(err)
			}
			m, err := check.Run(ctx, check.Target{Peer: k}, check.Options{})
			if serr := k.Stop(); serr != nil {
				t.Errorf("stop kubo: %v", serr)
			}
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			m.WriteText(&text)
			t.Logf("\n%s", text.String())

			// Nothing is left behind.
			select {
			case <-k.Exited():
			default:
				t.Error("kubo not reaped after Stop")
			}
			if _, err := os.Stat(filepath.Dir(k.RepoPath())); !os.IsNotExist(err) {
				t.Errorf("kubo's directory is still there: %v", err)
			}

			if m.Driven == nil || m.Driven.Name != "Kubo" || m.Driven.Version != KuboVersion {
				t.Errorf("kubo in the matrix: %+v", m.Driven)
			}
			if len(m.Versions) != 1 || !strings.HasPrefix(m.Versions[0], "kubo/"+KuboVersion) {
				t.Errorf("agent versions seen: %v", m.Versions)
			}
			checkKuboMatrix(t, m, tc.missing)
		})
	}
}

// checkKuboMatrix asserts on every cell of a matrix against Kubo: all
// pass but what Kubo lacks, its push, which it cannot be made to send,
// and the out columns' cells of the DHT rows in which Kubo asks mote,
// which are checked in the in columns (HealthyPeer).
func checkKuboMatrix(t *testing.T, m *check.Matrix, missing string) {
	t.Helper()
	for _, e := range m.Mismatches(check.HealthyPeer(missing, map[string]check.Expectation{
		"push-received": {Status: check.NotChecked, Reason: "Kubo sent no push within 2 s of `ipfs p2p listen /x/mote-interop-push`"},
	})) {
		t.Error(e)
	}
}

// TestMatrixJS runs the runner from outside (`mote interop MULTIADDR`)
// against the js-libp2p peer, which listens on TCP only (Noise and TLS)
// and is not driven: every cell that needs no help from the peer passes.
func TestMatrixJS(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	p, err := StartJSPeer(ctx, t)
	if err != nil {
		t.Fatal(err)
	}
	m, err := check.Run(ctx, check.Target{Addrs: p.Addrs()}, check.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	m.WriteText(&text)
	t.Logf("\n%s", text.String())
	if len(m.Versions) != 1 || m.Versions[0] != p.Agent() {
		t.Errorf("agent versions seen: %v, want %q", m.Versions, p.Agent())
	}
	if len(m.Columns) != 3 || len(m.Cells) != 3*len(m.Rows) {
		t.Fatalf("%d columns, %d cells", len(m.Columns), len(m.Cells))
	}
	for _, row := range m.Rows {
		for _, col := range m.Columns {
			want, reason := check.Pass, ""
			switch {
			case col.Transport == "quic-v1":
				want, reason = check.NA, "the peer has no quic-v1 address"
			case row.ID == "perf":
				want, reason = check.NA, "not advertised"
			case row.ID == "push-sent":
				want, reason = check.NotChecked, "what it kept is seen only from its side"
			case row.ID == "push-received":
				want, reason = check.NotChecked, "the peer pushed nothing"
			case row.ID == "ping-served":
				want, reason = check.NotChecked, "needs the peer to ping mote"
			case strings.HasPrefix(row.ID, "kad-") && strings.HasSuffix(row.ID, "-served"):
				want, reason = check.NotChecked, "needs the peer to query mote"
			case strings.HasPrefix(row.ID, "kad-"):
				want, reason = check.NA, "not advertised" // the js peer runs no DHT
			}
			c, ok := m.Cell(row.ID, col.Name)
			if !ok || c.Status != want || !strings.Contains(c.Reason, reason) {
				t.Errorf("%s / %s: %s %q (%s), want %s %q", row.ID, col.Name, c.Status, c.Reason, c.Detail, want, reason)
			}
		}
	}
}
