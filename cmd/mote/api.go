package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/transport"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// The control API listens on a loopback address written into the repo, as
// Kubo's does, but speaks one JSON line each way per connection instead of
// HTTP: {"Cmd": "swarm/connect", "Args": […]} in, {"Error": …, "Result": …}
// out. net/http would add about a megabyte to the binary for four
// commands.

// apiRequest is one command sent to the daemon.
type apiRequest struct {
	Cmd  string
	Args []string `json:",omitempty"`
}

// apiResponse is the daemon's answer.
type apiResponse struct {
	Error  string          `json:",omitempty"`
	Result json.RawMessage `json:",omitempty"`
}

const (
	maxAPIRequest = 64 << 10 // bytes in one request line
	maxAPIClients = 16       // requests served at once
)

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

// serveAPI listens on addr (a loopback multiaddr), writes the bound
// address into the repo, and serves until the returned stop function is
// called.
func serveAPI(ctx context.Context, repo string, addr string, n *node.Node) (func(), error) {
	m, err := ma.NewMultiaddr(addr)
	if err != nil {
		return nil, fmt.Errorf("api address %q: %w", addr, err)
	}
	if !ma.IsIPLoopback(m) {
		return nil, fmt.Errorf("api address %s: must be a loopback address", m)
	}
	ml, err := ma.Listen(m)
	if err != nil {
		return nil, fmt.Errorf("api listen %s: %w", m, err)
	}
	ln := ma.NetListener(ml)
	if err := writeFileAtomic(filepath.Join(repo, apiFile), []byte(ml.Multiaddr().String()+"\n"), 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("write api file: %w", err)
	}
	commands := map[string]func(ctx context.Context, args []string) (any, error){
		"id":          func(context.Context, []string) (any, error) { return selfInfo(n), nil },
		"swarm/peers": func(context.Context, []string) (any, error) { return swarmPeers(n), nil },
		"stats":       func(context.Context, []string) (any, error) { return nodeStats(n), nil },
		"swarm/connect": func(ctx context.Context, args []string) (any, error) {
			return swarmConnect(ctx, n, args)
		},
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the API's accept loop, owned by serveAPI's caller
		defer wg.Done()
		slots := make(chan struct{}, maxAPIClients)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				c.Close()
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				serveAPIConn(ctx, c, commands)
			}()
		}
	}()
	return func() {
		cancel()
		ln.Close()
		wg.Wait()
		os.Remove(filepath.Join(repo, apiFile))
	}, nil
}

// serveAPIConn answers the one request of a client connection.
func serveAPIConn(ctx context.Context, c net.Conn, commands map[string]func(context.Context, []string) (any, error)) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReaderSize(io.LimitReader(c, maxAPIRequest), 4096).ReadBytes('\n')
	if err != nil {
		return
	}
	var req apiRequest
	var resp apiResponse
	if err := json.Unmarshal(line, &req); err != nil {
		resp.Error = "bad request: " + err.Error()
	} else if f, ok := commands[req.Cmd]; !ok {
		resp.Error = fmt.Sprintf("unknown command %q", req.Cmd)
	} else {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		v, err := f(cctx, req.Args)
		cancel()
		if err != nil {
			resp.Error = err.Error()
		} else if resp.Result, err = json.Marshal(v); err != nil {
			resp.Error = err.Error()
		}
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	b, _ := json.Marshal(resp)
	c.Write(append(b, '\n'))
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
	addr string // host:port of the daemon's API
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
	na, err := ma.ToNetAddr(m)
	if err != nil {
		return nil, fmt.Errorf("api file: %w", err)
	}
	return &apiClient{addr: na.String()}, nil
}

// call runs one command on the daemon and decodes its result into out.
func (c *apiClient) call(cmd string, args []string, out any) error {
	conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return errNoDaemon
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(90 * time.Second))
	req, _ := json.Marshal(apiRequest{Cmd: cmd, Args: args})
	if _, err := conn.Write(append(req, '\n')); err != nil {
		return fmt.Errorf("daemon API: %w", err)
	}
	line, err := bufio.NewReader(io.LimitReader(conn, 16<<20)).ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("daemon API: %w", err)
	}
	var resp apiResponse
	if err := json.Unmarshal(line, &resp); err != nil {
		return fmt.Errorf("daemon API: %w", err)
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	return json.Unmarshal(resp.Result, out)
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
