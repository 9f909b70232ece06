package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mote-p2p/mote/ipns"
	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/wire/cid"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// apiFunc is one command of the daemon's API.
type apiFunc = func(ctx context.Context, args []string) (any, error)

// dhtModes maps the daemon's --dht values, and Kubo's Routing.Type words
// in the repo config, to a mode; "off" runs no DHT.
var dhtModes = map[string]string{
	"auto": "auto", "client": "client", "server": "server", "off": "off",
	// Kubo's Routing.Type.
	"dht": "auto", "dhtclient": "client", "dhtserver": "server", "none": "off", "autoclient": "client",
}

// startDHT starts the public and the LAN DHT on n in mode (a dhtModes
// value), or nothing for "off", within budget.
func startDHT(n *node.Node, mode string, budget kademlia.Budget) (*kademlia.Dual, error) {
	if mode == "" {
		mode = "auto"
	}
	m, ok := dhtModes[mode]
	if !ok {
		return nil, fmt.Errorf("--dht %q: want auto, client, server or off", mode)
	}
	if m == "off" {
		return nil, nil
	}
	km, err := kademlia.ParseMode(m)
	if err != nil {
		return nil, err
	}
	cfg := kademlia.Config{Mode: km}
	budget.Apply(&cfg)
	return kademlia.NewDual(n, cfg)
}

// effectiveDHTBudget is the preset's DHT budget with the repo's
// overrides.
func effectiveDHTBudget(cfg *repoConfig, preset string) (kademlia.Budget, error) {
	b, err := kademlia.PresetBudget(preset)
	if err != nil {
		return kademlia.Budget{}, err
	}
	return b.Override(cfg.DHT.Limits), nil
}

// peerOut is a peer and its addresses, as the dht commands print them.
type peerOut struct {
	ID    string
	Addrs []string
}

func peerOutOf(ai peer.AddrInfo) peerOut {
	p := peerOut{ID: ai.ID.String(), Addrs: []string{}}
	for _, a := range ai.Addrs {
		p.Addrs = append(p.Addrs, a.String())
	}
	return p
}

// valueOut answers dht/get.
type valueOut struct {
	Key   string
	Value []byte // base64 in JSON
	// IPNS is the decoded record of an /ipns/ key.
	IPNS *ipnsOut `json:",omitempty"`
}

// dhtStats answers stats/dht.
type dhtStats struct {
	WAN, LAN kademlia.Stats
	// Reprovide is each DHT's reproviding of the daemon's keys.
	Reprovide map[string]reprovideOut `json:",omitempty"`
}

// parseDHTKey turns "/pk/<id>" or "/ipns/<id>" (the peer ID in any text
// form) into the binary record key: the namespace, then the binary ID.
func parseDHTKey(s string) (string, error) {
	rest, ok := strings.CutPrefix(s, "/")
	ns, idText, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || (ns != "pk" && ns != "ipns") {
		return "", fmt.Errorf("key %q: want /pk/<peer-id> or /ipns/<peer-id>", s)
	}
	id, err := peer.Decode(idText)
	if err != nil {
		return "", fmt.Errorf("key %q: %w", s, err)
	}
	return "/" + ns + "/" + string(id), nil
}

// parseContentKey turns a CID into the multihash the DHT keys providers
// by.
func parseContentKey(s string) ([]byte, error) {
	c, err := cid.Parse(s)
	if err != nil {
		return nil, err
	}
	return c.Multihash, nil
}

// keysFile lists the keys the daemon provides, one per line, so that a
// restart keeps reproviding them (kademlia.KeyStore).
const keysFile = "provided-keys"

// reproviders are the daemon's own keys and their reproviders, one per
// DHT.
type reproviders struct {
	keys     *kademlia.KeyStore
	wan, lan *kademlia.Reprovider
}

// startReproviders opens the repo's key list and reprovides it in both
// DHTs every 22 hours (Kubo's Provide.DHT.Interval), sweeping.
func startReproviders(repo string, d *kademlia.Dual) (*reproviders, error) {
	ks, err := kademlia.OpenKeyStore(filepath.Join(repo, keysFile), 0)
	if err != nil {
		return nil, err
	}
	return &reproviders{keys: ks, wan: d.WAN.StartReprovider(ks, 0), lan: d.LAN.StartReprovider(ks, 0)}, nil
}

// reprovideOut is a reprovider's state in stats/dht.
type reprovideOut struct {
	Keys    int
	LastRun time.Time                `json:",omitempty"`
	Last    *kademlia.ReprovideStats `json:",omitempty"`
}

func (r *reproviders) out(x *kademlia.Reprovider) reprovideOut {
	o := reprovideOut{Keys: r.keys.Len()}
	if st, at := x.LastRun(); !at.IsZero() {
		o.LastRun, o.Last = at, &st
	}
	return o
}

