package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mote-p2p/mote/ipns"
	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/wire/cid"
)

// ipnsOut is a decoded IPNS record, as `mote name resolve --json` and
// `mote dht get --json /ipns/…` print it.
type ipnsOut struct {
	Name     string // the key's name, k51… as Kubo prints it
	Value    string
	Sequence uint64
	Validity time.Time
	TTL      string
}

func ipnsOutOf(id peer.ID, r *ipns.Record) ipnsOut {
	return ipnsOut{Name: ipns.Name(id), Value: string(r.Value), Sequence: r.Sequence, Validity: r.Validity, TTL: r.TTL.String()}
}

// nameCommands are the API commands of IPNS over the DHT, signing with
// n's key.
func nameCommands(n *node.Node, d *kademlia.Dual) map[string]apiFunc {
	return map[string]apiFunc{
		"name/publish": func(ctx context.Context, args []string) (any, error) {
			if len(args) != 3 {
				return nil, errors.New("name publish: want a path, a lifetime and a TTL")
			}
			path := args[0]
			if !strings.HasPrefix(path, "/ipfs/") && !strings.HasPrefix(path, "/ipns/") {
				if _, err := cid.Parse(path); err != nil {
					return nil, fmt.Errorf("name publish: %q is neither a path nor a CID", path)
				}
				path = "/ipfs/" + path
			}
			life, err := time.ParseDuration(args[1])
			if err != nil {
				return nil, fmt.Errorf("name publish: lifetime: %w", err)
			}
			ttl, err := time.ParseDuration(args[2])
			if err != nil {
				return nil, fmt.Errorf("name publish: ttl: %w", err)
			}
			id := n.ID()
			key := string(ipns.Key(id))
			// The next sequence number: one past the best record the
			// network (or our store) holds, as Kubo does.
			var seq uint64
			if old, err := d.GetValue(ctx, key); err == nil {
				if r, err := ipns.Unmarshal(old); err == nil {
					seq = r.Sequence + 1
				}
			}
			rec, err := ipns.Create(n.Key(), []byte(path), seq, time.Now().Add(life), ttl)
			if err != nil {
				return nil, err
			}
			if err := d.PutValue(ctx, key, rec); err != nil {
				return nil, fmt.Errorf("name publish: %w", err)
			}
			r, err := ipns.Unmarshal(rec)
			if err != nil {
				return nil, err
			}
			return ipnsOutOf(id, r), nil
		},
		"name/resolve": func(ctx context.Context, args []string) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("name resolve: want one name")
			}
			return resolveName(ctx, d, args[0])
		},
	}
}

// resolveName looks up the best record of an IPNS name (/ipns/<key> or
// the bare key) and checks it.
func resolveName(ctx context.Context, d *kademlia.Dual, name string) (ipnsOut, error) {
	if !strings.HasPrefix(name, "/ipns/") {
		name = "/ipns/" + name
	}
	id, err := ipns.ParsePath(name)
	if err != nil {
		return ipnsOut{}, err
	}
	v, err := d.GetValue(ctx, string(ipns.Key(id)))
	if err != nil {
		return ipnsOut{}, fmt.Errorf("resolve %s: %w", name, err)
	}
	r, err := ipns.Validate(id, v, time.Now())
	if err != nil {
		return ipnsOut{}, fmt.Errorf("resolve %s: %w", name, err)
	}
	return ipnsOutOf(id, r), nil
}

const nameUsage = `usage: mote name <subcommand> [flags] ARG

subcommands (on the running daemon of --repo):
  publish [--lifetime D] [--ttl D] /ipfs/CID   point the daemon's name at a path
  resolve [--bootstrap MULTIADDR/p2p/<id>] /ipns/NAME   the path a name points at
`

// cmdName implements `mote name publish|resolve`.
func cmdName(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "publish" && args[0] != "resolve") {
		fmt.Fprint(stderr, nameUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return errUsage
	}
	sub := args[0]
	fs := newFlags("name "+sub, stderr)
	repo := fs.String("repo", defaultRepoDir(), "repo directory")
	asJSON := fs.Bool("json", false, "print the record as JSON")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	lifetime := fs.Duration("lifetime", ipns.DefaultLifetime, "publish: how long the record is valid")
	ttl := fs.Duration("ttl", ipns.DefaultTTL, "publish: how long resolvers may cache it")
	var bootstrap multiFlag
	if sub == "resolve" {
		fs.Var(&bootstrap, "bootstrap", "resolve on a throwaway client node bootstrapped from MULTIADDR/p2p/<id> (repeatable) instead of the daemon")
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, nameUsage)
		return errUsage
	}
	ctx, cancel := commandContext(*timeout)
	defer cancel()
	call, done, err := dhtCaller(ctx, *repo, bootstrap)
	if err != nil {
		return err
	}
	defer done()
	var out ipnsOut
	if sub == "publish" {
		err = call("name/publish", []string{fs.Arg(0), lifetime.String(), ttl.String()}, &out)
	} else {
		err = call("name/resolve", []string{fs.Arg(0)}, &out)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if sub == "publish" {
		// Kubo's wording.
		fmt.Fprintf(stdout, "Published to %s: %s\n", out.Name, out.Value)
		return nil
	}
	fmt.Fprintln(stdout, out.Value)
	return nil
}
