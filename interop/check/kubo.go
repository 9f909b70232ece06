package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

var (
	_ Peer    = (*Kubo)(nil)
	_ DHTPeer = (*Kubo)(nil)
)

// kuboPushProto is the protocol TriggerPush has Kubo listen on.
const kuboPushProto = "/x/mote-interop-push"

const (
	maxCLIStdout     = 16 << 20
	defaultReadyWait = 60 * time.Second
	stopGrace        = 10 * time.Second
)

// KuboOptions configures StartKubo. The zero value is a Kubo with its
// default transports (TCP with TLS and Noise, QUIC-v1) on 127.0.0.1.
type KuboOptions struct {
	// Swarm are the listen addresses. Default: TCP and QUIC-v1 on
	// 127.0.0.1, random ports. Only loopback addresses are accepted.
	Swarm []string
	// Security restricts the security protocols on TCP: "" (Kubo's
	// default, TLS then Noise), "noise" or "tls".
	Security string
	// Routing is Routing.Type. Default "none"; the DHT rows need a DHT:
	// "dhtserver" (as `mote interop --kubo` starts Kubo) or "dhtclient"
	// (then Kubo asks mote but serves mote nothing).
	Routing string
	// Config holds `ipfs config --json KEY VALUE` settings applied after
	// the defaults (they may override them). Values are JSON-marshalled
	// (a json.RawMessage as is), applied in sorted key order.
	Config map[string]any
	// Env adds environment variables ("K=V") to every Kubo process.
	Env []string
	// DaemonArgs adds `ipfs daemon` flags.
	DaemonArgs []string
	// ReadyTimeout bounds the wait for "Daemon is ready". Default 60 s.
	ReadyTimeout time.Duration
}

// Kubo is a throwaway Kubo daemon: a repo from `ipfs init
// --profile=test` in a temporary directory, loopback only, telemetry
// off, driven through its CLI. It is a Peer, and a DHTPeer (whose
// methods need a Routing that runs the DHT, "dhtserver" or "dhtclient").
type Kubo struct {
	bin  string
	dir  string // temporary root (HOME); the repo is dir/repo
	repo string
	env  []string
	proc *os.Process
	log  *tailBuffer

	exited  chan struct{} // closed once the daemon has been reaped
	waitErr error         // why it exited; read after exited is closed
	readers sync.WaitGroup

	id, publicKey string
	addrs         []string
	startTook     time.Duration
	config        []string // the settings asked for beyond the defaults, KEY=JSON

	stopOnce sync.Once
	stopErr  error
}

