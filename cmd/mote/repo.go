package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// The repo is a directory holding the node's identity and configuration,
// and while the daemon runs, the address of its control API.
const (
	keyFile    = "identity.key"
	configFile = "config.json"
	apiFile    = "api"
)

// repoConfig is config.json.
type repoConfig struct {
	Identity struct {
		PeerID string
	}
	Addresses struct {
		// Swarm lists the addresses the daemon listens on.
		Swarm []string
		// API is where the control API listens; loopback only.
		API string
		// Announce, when set, is advertised instead of the listen
		// addresses; AppendAnnounce besides them; NoAnnounce never
		// (addresses, or ranges as /ip4/A/ipcidr/N), as in Kubo.
		Announce       []string `json:",omitempty"`
		AppendAnnounce []string `json:",omitempty"`
		NoAnnounce     []string `json:",omitempty"`
		// TreatAsPublic lists IP ranges (CIDRs, e.g. "198.51.100.0/24")
		// counted as public addresses whatever their class.
		TreatAsPublic []string `json:",omitempty"`
	}
	Swarm struct {
		// AddrFilters lists ranges (/ip4/A/ipcidr/N, as Kubo's
		// Swarm.AddrFilters) never dialed for addresses learned from
		// the network. Unset (null): Kubo's server-profile ranges with
		// the server preset, none with the others; [] dials everything.
		AddrFilters []string
		// LimitLoopback applies the per-IP connection and handshake
		// limits to loopback peers too (node.Config.LimitLoopback): for
		// tests that attack a daemon from 127.0.0.2 and up. mote only.
		LimitLoopback bool `json:",omitempty"`
	}
	// Bootstrap lists peers (multiaddrs ending in /p2p/<id>) dialed at start.
	Bootstrap []string
	// DHT holds the DHT's bounds over the preset's (zero fields keep
	// the preset's; `mote config show --effective` prints them all).
	DHT struct {
		Limits kademlia.Budget
	}
	// Routing is Kubo's section of the same name.
	Routing struct {
		// Type is the DHT mode: auto (default), client, server or off,
		// or Kubo's words for them (dht, dhtclient, dhtserver, none).
		Type string `json:",omitempty"`
	}
	// Preset names the resource limits: server (default), mobile, iot or
	// low-memory. The daemon's --preset flag overrides it.
	Preset string `json:",omitempty"`
	// Limits overrides single fields of the preset.
	Limits node.Limits
	// ClassicKeyExchange has TLS and QUIC handshakes use X25519 alone,
	// without the post-quantum hybrid (node.Config.ClassicKeyExchange).
	ClassicKeyExchange bool `json:",omitempty"`
}

func newRepoConfig() *repoConfig {
	cfg := &repoConfig{}
	cfg.Addresses.Swarm = defaultSwarm
	cfg.Addresses.API = "/ip4/127.0.0.1/tcp/0"
	cfg.Bootstrap = slices.Clone(defaultBootstrap)
	return cfg
}

func defaultRepoDir() string {
	if d := os.Getenv("MOTE_PATH"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".mote"
	}
	return filepath.Join(home, ".mote")
}

// defaultSwarm is where a new repo's daemon listens: TCP and QUIC on port
// 4001, IPv4 and IPv6 (the IPv6 ones are skipped on hosts without IPv6).
var defaultSwarm = []string{
	"/ip4/0.0.0.0/tcp/4001",
	"/ip4/0.0.0.0/udp/4001/quic-v1",
	"/ip6/::/tcp/4001",
	"/ip6/::/udp/4001/quic-v1",
}

// openRepo loads the repo at dir, creating it (key and config) if absent.
func openRepo(dir string) (peer.PrivateKey, *repoConfig, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("repo %s: %w", dir, err)
	}
	key, _, err := peer.LoadOrCreateKey(filepath.Join(dir, keyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("repo %s: %w", dir, err)
	}
	id := peer.IDFromPublicKey(key.Public())
	cfg, err := readConfig(dir)
	if errors.Is(err, fs.ErrNotExist) {
		cfg, err = newRepoConfig(), nil
	}
	if err != nil {
		return nil, nil, err
	}
	if cfg.Identity.PeerID != id.String() {
		cfg.Identity.PeerID = id.String()
		if err := writeConfig(dir, cfg); err != nil {
			return nil, nil, err
		}
	}
	return key, cfg, nil
}

func readConfig(dir string) (*repoConfig, error) {
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return nil, err
	}
	var cfg repoConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("repo config %s: %w", filepath.Join(dir, configFile), err)
	}
	return &cfg, nil
}

func writeConfig(dir string, cfg *repoConfig) error {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, configFile), append(b, '\n'), 0o600)
}

func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// announceConfig reads the Addresses fields that shape what the node
// advertises, and the dial filter for the preset in force, into c.
func (cfg *repoConfig) announceConfig(c *node.Config, preset string) error {
	lists := []struct {
		name string
		in   []string
		out  *[]ma.Multiaddr
	}{
		{"Addresses.Announce", cfg.Addresses.Announce, &c.AnnounceAddrs},
		{"Addresses.AppendAnnounce", cfg.Addresses.AppendAnnounce, &c.AppendAnnounceAddrs},
		{"Addresses.NoAnnounce", cfg.Addresses.NoAnnounce, &c.NoAnnounceAddrs},
	}
	for _, l := range lists {
		for _, s := range l.in {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return fmt.Errorf("config %s: %q: %w", l.name, s, err)
			}
			*l.out = append(*l.out, a)
		}
	}
	switch {
	case cfg.Swarm.AddrFilters == nil && preset == "server":
		c.AddrFilters = node.ServerAddrFilters()
	default:
		for _, s := range cfg.Swarm.AddrFilters {
			a, err := ma.NewMultiaddr(s)
			p, ok := node.AddrRange(a)
			if err != nil || !ok {
				return fmt.Errorf("config Swarm.AddrFilters: %q is not /ip4|ip6/A/ipcidr/N", s)
			}
			c.AddrFilters = append(c.AddrFilters, p)
		}
	}
	for _, s := range cfg.Addresses.TreatAsPublic {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("config Addresses.TreatAsPublic: %w", err)
		}
		c.TreatAsPublic = append(c.TreatAsPublic, p)
	}
	return nil
}
