// Command mote runs a libp2p node and talks to a running one.
//
//	mote daemon [--repo DIR] [--listen MULTIADDR]... [--bootstrap MULTIADDR]...
//	mote id [--repo DIR] [--json]
//	mote swarm peers [--repo DIR]
//	mote swarm connect [--repo DIR] MULTIADDR...
//	mote ping [-n N] MULTIADDR
//	mote perf [--upload BYTES] [--download BYTES] [--timeout D] MULTIADDR
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/ping"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: mote <command> [flags]

commands:
  daemon        run a node (creates the repo on first start)
  init          create a repo (--profile=test: loopback only, no bootstrap peers)
  id            print the node's peer ID (--json: addresses, agent, protocols)
  swarm peers   list the running daemon's connections
  swarm connect connect the running daemon to MULTIADDR/p2p/<id>
  ping          dial MULTIADDR/p2p/<id> with a throwaway node and ping it
  perf          measure throughput to MULTIADDR/p2p/<id> (a daemon run with --perf)
  interop       check a peer (MULTIADDR/p2p/<id>..., or --kubo PATH) protocol by protocol
  config show   print the repo config (--effective: the limits in force)
  stats         the running daemon's memory, goroutines, limit counters, bandwidth
                (stats dht: the DHTs' routing tables, stores and counters)
  dht           findpeer, findprovs, provide, get, put, query on the DHT
  name          publish the daemon's IPNS name, resolve one
  version       print the version
`

// commands are those run dispatches, for `mote help COMMAND`.
var commands = map[string]bool{
	"daemon": true, "init": true, "id": true, "swarm": true, "ping": true, "perf": true,
	"interop": true, "config": true, "stats": true, "dht": true, "name": true,
}

// run executes one command; it returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "daemon":
		err = cmdDaemon(rest, stdout, stderr)
	case "init":
		err = cmdInit(rest, stdout, stderr)
	case "id":
		err = cmdID(rest, stdout, stderr)
	case "swarm":
		err = cmdSwarm(rest, stdout, stderr)
	case "ping":
		err = cmdPing(rest, stdout, stderr)
	case "perf":
		err = cmdPerf(rest, stdout, stderr)
	case "interop":
		err = cmdInterop(rest, stdout, stderr)
	case "config":
		err = cmdConfig(rest, stdout, stderr)
	case "stats":
		err = cmdStats(rest, stdout, stderr)
	case "dht":
		err = cmdDHT(rest, stdout, stderr)
	case "name":
		err = cmdName(rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "mote", node.Version)
	case "help", "-h", "--help":
		if len(rest) > 0 && commands[rest[0]] {
			// A command's own usage, as its -h prints it, on stdout.
			sub := append([]string{rest[0]}, rest[1:]...)
			if run(append(sub, "-h"), stdout, stdout) == 2 {
				return 0
			}
			return 1
		}
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "mote: unknown command %q\n%s", cmd, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, errUsage) {
		return 2 // the flag package has printed the error and the usage
	}
	if err != nil {
		fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
	return 0
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// errUsage marks a command-line error already reported by the flag package.
var errUsage = errors.New("usage error")

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mote "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args; errors other than -h are marked errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return err
}

func cmdDaemon(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("daemon", stderr)
	repo := fs.String("repo", defaultRepoDir(), "repo directory")
	var listen, bootstrap multiFlag
	fs.Var(&listen, "listen", "listen address (repeatable; default from the repo config: TCP and QUIC on port 4001, IPv4 and IPv6)")
	fs.Var(&bootstrap, "bootstrap", "peer to connect to at start, MULTIADDR/p2p/<id> (repeatable)")
	verbose := fs.Bool("v", false, "log connection events")
	preset := fs.String("preset", "", "resource limits preset: "+fmt.Sprint(node.PresetNames)+" (default: the repo's, else server)")
	servePerfFlag := fs.Bool("perf", false, "serve /perf/1.0.0 (any peer may make this node send unlimited data)")
	dhtMode := fs.String("dht", "", "DHT mode: auto, client, server or off (default: the repo's Routing.Type, else auto)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	key, cfg, err := openRepo(*repo)
	if err != nil {
		return err
	}
	fromFlags := len(listen) > 0
	if !fromFlags {
		listen = cfg.Addresses.Swarm
	}
	if len(bootstrap) == 0 {
		bootstrap = cfg.Bootstrap
	}
	var addrs []ma.Multiaddr
	ip6 := hasIPv6()
	for _, s := range listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("listen address %q: %w", s, err)
		}
		if !ip6 && a[0].Protocol().Code == ma.P_IP6 {
			fmt.Fprintf(stderr, "skipping %s: this host has no IPv6\n", a)
			continue
		}
		addrs = append(addrs, a)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	presetName, limits, err := effectiveLimits(cfg, *preset)
	if err != nil {
		return err
	}
	applyMemoryLimit(limits)
	ncfg := node.Config{
		Key:                key,
		Limits:             limits,
		ClassicKeyExchange: cfg.ClassicKeyExchange,
		LimitLoopback:      cfg.Swarm.LimitLoopback,
		Logger:             slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	if err := cfg.announceConfig(&ncfg, presetName); err != nil {
		return err
	}
	n, err := node.New(ncfg)
	if err != nil {
		return err
	}
	defer n.Close()
	usable := addrs[:0:0]
	for _, a := range addrs {
		switch {
		case n.CanListen(a):
			usable = append(usable, a)
		case fromFlags:
			return fmt.Errorf("listen %s: no transport for this address in this build", a)
		default: // e.g. the default QUIC addresses in a noquic build
			fmt.Fprintf(stderr, "skipping %s: no transport for it in this build\n", a)
		}
	}
	if err := n.Listen(usable...); err != nil {
		return err
	}
	if *servePerfFlag {
		enablePerf(n, stderr)
	}
	if *dhtMode == "" {
		*dhtMode = cfg.Routing.Type
	}
	budget, err := effectiveDHTBudget(cfg, presetName)
	if err != nil {
		return err
	}
	dht, err := startDHT(n, *dhtMode, budget)
	if err != nil {
		return err
	}
	var services map[string]apiFunc
	if dht != nil {
		rp, err := startReproviders(*repo, dht)
		if err != nil {
			dht.Close()
			return err
		}
		// The DHT first: its reprovider reads the keys until it ends.
		defer func() { dht.Close(); rp.keys.Close() }()
		services = dhtCommands(dht, rp)
		for k, f := range nameCommands(n, dht) {
			services[k] = f
		}
		services["stats"] = func(context.Context, []string) (any, error) {
			st := nodeStats(n)
			addDHTLimits(st.Limits, dht)
			return st, nil
		}
	}

	// A plain channel rather than signal.NotifyContext, which would keep
	// a goroutine of its own for the daemon's whole life.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	closeAPI, err := serveAPI(ctx, *repo, cfg.Addresses.API, n, services)
	if err != nil {
		return err
	}
	defer closeAPI()
	memDone := make(chan struct{})
	go func() {
		defer close(memDone)
		releaseMemory(ctx, memoryCheck)
	}()
	defer func() { cancel(); <-memDone }()

	fmt.Fprintln(stdout, "peer ID:", n.ID())
	fmt.Fprintln(stdout, "limits: preset", presetName, "(mote config show --effective)")
	for _, a := range n.Addrs() {
		fmt.Fprintf(stdout, "listening on %s/p2p/%s\n", a, n.ID())
	}
	var bootWG sync.WaitGroup
	bootWG.Add(1)
	go func() {
		defer bootWG.Done()
		cctx, cancel := context.WithTimeout(node.Explicit(ctx), 30*time.Second) // the user's list: no dial filter
		defer cancel()
		bootPeers := resolveBootstrap(cctx, bootstrap, stderr)
		for _, p := range bootPeers {
			n.Protect(p.ID, "bootstrap") // never trimmed by the connection manager
		}
		if dht != nil {
			saved, err := loadDHTPeers(*repo)
			if err != nil {
				fmt.Fprintln(stderr, "saved DHT peers:", err)
			}
			// Connects to them, then looks up our own ID.
			if err := dht.Bootstrap(cctx, append(bootPeers, saved...)...); err != nil && len(bootPeers)+len(saved) > 0 {
				fmt.Fprintln(stderr, "bootstrap:", err)
			}
			return
		}
		var wg sync.WaitGroup
		for _, p := range bootPeers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := n.Connect(cctx, p.ID, p.Addrs...); err != nil {
					fmt.Fprintln(stderr, "bootstrap:", err)
				}
			}()
		}
		wg.Wait()
	}()
	fmt.Fprintln(stdout, "daemon ready")
	<-sigs
	fmt.Fprintln(stdout, "shutting down")
	cancel()
	bootWG.Wait()
	if dht != nil {
		if err := saveDHTPeers(*repo, dht); err != nil {
			fmt.Fprintln(stderr, "save DHT peers:", err)
		}
	}
	return nil
}

func cmdID(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("id", stderr)
	repo := fs.String("repo", defaultRepoDir(), "repo directory")
	asJSON := fs.Bool("json", false, "print addresses, agent and protocols of the running daemon as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !*asJSON {
		// Reading the ID must not create an identity (in a mistyped repo).
		path := filepath.Join(*repo, keyFile)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no repo at %s (mote daemon --repo %s creates one)", *repo, *repo)
		}
		key, _, err := peer.LoadOrCreateKey(path)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, peer.IDFromPublicKey(key.Public()))
		return nil
	}
	c, err := newAPIClient(*repo)
	if err != nil {
		return err
	}
	var info idInfo
	if err := c.call("id", nil, &info); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(info)
}

func cmdSwarm(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("swarm: want a subcommand: peers, connect")
	}
	if args[0] != "peers" && args[0] != "connect" {
		return fmt.Errorf("swarm: unknown subcommand %q (want peers or connect)", args[0])
	}
	fs := newFlags("swarm "+args[0], stderr)
	repo := fs.String("repo", defaultRepoDir(), "repo directory")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	c, err := newAPIClient(*repo)
	if err != nil {
		return err
	}
	switch args[0] {
	case "peers":
		var peers []peerInfo
		if err := c.call("swarm/peers", nil, &peers); err != nil {
			return err
		}
		for _, p := range peers {
			fmt.Fprintf(stdout, "%s/p2p/%s\n", p.Addr, p.Peer)
		}
	case "connect":
		var out []string
		if err := c.call("swarm/connect", fs.Args(), &out); err != nil {
			return err
		}
		for _, l := range out {
			fmt.Fprintln(stdout, l)
		}
	default:
		return fmt.Errorf("swarm: unknown subcommand %q", args[0])
	}
	return nil
}

func cmdPing(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ping", stderr)
	count := fs.Int("n", 10, "number of pings")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("ping: want one MULTIADDR ending in /p2p/<peer-id>")
	}
	ctx, cancel := commandContext(*timeout)
	defer cancel()
	n, c, err := dialThrowaway(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	defer n.Close()
	id := c.RemotePeer()
	fmt.Fprintf(stdout, "PING %s (%s)\n", id, n.Peerstore().Agent(id))
	s, err := n.NewStreamOn(ctx, c, ping.ID)
	if err != nil {
		return err
	}
	defer s.Close()
	stopReset := context.AfterFunc(ctx, func() { s.Reset() })
	defer stopReset()
	var total time.Duration
	for i := 0; i < *count; i++ {
		rtt, err := ping.Once(s, rand.Reader)
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%w)", err, ctx.Err())
			}
			return fmt.Errorf("ping %s: %w", id, err)
		}
		n.Peerstore().RecordLatency(id, rtt)
		total += rtt
		fmt.Fprintf(stdout, "Pong received: time=%.2f ms\n", float64(rtt.Microseconds())/1000)
	}
	if *count > 0 {
		fmt.Fprintf(stdout, "Average latency: %.2f ms\n", float64(total.Microseconds())/1000/float64(*count))
	}
	return nil
}

// hasIPv6 reports whether IPv6 sockets work here (hosts and containers
// without IPv6 refuse even the loopback address).
func hasIPv6() bool {
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// commandContext bounds a one-shot command by timeout and ends it early
// on SIGINT or SIGTERM.
func commandContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	return ctx, func() { stop(); cancel() }
}

// dialThrowaway connects a node with a fresh identity to target
// (MULTIADDR/p2p/<id>) and waits for identify, for one-shot commands. The
// caller closes the node.
func dialThrowaway(ctx context.Context, target string) (*node.Node, *node.Conn, error) {
	id, addr, err := parsePeerAddr(target)
	if err != nil {
		return nil, nil, err
	}
	n, err := node.New(node.Config{})
	if err != nil {
		return nil, nil, err
	}
	c, err := n.Connect(node.Explicit(ctx), id, addr)
	if err == nil {
		select {
		case <-c.Identified():
			err = c.IdentifyErr()
		case <-ctx.Done():
			err = fmt.Errorf("identify %s: %w", id, ctx.Err())
		}
	}
	if err != nil {
		n.Close()
		return nil, nil, err
	}
	return n, c, nil
}
