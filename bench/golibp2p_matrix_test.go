package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/mote-p2p/mote/interop/check"
)

// TestMatrixGoLibp2p runs `mote interop`'s matrix (check.Run) against
// an in-process go-libp2p host it drives (check.Peer), as TestMatrixKubo
// in the main module does against Kubo: a host with TCP (TLS and Noise)
// and QUIC-v1, a Noise-only one and a TLS-only one. Every cell passes, or
// is n/a where the combination does not exist; unlike Kubo, go-libp2p
// can be made to push, so "peer pushes to mote" passes too. The host
// runs no DHT: Kubo's matrix covers those rows. -v prints the matrices
// (docs/INTEROP.md).
func TestMatrixGoLibp2p(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sec     libp2p.Option // nil: go-libp2p's default, TLS and Noise
		config  string
		missing string // the security protocol the variant lacks
	}{
		{"default", nil, "", ""},
		{"noise-only", libp2p.Security(noise.ID, noise.New), "libp2p.Security(noise)", "/tls/1.0.0"},
		{"tls-only", libp2p.Security(libp2ptls.ID, libp2ptls.New), "libp2p.Security(tls)", "/noise"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			p := startGoLibp2pPeer(t, tc.sec, tc.config)
			m, err := check.Run(ctx, check.Target{Peer: p}, check.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			m.WriteText(&text)
			t.Logf("\n%s", text.String())

			if m.Driven == nil || m.Driven.Name != "go-libp2p" || m.Driven.Version != "v0.51.0" {
				t.Errorf("go-libp2p in the matrix: %+v", m.Driven)
			}
			if len(m.Versions) != 1 || m.Versions[0] != p.agent {
				t.Errorf("agent versions seen: %v, want %q", m.Versions, p.agent)
			}
			checkGoLibp2pMatrix(t, m, tc.missing)
		})
	}
}

// checkGoLibp2pMatrix asserts on every cell of a matrix against go-libp2p:
// all pass but what the host lacks, its push included, and the DHT rows:
// the host runs no DHT, so mote's requests are n/a and the peer's are
// not checked.
func checkGoLibp2pMatrix(t *testing.T, m *check.Matrix, missing string) {
	t.Helper()
	noDHT := map[string]check.Expectation{}
	for _, row := range m.Rows {
		switch {
		case row.Protocol != "kad":
		case strings.HasSuffix(row.ID, "-served"):
			noDHT[row.ID] = check.Expectation{Status: check.NotChecked, Reason: "go-libp2p cannot be made to use the DHT"}
		default:
			noDHT[row.ID] = check.Expectation{Status: check.NA, Reason: "not advertised"}
		}
	}
	for _, e := range m.Mismatches(check.HealthyPeer(missing, noDHT)) {
		t.Error(e)
	}
}

// goLibp2pPeer is a go-libp2p host the runner drives in-process: the
// check.Peer that Kubo's CLI is for Kubo.
type goLibp2pPeer struct {
	h      host.Host
	agent  string
	config []string
}

var _ check.Peer = (*goLibp2pPeer)(nil)

// goLibp2pPushProto is the protocol TriggerPush adds.
const goLibp2pPushProto = "/mote-interop/golibp2p-push/1.0.0"

// startGoLibp2pPeer starts a host on 127.0.0.1 with TCP and QUIC-v1,
// identify and ping, the security protocols of sec (nil: go-libp2p's
// default, TLS and Noise), and no relay.
func startGoLibp2pPeer(t *testing.T, sec libp2p.Option, config string) *goLibp2pPeer {
	t.Helper()
	p := &goLibp2pPeer{agent: "go-libp2p/" + strings.TrimPrefix(goLibp2pVersion(), "v")}
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Ping(true),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent(p.agent),
	}
	if sec != nil {
		opts = append(opts, sec)
		p.config = []string{config}
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	p.h = h
	return p
}

// goLibp2pVersion is the version of go-libp2p this module requires
// ("v0.51.0"), from go.mod: test binaries carry no dependency versions.
func goLibp2pVersion() string {
	b, err := os.ReadFile("go.mod")
	if err != nil {
		return "unknown: " + err.Error()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "github.com/libp2p/go-libp2p "); ok {
			return strings.Fields(v)[0]
		}
	}
	return "unknown"
}

func (p *goLibp2pPeer) Info(context.Context) check.PeerInfo {
	return check.PeerInfo{Name: "go-libp2p", Version: goLibp2pVersion(), Config: p.config}
}

func (p *goLibp2pPeer) Addrs() []string {
	var out []string
	for _, a := range p.h.Addrs() {
		out = append(out, a.String()+"/p2p/"+p.h.ID().String())
	}
	return out
}

// SwarmConnect dials addr with host.Connect.
func (p *goLibp2pPeer) SwarmConnect(ctx context.Context, addr string) error {
	ai, err := lpeer.AddrInfoFromString(addr)
	if err != nil {
		return err
	}
	return p.h.Connect(ctx, *ai)
}

// IDOf reads the host's peerstore: what identify and push told it.
func (p *goLibp2pPeer) IDOf(_ context.Context, id string) (check.IDInfo, error) {
	pid, err := lpeer.Decode(id)
	if err != nil {
		return check.IDInfo{}, err
	}
	ps := p.h.Peerstore()
	info := check.IDInfo{ID: id}
	if v, err := ps.Get(pid, "AgentVersion"); err == nil {
		info.AgentVersion, _ = v.(string)
	}
	if pub := ps.PubKey(pid); pub != nil {
		if b, err := crypto.MarshalPublicKey(pub); err == nil {
			info.PublicKey = base64.StdEncoding.EncodeToString(b)
		}
	}
	protos, err := ps.GetProtocols(pid)
	if err != nil {
		return info, err
	}
	for _, pr := range protos {
		info.Protocols = append(info.Protocols, string(pr))
	}
	for _, a := range ps.Addrs(pid) {
		info.Addresses = append(info.Addresses, a.String())
	}
	return info, nil
}

// Ping uses go-libp2p's ping service.
func (p *goLibp2pPeer) Ping(ctx context.Context, id string, n int) ([]time.Duration, error) {
	pid, err := lpeer.Decode(id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var rtts []time.Duration
	for res := range ping.Ping(ctx, p.h, pid) {
		if res.Error != nil {
			return rtts, res.Error
		}
		if rtts = append(rtts, res.RTT); len(rtts) == max(n, 1) {
			return rtts, nil
		}
	}
	return rtts, errors.New("ping ended early")
}

// TriggerPush adds a stream handler: the host's protocols change, and
// go-libp2p's identify pushes them to every connected peer.
func (p *goLibp2pPeer) TriggerPush(context.Context) (check.Push, error) {
	p.h.SetStreamHandler(goLibp2pPushProto, func(s network.Stream) { s.Reset() })
	return check.Push{
		Proto: goLibp2pPushProto,
		How:   fmt.Sprintf("host.SetStreamHandler(%q)", goLibp2pPushProto),
		Undo: func(context.Context) error {
			p.h.RemoveStreamHandler(goLibp2pPushProto)
			return nil
		},
	}, nil
}
