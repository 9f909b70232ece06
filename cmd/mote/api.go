package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
)

// The control API is HTTP on a loopback address, like Kubo's RPC API:
// POST /api/v0/<command>?arg=…, JSON answers, errors as {"Message": …}.

// idInfo answers /api/v0/id.
type idInfo struct {
	ID              string
	PublicKey       string `json:",omitempty"`
	Addresses       []string
	AgentVersion    string
	Protocols       []string
	ProtocolVersion string `json:",omitempty"`
}

// peerInfo is one entry of /api/v0/swarm/peers.
type peerInfo struct {
	Peer      string
	Addr      string
	Direction string
	Transport string
	Security  string
	Muxer     string
	Agent     string `json:",omitempty"`
	Latency   string `json:",omitempty"`
}

type apiError struct{ Message string }

// serveAPI listens on addr (a loopback multiaddr), writes the bound
// address into the repo, and serves until ctx ends.
func serveAPI(ctx context.Context, repo string, addr string, n *node.Node) (func(), error) {
	m, err := ma.NewMultiaddr(addr)
	if err != nil {
		return nil, fmt.Errorf("api address %q: %w", addr, err)
	}
	if !manet.IsIPLoopback(m) {
		return nil, fmt.Errorf("api address %s: must be a loopback address", m)
	}
	ml, err := manet.Listen(m)
	if err != nil {
		return nil, fmt.Errorf("api listen %s: %w", m, err)
	}
	ln := manet.NetListener(ml)
	if err := writeFileAtomic(filepath.Join(repo, apiFile), []byte(ml.Multiaddr().String()+"\n"), 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("write api file: %w", err)
	}
	mux := http.NewServeMux()
	handle := func(path string, f func(r *http.Request) (any, error)) {
		mux.HandleFunc("/api/v0/"+path, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				w.WriteHeader(http.StatusMethodNotAllowed)
				return
			}
			v, err := f(r)
			w.Header().Set("Content-Type", "application/json")
			if err != nil {
				w.WriteHeader(http.StatusInternalServerError)
				v = apiError{err.Error()}
			}
			json.NewEncoder(w).Encode(v)
		})
	}
	handle("id", func(*http.Request) (any, error) { return selfInfo(n), nil })
	handle("swarm/peers", func(*http.Request) (any, error) { return swarmPeers(n), nil })
	handle("stats", func(*http.Request) (any, error) { return nodeStats(n), nil })
	handle("swarm/connect", func(r *http.Request) (any, error) {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		return swarmConnect(ctx, n, r.URL.Query()["arg"])
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return func() {
		srv.Close()
		<-done
		os.Remove(filepath.Join(repo, apiFile))
	}, nil
}

func selfInfo(n *node.Node) idInfo {
	info := idInfo{ID: n.ID().String(), AgentVersion: "mote/" + node.Version, Protocols: n.Protocols()}
	for _, a := range n.Addrs() {
		info.Addresses = append(info.Addresses, a.String()+"/p2p/"+n.ID().String())
	}
	return info
}

func swarmPeers(n *node.Node) []peerInfo {
	out := []peerInfo{}
	for _, c := range n.Conns("") {
		st := c.State()
		dir := "inbound"
		if st.Outbound {
			dir = "outbound"
		}
		id := c.RemotePeer()
		p := peerInfo{
			Peer: id.String(), Addr: c.RemoteMultiaddr().String(), Direction: dir,
			Transport: st.Transport, Security: st.Security, Muxer: st.Muxer,
			Agent: n.Peerstore().Agent(id),
		}
		if l := n.Peerstore().Latency(id); l > 0 {
			p.Latency = l.String()
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b peerInfo) int { return strings.Compare(a.Peer, b.Peer) })
	return out
}

func swarmConnect(ctx context.Context, n *node.Node, args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, errors.New("swarm connect: no address given")
	}
	var out []string
	for _, s := range args {
		id, addr, err := parsePeerAddr(s)
		if err != nil {
			return nil, err
		}
		c, err := n.Connect(ctx, id, addr)
		if err != nil {
			return nil, err
		}
		// Like go-libp2p's host.Connect, wait for identify: afterwards the
		// peer has registered the connection too, and its agent is known.
		select {
		case <-c.Identified():
		case <-ctx.Done():
			return nil, fmt.Errorf("connect %s: waiting for identify: %w", id, ctx.Err())
		}
		out = append(out, "connect "+id.String()+" success")
	}
	return out, nil
}

// apiClient talks to the daemon of a repo.
type apiClient struct {
	base string
	http *http.Client
}

// errNoDaemon means the repo has no running daemon.
var errNoDaemon = errors.New("no running daemon (start one with: mote daemon)")

func newAPIClient(repo string) (*apiClient, error) {
	b, err := os.ReadFile(filepath.Join(repo, apiFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoDaemon
	}
	if err != nil {
		return nil, err
	}
	m, err := ma.NewMultiaddr(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("api file: %w", err)
	}
	na, err := manet.ToNetAddr(m)
	if err != nil {
		return nil, fmt.Errorf("api file: %w", err)
	}
	return &apiClient{base: "http://" + na.String() + "/api/v0/", http: &http.Client{Timeout: 60 * time.Second}}, nil
}

func (c *apiClient) call(cmd string, args []string, out any) error {
	q := url.Values{"arg": args}
	resp, err := c.http.Post(c.base+cmd+"?"+q.Encode(), "", nil)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return errNoDaemon
		}
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			return errors.New(e.Message)
		}
		return fmt.Errorf("daemon answered %s", resp.Status)
	}
	return json.Unmarshal(body, out)
}

// parsePeerAddr splits "<addr>/p2p/<id>" into the peer and its address.
func parsePeerAddr(s string) (id peer.ID, addr ma.Multiaddr, err error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return "", nil, fmt.Errorf("address %q: %w", s, err)
	}
	addr, id, err = transport.SplitP2P(m)
	if err != nil {
		return "", nil, err
	}
	if id == "" {
		return "", nil, fmt.Errorf("address %s: must end in /p2p/<peer-id>", m)
	}
	return id, addr, nil
}