// kuboEnv is the whole environment of a Kubo process: nothing of ours
// leaks in (proxies, GOLOG_*, IPFS_*) but PATH and TMPDIR.
func kuboEnv(home, repo string, extra []string) []string {
	env := []string{"HOME=" + home, "IPFS_PATH=" + repo, "IPFS_TELEMETRY=off", "DO_NOT_TRACK=1"}
	for _, k := range []string{"PATH", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

// KuboVersion runs `ipfs version` with the binary at path, in a clean
// environment, and returns the version it reports ("0.43.0").
func KuboVersion(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	home, err := os.MkdirTemp("", "mote-kubo-version-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(home)
	out, stderr, err := runProcess(ctx, path, []string{"version"}, kuboEnv(home, filepath.Join(home, "repo"), nil), home, 4096)
	got := strings.TrimSpace(string(out))
	if err != nil {
		return "", fmt.Errorf("%s version: %w: %s", path, err, stderr)
	}
	v, ok := strings.CutPrefix(got, "ipfs version ")
	if !ok || v == "" || strings.ContainsAny(v, " \n") {
		return "", fmt.Errorf("%s version: got %q, want \"ipfs version X\"", path, got)
	}
	return v, nil
}

// StartKubo initialises a repo in a temporary directory with the ipfs
// binary at path, configures it for loopback-only operation and starts
// the daemon, returning once it is ready. ctx bounds the start; the
// daemon runs until Stop, which the caller must call.
func StartKubo(ctx context.Context, path string, opts KuboOptions) (_ *Kubo, retErr error) {
	start := time.Now()
	settings, own, err := opts.configSettings()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mote-kubo-*")
	if err != nil {
		return nil, fmt.Errorf("kubo: temp dir: %w", err)
	}
	k := &Kubo{bin: path, dir: dir, repo: filepath.Join(dir, "repo"), log: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
	k.env = kuboEnv(dir, k.repo, opts.Env)
	for _, s := range settings[own:] {
		k.config = append(k.config, s.key+"="+s.value)
	}
	defer func() {
		if retErr != nil {
			k.Stop()
		}
	}()
	if _, err := k.Run(ctx, "init", "--profile=test"); err != nil {
		return nil, err
	}
	if err := editKuboConfig(filepath.Join(k.repo, "config"), settings); err != nil {
		return nil, err
	}
	if err := k.startDaemon(ctx, opts); err != nil {
		return nil, err
	}
	out, err := k.Run(ctx, "id", "--enc=json")
	if err != nil {
		return nil, err
	}
	var self IDInfo
	if err := json.Unmarshal(out, &self); err != nil {
		return nil, fmt.Errorf("kubo: parse `ipfs id`: %w: %q", err, out)
	}
	if self.ID == "" || len(self.Addresses) == 0 {
		return nil, fmt.Errorf("kubo: `ipfs id` returned no ID or addresses: %q", out)
	}
	k.id, k.publicKey, k.addrs = self.ID, self.PublicKey, self.Addresses
	k.startTook = time.Since(start)
	return k, nil
}

// startDaemon starts `ipfs daemon` and waits for it to say it is ready.
// Two goroutines serve it until it exits: one copies its output (and
// watches for the ready line), one reaps it.
func (k *Kubo) startDaemon(ctx context.Context, opts KuboOptions) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	args := append([]string{"daemon", "--migrate=false"}, opts.DaemonArgs...)
	p, err := startProcess(k.bin, args, k.env, k.dir, w, w)
	w.Close()
	if err != nil {
		r.Close()
		return fmt.Errorf("kubo: start daemon: %w", err)
	}
	k.proc = p
	ready := make(chan struct{})
	k.readers.Add(1)
	go func() {
		defer k.readers.Done()
		defer r.Close()
		k.copyOutput(r, ready)
	}()
	go func() {
		st, err := p.Wait()
		if err == nil {
			err = errors.New(st.String())
		}
		k.waitErr = err
		close(k.exited)
		// Output still held open by a grandchild must not keep Stop.
		r.SetReadDeadline(time.Now().Add(pipeDrain))
	}()
	wait := opts.ReadyTimeout
	if wait <= 0 {
		wait = defaultReadyWait
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case <-k.exited:
		return fmt.Errorf("kubo: daemon exited before it was ready: %w\n--- kubo output ---\n%s", k.waitErr, k.log)
	case <-timer.C:
		return fmt.Errorf("kubo: daemon not ready after %v\n--- kubo output ---\n%s", wait, k.log)
	case <-ctx.Done():
		return fmt.Errorf("kubo: waiting for the daemon: %w\n--- kubo output ---\n%s", ctx.Err(), k.log)
	}
}

// copyOutput copies the daemon's output into k.log until the pipe ends,
// closing ready at the line "Daemon is ready".
func (k *Kubo) copyOutput(r *os.File, ready chan struct{}) {
	var line []byte
	drain(r, func(p []byte) (int, error) {
		k.log.Write(p)
		for _, b := range p {
			if b != '\n' {
				if len(line) < 256 {
					line = append(line, b)
				}
				continue
			}
			if ready != nil && strings.TrimSpace(string(line)) == "Daemon is ready" {
				close(ready)
				ready = nil
			}
			line = line[:0]
		}
		return len(p), nil
	})
}

type configSetting struct{ key, value string }

// editKuboConfig applies settings to the repo's config file, with the
// dotted keys of `ipfs config --json KEY VALUE` but in one step rather
// than one CLI call per key (the daemon is not running yet).
func editKuboConfig(path string, settings []configSetting) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("kubo: read config: %w", err)
	}
	for _, s := range settings {
		if !json.Valid([]byte(s.value)) {
			return fmt.Errorf("kubo: config %s: %s is not JSON", s.key, s.value)
		}
		if raw, err = setJSON(raw, strings.Split(s.key, "."), json.RawMessage(s.value)); err != nil {
			return fmt.Errorf("kubo: config %s: %w", s.key, err)
		}
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return fmt.Errorf("kubo: encode config: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(out.Bytes(), '\n'), 0o600); err != nil {
		return fmt.Errorf("kubo: write config: %w", err)
	}
	return os.Rename(tmp, path)
}

// setJSON sets the value at path in the JSON object obj. Values stay raw,
// so numbers keep the form they were written in.
func setJSON(obj []byte, path []string, v json.RawMessage) ([]byte, error) {
	m := map[string]json.RawMessage{}
	if len(obj) > 0 && string(obj) != "null" {
		if err := json.Unmarshal(obj, &m); err != nil {
			return nil, fmt.Errorf("%s is not an object", path[0])
		}
	}
	if len(path) > 1 {
		var err error
		if v, err = setJSON(m[path[0]], path[1:], v); err != nil {
			return nil, err
		}
	}
	m[path[0]] = v
	return json.Marshal(m)
}

// configSettings are the settings applied on top of `ipfs init
// --profile=test` (which already empties Bootstrap, DNS resolvers and
// delegated routing and turns off MDNS, NAT port mapping, AutoTLS and
// AutoConf; they are restated so that nothing depends on the profile's
// contents).
// The settings from own on are the caller's (Security and Config).
func (o KuboOptions) configSettings() (_ []configSetting, own int, _ error) {
	swarm := o.Swarm
	if len(swarm) == 0 {
		swarm = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	for _, a := range swarm {
		if !strings.HasPrefix(a, "/ip4/127.") && !strings.HasPrefix(a, "/ip6/::1/") {
			return nil, 0, fmt.Errorf("kubo: swarm address %q is not loopback", a)
		}
	}
	routing := o.Routing
	if routing == "" {
		routing = "none"
	}
	type kv struct {
		key string
		val any
	}
	m := []kv{
		{"Addresses.Swarm", swarm},
		{"Addresses.API", "/ip4/127.0.0.1/tcp/0"},
		{"Addresses.Gateway", []string{}},
		{"Addresses.Announce", []string{}},
		{"Addresses.AppendAnnounce", []string{}},
		{"Bootstrap", []string{}},
		{"Peering.Peers", []any{}},
		{"Routing.Type", routing},
		{"Routing.DelegatedRouters", []string{}},
		{"Ipns.DelegatedPublishers", []string{}},
		{"DNS.Resolvers", map[string]string{}},
		{"AutoConf.Enabled", false},      // else it fetches conf.ipfs-mainnet.org
		{"AutoTLS.Enabled", false},       // else it talks to libp2p.direct
		{"HTTPRetrieval.Enabled", false}, // no HTTPS block fetching
		{"Swarm.DisableNatPortMap", true},
		{"Discovery.MDNS.Enabled", false},
		{"Plugins.Plugins.telemetry.Disabled", true}, // and IPFS_TELEMETRY=off
		{"Version.SwarmCheckEnabled", false},
		// Loopback addresses in the signed peer record too, as on a LAN.
		{"Internal.NonPublicAddrPublishing", true},
		// `ipfs p2p listen`, with which the runner asks for a push.
		{"Experimental.Libp2pStreamMounting", true},
	}
	own = len(m)
	switch o.Security {
	case "":
	case "noise":
		m = append(m, kv{"Swarm.Transports.Security.TLS", false})
	case "tls":
		m = append(m, kv{"Swarm.Transports.Security.Noise", false})
	default:
		return nil, 0, fmt.Errorf("kubo: unknown Security %q (want \"\", \"noise\" or \"tls\")", o.Security)
	}
	keys := make([]string, 0, len(o.Config))
	for k := range o.Config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		m = append(m, kv{k, o.Config[k]})
	}
	out := make([]configSetting, 0, len(m))
	for _, s := range m {
		b, err := json.Marshal(s.val)
		if err != nil {
			return nil, 0, fmt.Errorf("kubo: config %s: %w", s.key, err)
		}
		out = append(out, configSetting{s.key, string(b)})
	}
	return out, own, nil
}

// ID is the daemon's peer ID.
func (k *Kubo) ID() string { return k.id }

// PublicKey is the base64 protobuf public key from `ipfs id`.
func (k *Kubo) PublicKey() string { return k.publicKey }

// Addrs are the daemon's addresses at start, each ending in /p2p/<id>.
func (k *Kubo) Addrs() []string {
	out := make([]string, len(k.addrs))
	for i, a := range k.addrs {
		if !strings.Contains(a, "/p2p/") {
			a += "/p2p/" + k.id
		}
		out[i] = a
	}
	return out
}

// TCPAddr is the plain TCP address (with /p2p/), or "".
func (k *Kubo) TCPAddr() string {
	for _, a := range k.Addrs() {
		if strings.Contains(a, "/tcp/") && !strings.Contains(a, "/ws") && !strings.Contains(a, "/tls/") {
			return a
		}
	}
	return ""
}

// QUICAddr is the QUIC-v1 address (with /p2p/), or "".
func (k *Kubo) QUICAddr() string {
	for _, a := range k.Addrs() {
		if strings.Contains(a, "/quic-v1") && !strings.Contains(a, "/webtransport") {
			return a
		}
	}
	return ""
}

// RepoPath is the daemon's IPFS_PATH.
func (k *Kubo) RepoPath() string { return k.repo }

// StartupDuration is how long StartKubo took.
func (k *Kubo) StartupDuration() time.Duration { return k.startTook }

// Output is the tail of the daemon's combined stdout and stderr.
func (k *Kubo) Output() string { return k.log.String() }

// Exited is closed when the daemon process has exited.
func (k *Kubo) Exited() <-chan struct{} { return k.exited }

// Run runs the ipfs CLI on this node's repo (it talks to the daemon
// through its RPC API) and returns stdout; errors carry stderr.
func (k *Kubo) Run(ctx context.Context, args ...string) ([]byte, error) {
	out, stderr, err := runProcess(ctx, k.bin, args, k.env, k.dir, maxCLIStdout)
	if err != nil {
		return out, fmt.Errorf("ipfs %s: %w: %s", strings.Join(args, " "), err, stderr)
	}
	return out, nil
}

// SwarmConnect dials addr (ending in /p2p/<id>).
func (k *Kubo) SwarmConnect(ctx context.Context, addr string) error {
	_, err := k.Run(ctx, "swarm", "connect", addr)
	return err
}

// SwarmPeers lists the connected peers as addresses ending in /p2p/<id>.
func (k *Kubo) SwarmPeers(ctx context.Context) ([]string, error) {
	out, err := k.Run(ctx, "swarm", "peers")
	if err != nil {
		return nil, err
	}
	return lines(out), nil
}

// IDOf is what the daemon knows of a peer (from identify): it must be
// connected or in the peerstore, as routing is off.
func (k *Kubo) IDOf(ctx context.Context, peerID string) (IDInfo, error) {
	out, err := k.Run(ctx, "id", "--enc=json", peerID)
	if err != nil {
		return IDInfo{}, err
	}
	var info IDInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return IDInfo{}, fmt.Errorf("kubo: parse `ipfs id %s`: %w: %q", peerID, err, out)
	}
	return info, nil
}

// Ping sends n pings to peer (an ID or address) and returns the RTTs.
// Kubo waits a second after each ping.
func (k *Kubo) Ping(ctx context.Context, peer string, n int) ([]time.Duration, error) {
	n = max(n, 1)
	out, runErr := k.Run(ctx, "ping", "-n", fmt.Sprint(n), "--enc=json", peer)
	var rtts []time.Duration
	var failures []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var r struct {
			Success bool
			Time    int64 // nanoseconds
			Text    string
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			return rtts, fmt.Errorf("kubo: parse ping output: %w: %q (%v)", err, out, runErr)
		}
		switch {
		case !r.Success:
			failures = append(failures, r.Text)
		case r.Text == "" && r.Time > 0:
			rtts = append(rtts, time.Duration(r.Time))
		}
	}
	if runErr != nil || len(failures) > 0 || len(rtts) != n {
		return rtts, fmt.Errorf("kubo: ping %s: %d of %d pongs; failures %q; %v", peer, len(rtts), n, failures, runErr)
	}
	return rtts, nil
}

