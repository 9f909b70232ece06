package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
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
// HTTP: {"Cmd": "swarm/connect", "Args": […], "Token": …} in,
// {"Error": …, "Result": …} out. net/http would add about a megabyte to
// the binary for four commands.
//
// A loopback port is open to every local user, and swarm/connect makes the
// daemon dial anywhere, so every request must carry a token that only the
// repo's owner can read: the daemon draws a new one at each start and
// writes it as the second line of the 0600 api file, after the address
// (the first line alone is what older daemons wrote, and what Kubo's api
// file holds). A Unix socket with 0600 permissions would need no token,
// but would drop the TCP port of Addresses.API and works differently on
// Windows.

// apiRequest is one command sent to the daemon.
type apiRequest struct {
	Cmd   string
	Args  []string `json:",omitempty"`
	Token string   // from the repo's api file
}

// apiResponse is the daemon's answer.
type apiResponse struct {
	Error  string          `json:",omitempty"`
	Result json.RawMessage `json:",omitempty"`
}

const (
	maxAPIRequest = 64 << 10 // bytes in one request line
	maxAPIClients = 16       // requests served at once
	apiTokenBytes = 32       // random bytes of the token, hex in the api file

	// A client that connected holds one of the maxAPIClients slots, so
	// every phase of a connection is bounded: a legitimate client sends its
	// request at once, and a silent or trickling one (which need not know
	// the token) loses its slot after apiReadTimeout. Only a client with
	// the token gets the longer apiCommandTimeout, which swarm/connect
	// needs for a slow dial and identify. The whole connection thus ends
	// within apiReadTimeout+apiCommandTimeout+apiWriteTimeout (80 s).
	apiReadTimeout    = 10 * time.Second
	apiCommandTimeout = 60 * time.Second
	apiWriteTimeout   = 10 * time.Second
)

// errAPIToken answers a request without the right token; it does not say
// which of the two was wrong.
var errAPIToken = errors.New("unauthorized: missing or wrong API token (mote reads it from <repo>/api)")

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
// address and a new token into the repo's api file, and serves requests
// carrying that token until the returned stop function is called. extra
// adds the commands of services (the DHT).
func serveAPI(ctx context.Context, repo string, addr string, n *node.Node, extra map[string]apiFunc) (func(), error) {
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
	// crypto/rand.Read never fails (it crashes the program instead).
	secret := make([]byte, apiTokenBytes)
	rand.Read(secret)
	token := []byte(hex.EncodeToString(secret))
	// writeFileAtomic creates the temp file 0600 in the repo and renames
	// it, so the token is never in a file others may read, even briefly.
	content := ml.Multiaddr().String() + "\n" + string(token) + "\n"
	if err := writeFileAtomic(filepath.Join(repo, apiFile), []byte(content), 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("write api file: %w", err)
	}
	commands := map[string]apiFunc{
		"id":          func(context.Context, []string) (any, error) { return selfInfo(n), nil },
		"swarm/peers": func(context.Context, []string) (any, error) { return swarmPeers(n), nil },
		"stats":       func(context.Context, []string) (any, error) { return nodeStats(n), nil },
		"swarm/connect": func(ctx context.Context, args []string) (any, error) {
			return swarmConnect(ctx, n, args)
		},
	}
	for name, f := range extra {
		commands[name] = f
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the API's accept loop, owned by serveAPI's caller
		defer wg.Done()
		slots := make(chan struct{}, maxAPIClients)
		var delay time.Duration
		for {
			c, err := ln.Accept()
			if err != nil && transport.AcceptRetryable(err) && ctx.Err() == nil {
				// Out of descriptors, say: the API comes back once they
				// are, as the swarm listeners do, rather than never.
				delay = transport.AcceptBackoff(delay)
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
				continue
			}
			if err != nil {
				return
			}
			delay = 0
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
				serveAPIConn(ctx, c, token, commands)
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

// serveAPIConn answers the one request of a client connection, if it
// carries token, and closes the connection.
func serveAPIConn(ctx context.Context, c net.Conn, token []byte, commands map[string]func(context.Context, []string) (any, error)) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c.SetReadDeadline(time.Now().Add(apiReadTimeout))
	line, err := bufio.NewReaderSize(io.LimitReader(c, maxAPIRequest), 4096).ReadBytes('\n')
	if err != nil {
		return
	}
	var req apiRequest
	var resp apiResponse
	if err := json.Unmarshal(line, &req); err != nil {
		resp.Error = "bad request: " + err.Error()
	} else if subtle.ConstantTimeCompare([]byte(req.Token), token) != 1 {
		// Constant time, so that the answer's timing does not tell how
		// much of a guess was right.
		resp.Error = errAPIToken.Error()
	} else if f, ok := commands[req.Cmd]; !ok {
		resp.Error = fmt.Sprintf("unknown command %q", req.Cmd)
	} else {
		cctx, cancel := context.WithTimeout(ctx, apiCommandTimeout)
		v, err := f(cctx, req.Args)
		cancel()
		if err != nil {
			resp.Error = err.Error()
		} else if resp.Result, err = json.Marshal(v); err != nil {
			resp.Error = err.Error()
		}
	}
	c.SetWriteDeadline(time.Now().Add(apiWriteTimeout))
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
		c, err := n.Connect(node.Explicit(ctx), id, addr) // the user's address: no dial filter
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
	addr  string // host:port of the daemon's API
	token string // sent with every request
}

// errNoDaemon means the repo has no running daemon.
var errNoDaemon = errors.New("no running daemon (start one with: mote daemon)")

// newAPIClient reads the address and token of the repo's daemon from its
// api file: the address on the first line, the token on the second. A file
// without the second line (from an older daemon, which checks no token)
// gives a client that sends an empty token.
func newAPIClient(repo string) (*apiClient, error) {
	path := filepath.Join(repo, apiFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoDaemon
	}
	if err != nil {
		return nil, err
	}
	addr, token, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	m, err := ma.NewMultiaddr(strings.TrimSpace(addr))
	if err != nil {
		return nil, fmt.Errorf("api file %s: %w", path, err)
	}
	na, err := ma.ToNetAddr(m)
	if err != nil {
		return nil, fmt.Errorf("api file %s: %w", path, err)
	}
	return &apiClient{addr: na.String(), token: strings.TrimSpace(token)}, nil
}

// call runs one command on the daemon and decodes its result into out.
func (c *apiClient) call(cmd string, args []string, out any) error {
	conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return errNoDaemon
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(90 * time.Second))
	req, _ := json.Marshal(apiRequest{Cmd: cmd, Args: args, Token: c.token})
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
	addr, id, err = peer.SplitP2P(m)
	if err != nil {
		return "", nil, err
	}
	if id == "" {
		return "", nil, fmt.Errorf("address %s: must end in /p2p/<peer-id>", m)
	}
	return id, addr, nil
}