// dhtCommands are the API commands of a running DHT; rp, if not nil,
// keeps what dht/provide provides for reproviding.
func dhtCommands(d *kademlia.Dual, rp *reproviders) map[string]apiFunc {
	return map[string]apiFunc{
		"dht/findpeer": func(ctx context.Context, args []string) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("findpeer: want one peer ID")
			}
			id, err := peer.Decode(args[0])
			if err != nil {
				return nil, err
			}
			ai, err := d.FindPeer(ctx, id)
			if err != nil {
				return nil, err
			}
			return peerOutOf(ai), nil
		},
		"dht/findprovs": func(ctx context.Context, args []string) (any, error) {
			if len(args) != 2 {
				return nil, errors.New("findprovs: want N and a CID")
			}
			count, err := strconv.Atoi(args[0])
			if err != nil {
				return nil, fmt.Errorf("findprovs: count %q: %w", args[0], err)
			}
			key, err := parseContentKey(args[1])
			if err != nil {
				return nil, err
			}
			out := []peerOut{}
			for ai := range d.FindProvidersAsync(ctx, key, count) {
				out = append(out, peerOutOf(ai))
			}
			return out, nil
		},
		"dht/provide": func(ctx context.Context, args []string) (any, error) {
			if len(args) == 0 {
				return nil, errors.New("provide: want at least one CID")
			}
			var keys [][]byte
			for _, a := range args {
				k, err := parseContentKey(a)
				if err != nil {
					return nil, err
				}
				keys = append(keys, k)
			}
			out := []string{}
			for i, k := range keys {
				if err := d.Provide(ctx, k); err != nil {
					return nil, fmt.Errorf("provide %s: %w", args[i], err)
				}
				if rp != nil {
					if _, err := rp.keys.Add(k); err != nil {
						return nil, fmt.Errorf("provide %s: keep for reproviding: %w", args[i], err)
					}
				}
				out = append(out, args[i])
			}
			return out, nil
		},
		"dht/get": func(ctx context.Context, args []string) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("get: want one key")
			}
			key, err := parseDHTKey(args[0])
			if err != nil {
				return nil, err
			}
			v, err := d.GetValue(ctx, key)
			if err != nil {
				return nil, err
			}
			out := valueOut{Key: args[0], Value: v}
			if name, ok := strings.CutPrefix(key, ipns.NamespacePrefix); ok {
				// GetValue returned a record that validated.
				if r, err := ipns.Unmarshal(v); err == nil {
					rec := ipnsOutOf(peer.ID(name), r)
					out.IPNS = &rec
				}
			}
			return out, nil
		},
		"dht/put": func(ctx context.Context, args []string) (any, error) {
			if len(args) != 2 {
				return nil, errors.New("put: want a key and a value (base64)")
			}
			key, err := parseDHTKey(args[0])
			if err != nil {
				return nil, err
			}
			value, err := base64.StdEncoding.DecodeString(args[1])
			if err != nil {
				return nil, fmt.Errorf("put: value: %w", err)
			}
			if err := d.PutValue(ctx, key, value); err != nil {
				return nil, err
			}
			return valueOut{Key: args[0], Value: value}, nil
		},
		"dht/query": func(ctx context.Context, args []string) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("query: want one peer ID")
			}
			id, err := peer.Decode(args[0])
			if err != nil {
				return nil, err
			}
			ids, err := d.GetClosestPeers(ctx, []byte(id))
			if err != nil {
				return nil, err
			}
			out := []string{}
			for _, p := range ids {
				out = append(out, p.String())
			}
			return out, nil
		},
		"stats/dht": func(context.Context, []string) (any, error) {
			st := dhtStats{WAN: d.WAN.Stats(), LAN: d.LAN.Stats()}
			if rp != nil {
				st.Reprovide = map[string]reprovideOut{"WAN": rp.out(rp.wan), "LAN": rp.out(rp.lan)}
			}
			return st, nil
		},
	}
}

// caller runs one API command: on the repo's daemon, or on a throwaway
// node for one-shot commands.
type caller func(cmd string, args []string, out any) error