// Info names the daemon for the matrix: `ipfs version` and the settings
// asked for beyond the runner's defaults.
func (k *Kubo) Info(ctx context.Context) PeerInfo {
	v, err := KuboVersion(ctx, k.bin)
	if err != nil {
		v = "unknown: " + oneLine(err)
	}
	return PeerInfo{Name: "Kubo", Version: v, Config: k.config}
}

// TriggerPush runs `ipfs p2p listen /x/mote-interop-push`, the only
// change of protocols Kubo's CLI can make. It does not make Kubo push:
// Kubo serves /x/ protocols through one handler registered at start, so
// its protocol list does not change (docs/INTEROP.md).
func (k *Kubo) TriggerPush(ctx context.Context) (Push, error) {
	if _, err := k.Run(ctx, "p2p", "listen", kuboPushProto, "/ip4/127.0.0.1/tcp/9"); err != nil {
		return Push{}, err
	}
	return Push{
		Proto:  kuboPushProto,
		How:    "ipfs p2p listen " + kuboPushProto,
		Unsure: "it serves /x/ protocols through one handler registered at start, so its protocol list did not change",
		Undo: func(ctx context.Context) error {
			_, err := k.Run(ctx, "p2p", "close", "-p", kuboPushProto)
			return err
		},
	}, nil
}

