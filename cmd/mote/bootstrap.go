package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// defaultBootstrap is the public IPFS bootstrap list, Kubo's fallback
// list (boxo v0.42 autoconf/fallbacks.go, "matching Kubo 0.36"), which a
// new repo gets unless `mote init --profile=test` made it.
var defaultBootstrap = []string{
	"/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
	"/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa",
	"/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb",
	"/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt",
	"/dnsaddr/va1.bootstrap.libp2p.io/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8",
	"/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
	"/ip4/104.131.131.82/udp/4001/quic-v1/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
}

// profiles adjust a new repo's config, as Kubo's `ipfs init --profile`.
var profiles = map[string]func(*repoConfig){
	// test: loopback only, random ports, no bootstrap peers: a node that
	// reaches no one it is not told of (Kubo's test profile).
	"test": func(c *repoConfig) {
		c.Addresses.Swarm = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
		c.Bootstrap = []string{}
	},
}

// cmdInit implements `mote init [--repo DIR] [--profile NAME]`.
func cmdInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("init", stderr)
	repo := fs.String("repo", defaultRepoDir(), "repo directory")
	profile := fs.String("profile", "", "adjust the new config: test (loopback only, no bootstrap peers)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	apply, ok := profiles[*profile]
	if *profile != "" && !ok {
		return fmt.Errorf("init: unknown profile %q (have: test)", *profile)
	}
	if _, err := os.Stat(filepath.Join(*repo, configFile)); err == nil {
		return fmt.Errorf("init: %s already holds a repo", *repo)
	}
	key, cfg, err := openRepo(*repo)
	if err != nil {
		return err
	}
	if apply != nil {
		apply(cfg)
		if err := writeConfig(*repo, cfg); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, "initialized repo", *repo)
	fmt.Fprintln(stdout, "peer identity:", peer.IDFromPublicKey(key.Public()))
	return nil
}

// resolveBootstrap turns the bootstrap list into peers, resolving
// /dnsaddr entries through the system resolver (within
// ma.MaxDNSAddrDepth and ma.MaxDNSAddrs). Entries that fail are reported
// to stderr and skipped.
func resolveBootstrap(ctx context.Context, list []string, stderr io.Writer) []peer.AddrInfo {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var addrs []ma.Multiaddr
	for _, s := range list {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			fmt.Fprintf(stderr, "bootstrap: %q: %v\n", s, err)
			continue
		}
		got, err := ma.ResolveDNSAddr(ctx, net.DefaultResolver.LookupTXT, m)
		if err != nil {
			fmt.Fprintln(stderr, "bootstrap:", err)
		}
		addrs = append(addrs, got...)
	}
	var usable []ma.Multiaddr
	for _, a := range addrs {
		if _, id, err := peer.SplitP2P(a); err == nil && id != "" {
			usable = append(usable, a)
		}
	}
	ais, err := peer.AddrInfosFromP2pAddrs(usable...)
	if err != nil {
		fmt.Fprintln(stderr, "bootstrap:", err)
	}
	return ais
}

// peersFile keeps the DHTs' routing-table peers across restarts, so that
// a daemon reconnects to the network at once rather than through the
// bootstrap list alone.
const peersFile = "dht-peers.json"

// maxSavedPeers bounds the peers saved and reloaded.
const maxSavedPeers = 64

// saveDHTPeers writes the routing tables' peers (most recently useful
// first) with their known addresses to the repo.
func saveDHTPeers(repo string, d *kademlia.Dual) error {
	type entry struct {
		id     peer.ID
		useful time.Time
	}
	var es []entry
	for _, x := range []*kademlia.DHT{d.WAN, d.LAN} {
		for _, b := range x.RoutingTable().Buckets() {
			for _, p := range b.Peers {
				es = append(es, entry{p.ID, p.LastUseful})
			}
		}
	}
	slices.SortFunc(es, func(a, b entry) int { return b.useful.Compare(a.useful) })
	out := []string{}
	seen := map[peer.ID]bool{}
	for _, e := range es {
		if seen[e.id] || len(seen) == maxSavedPeers {
			continue
		}
		seen[e.id] = true
		addrs := append(d.WAN.AddrsOf(e.id), d.LAN.AddrsOf(e.id)...)
		ps, err := peer.AddrInfo{ID: e.id, Addrs: addrs}.P2pAddrs()
		if err != nil {
			continue
		}
		for _, a := range ps {
			out = append(out, a.String())
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(repo, peersFile), append(b, '\n'), 0o600)
}

// loadDHTPeers reads the peers saveDHTPeers wrote; a missing file is no
// peers.
func loadDHTPeers(repo string) ([]peer.AddrInfo, error) {
	b, err := os.ReadFile(filepath.Join(repo, peersFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", peersFile, err)
	}
	var addrs []ma.Multiaddr
	for _, s := range list {
		if a, err := ma.NewMultiaddr(s); err == nil {
			addrs = append(addrs, a)
		}
	}
	ais, err := peer.AddrInfosFromP2pAddrs(addrs...)
	if len(ais) > maxSavedPeers {
		ais = ais[:maxSavedPeers]
	}
	return ais, err
}