// dhtCaller is the daemon of repo, or, when bootstrap names peers, a
// throwaway node with a client DHT bootstrapped from them; close ends it.
func dhtCaller(ctx context.Context, repo string, bootstrap []string) (call caller, close func(), err error) {
	if len(bootstrap) == 0 {
		c, err := newAPIClient(repo)
		if err != nil {
			return nil, nil, err
		}
		return c.call, func() {}, nil
	}
	var peers []peer.AddrInfo
	for _, b := range bootstrap {
		m, err := ma.NewMultiaddr(b)
		if err != nil {
			return nil, nil, fmt.Errorf("--bootstrap %q: %w", b, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			return nil, nil, fmt.Errorf("--bootstrap %q: %w", b, err)
		}
		peers = append(peers, ai)
	}
	n, err := node.New(node.Config{})
	if err != nil {
		return nil, nil, err
	}
	d, err := kademlia.NewDual(n, kademlia.Config{Mode: kademlia.ModeClient, RefreshInterval: -1})
	if err != nil {
		n.Close()
		return nil, nil, err
	}
	stop := func() { d.Close(); n.Close() }
	if err := d.Bootstrap(node.Explicit(ctx), peers...); err != nil {
		stop()
		return nil, nil, err
	}
	cmds := dhtCommands(d, nil)
	for k, f := range nameCommands(n, d) {
		cmds[k] = f
	}
	return func(cmd string, args []string, out any) error {
		f, ok := cmds[cmd]
		if !ok {
			return fmt.Errorf("unknown command %q", cmd)
		}
		v, err := f(ctx, args)
		if err != nil {
			return err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, out)
	}, stop, nil
}

const dhtUsage = `usage: mote dht <subcommand> [flags] ARGS

subcommands (on the running daemon of --repo, or with --bootstrap
MULTIADDR/p2p/<id> on a throwaway client node):
  findpeer ID          the addresses of a peer
  findprovs [-n N] CID providers of a CID (default: up to 20)
  provide CID...       announce that the daemon provides each CID
  get KEY              a record: /pk/<id> or /ipns/<id>
  put KEY FILE         put the record in FILE (- for stdin) under KEY
  query ID             the peers closest to ID
`

// cmdDHT implements `mote dht ...`.
func cmdDHT(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, dhtUsage)
		return flag.ErrHelp
	}
	sub := args[0]
	fs := newFlags("dht "+sub, stderr)
	repo := fs.String("repo", defaultRepoDir(), "repo directory")
	asJSON := fs.Bool("json", false, "print JSON")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	var bootstrap multiFlag
	fs.Var(&bootstrap, "bootstrap", "run on a throwaway client node bootstrapped from MULTIADDR/p2p/<id> (repeatable) instead of the daemon")
	count := fs.Int("n", kademlia.K, "findprovs: how many providers to find")
	nargs := map[string]int{"findpeer": 1, "findprovs": 1, "provide": -1, "get": 1, "put": 2, "query": 1}
	want, ok := nargs[sub]
	if !ok {
		fmt.Fprintf(stderr, "mote dht: unknown subcommand %q\n%s", sub, dhtUsage)
		return errUsage
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if (want >= 0 && fs.NArg() != want) || (want < 0 && fs.NArg() == 0) {
		fmt.Fprint(stderr, dhtUsage)
		return errUsage
	}
	ctx, cancel := commandContext(*timeout)
	defer cancel()
	call, done, err := dhtCaller(ctx, *repo, bootstrap)
	if err != nil {
		return err
	}
	defer done()
	print := func(v any, text func()) error {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		}
		text()
		return nil
	}
	a := fs.Args()
	switch sub {
	case "findpeer":
		var p peerOut
		if err := call("dht/findpeer", a, &p); err != nil {
			return err
		}
		return print(p, func() {
			for _, addr := range p.Addrs {
				fmt.Fprintln(stdout, addr)
			}
		})
	case "findprovs":
		var ps []peerOut
		if err := call("dht/findprovs", []string{strconv.Itoa(*count), a[0]}, &ps); err != nil {
			return err
		}
		return print(ps, func() {
			for _, p := range ps {
				fmt.Fprintln(stdout, p.ID)
			}
		})
	case "provide":
		var done []string
		if err := call("dht/provide", a, &done); err != nil {
			return err
		}
		return print(done, func() {
			for _, c := range done {
				fmt.Fprintln(stdout, "provided", c)
			}
		})
	case "get":
		var v valueOut
		if err := call("dht/get", a, &v); err != nil {
			return err
		}
		return print(v, func() {
			if r := v.IPNS; r != nil {
				fmt.Fprintf(stdout, "Value: %s\nSequence: %d\nValidity: %s\nTTL: %s\n", r.Value, r.Sequence, r.Validity.Format(time.RFC3339Nano), r.TTL)
				return
			}
			stdout.Write(v.Value)
		})
	case "put":
		var data []byte
		if a[1] == "-" {
			data, err = io.ReadAll(io.LimitReader(os.Stdin, kademlia.DefaultMaxValueSize+1))
		} else {
			data, err = os.ReadFile(a[1])
		}
		if err != nil {
			return err
		}
		if len(data) > kademlia.DefaultMaxValueSize {
			return fmt.Errorf("put: a record of more than %d bytes would be refused by every peer", kademlia.DefaultMaxValueSize)
		}
		var v valueOut
		if err := call("dht/put", []string{a[0], base64.StdEncoding.EncodeToString(data)}, &v); err != nil {
			return err
		}
		return print(v, func() { fmt.Fprintln(stdout, "put", v.Key) })
	case "query":
		var ids []string
		if err := call("dht/query", a, &ids); err != nil {
			return err
		}
		return print(ids, func() {
			for _, id := range ids {
				fmt.Fprintln(stdout, id)
			}
		})
	}
	return nil
}

// addDHTLimits adds to limits how often each of the DHTs' limits fired
// (the kad.Max… counters, summed over the WAN and LAN DHTs), so that
// `mote stats` lists them with the node's.
func addDHTLimits(limits map[string]uint64, d *kademlia.Dual) {
	for _, x := range []*kademlia.DHT{d.WAN, d.LAN} {
		for name, v := range x.Stats().Counters {
			if strings.HasPrefix(name, "kad.Max") {
				limits[name] += v
			}
		}
	}
}