// RoutingTable lists the peers of Kubo's DHT routing tables, the WAN
// and the LAN one (`ipfs stats dht`).
func (k *Kubo) RoutingTable(ctx context.Context) ([]string, error) {
	out, err := k.Run(ctx, "stats", "dht", "--enc=json")
	if err != nil {
		return nil, err
	}
	return parseDHTTables(out)
}

// parseDHTTables takes the peer IDs from `ipfs stats dht --enc=json`:
// one JSON object per table.
func parseDHTTables(out []byte) ([]string, error) {
	var ids []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var table struct {
			Name    string
			Buckets []struct{ Peers []struct{ ID string } }
		}
		if err := dec.Decode(&table); err == io.EOF {
			return ids, nil
		} else if err != nil {
			return nil, fmt.Errorf("kubo: parse `ipfs stats dht`: %w: %q", err, out)
		}
		for _, b := range table.Buckets {
			for _, p := range b.Peers {
				ids = append(ids, p.ID)
			}
		}
	}
}

// FindPeer runs `ipfs routing findpeer`, and takes the addresses from
// the query events it prints with --enc=json: the answers of the peers
// it asked, as they gave them. (Its result alone would not do: go's
// lookup gives up on a peer it cannot dial, and its DHTs keep no
// loopback address of a peer they heard of.)
func (k *Kubo) FindPeer(ctx context.Context, id string) ([]string, error) {
	out, runErr := k.Run(ctx, "routing", "findpeer", "--enc=json", id)
	addrs, err := parseFindPeer(out, id)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w (%v)", err, runErr)
	case len(addrs) == 0 && runErr != nil:
		return nil, runErr
	}
	return addrs, nil
}

// parseFindPeer takes the addresses of id from the query events of
// `ipfs routing findpeer --enc=json`, one JSON object each
// (routing.QueryEvent).
func parseFindPeer(out []byte, id string) ([]string, error) {
	// routing.QueryEvent types: PeerResponse and FinalPeer carry peers.
	const peerResponse, finalPeer = 1, 2
	var addrs []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var ev struct {
			Type      int
			Responses []struct {
				ID    string
				Addrs []string
			}
		}
		if err := dec.Decode(&ev); err == io.EOF {
			return addrs, nil
		} else if err != nil {
			return nil, fmt.Errorf("kubo: parse `ipfs routing findpeer`: %w: %q", err, out)
		}
		if ev.Type != peerResponse && ev.Type != finalPeer {
			continue
		}
		for _, r := range ev.Responses {
			for _, a := range r.Addrs {
				if r.ID == id && !slices.Contains(addrs, a) {
					addrs = append(addrs, a)
				}
			}
		}
	}
}

// FindProviders runs `ipfs routing findprovs`, which prints the
// providers' peer IDs, a line each.
func (k *Kubo) FindProviders(ctx context.Context, c string) ([]string, error) {
	out, err := k.Run(ctx, "routing", "findprovs", c)
	return lines(out), err
}

// Provide stores block with `ipfs block put --cid-codec=raw` and
// announces it with `ipfs provide once`, which queues the announcement
// (Kubo's sweeping provider sends it in the background).
func (k *Kubo) Provide(ctx context.Context, block []byte) (string, error) {
	file, err := k.tempFile("block-*", block)
	if err != nil {
		return "", err
	}
	defer os.Remove(file)
	out, err := k.Run(ctx, "block", "put", "--cid-codec=raw", "--mhtype=sha2-256", file)
	if err != nil {
		return "", err
	}
	c := strings.TrimSpace(string(out))
	if _, err := k.Run(ctx, "provide", "once", c); err != nil {
		return c, err
	}
	return c, nil
}

// GetValue runs `ipfs routing get`, which prints the value as it is.
func (k *Kubo) GetValue(ctx context.Context, key string) ([]byte, error) {
	return k.Run(ctx, "routing", "get", key)
}

// PutValue runs `ipfs routing put`, which takes only /ipns/ keys.
func (k *Kubo) PutValue(ctx context.Context, key string, value []byte) error {
	file, err := k.tempFile("value-*", value)
	if err != nil {
		return err
	}
	defer os.Remove(file)
	_, err = k.Run(ctx, "routing", "put", key, file)
	return err
}

// tempFile writes b to a new file in the daemon's directory, for the
// commands that read their input from a file.
func (k *Kubo) tempFile(pattern string, b []byte) (string, error) {
	f, err := os.CreateTemp(k.dir, pattern)
	if err != nil {
		return "", fmt.Errorf("kubo: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("kubo: %w", err)
	}
	return f.Name(), nil
}

// lines are the non-empty lines of out, trimmed.
func lines(out []byte) []string {
	var l []string
	for _, s := range strings.Split(string(out), "\n") {
		if s = strings.TrimSpace(s); s != "" {
			l = append(l, s)
		}
	}
	return l
}

// Stop shuts the daemon down (SIGINT, SIGKILL after 10 s), reaps it and
// removes its directory. It is idempotent, and reports a daemon that had
// exited on its own (crashed).
func (k *Kubo) Stop() error {
	k.stopOnce.Do(func() {
		if k.proc != nil {
			select {
			case <-k.exited:
				k.stopErr = fmt.Errorf("kubo: daemon exited unexpectedly: %w\n--- kubo output ---\n%s", k.waitErr, k.log)
			default:
				k.proc.Signal(os.Interrupt)
				t := time.NewTimer(stopGrace)
				select {
				case <-k.exited:
				case <-t.C:
					k.proc.Kill()
					<-k.exited
				}
				t.Stop()
			}
			k.readers.Wait()
		}
		if err := os.RemoveAll(k.dir); err != nil && k.stopErr == nil {
			k.stopErr = fmt.Errorf("kubo: remove repo: %w", err)
		}
	})
	return k.stopErr
}
