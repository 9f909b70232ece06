package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mote-p2p/mote/ipns"
	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/peer"
)

// TestDHTCommands: three daemons on loopback form a DHT (the LAN one
// takes loopback peers); the dht verbs work through a daemon and as
// one-shots with --bootstrap, in text and JSON.
func TestDHTCommands(t *testing.T) {
	t.Parallel()
	env := childEnv()
	var ds []*daemon
	for range 3 {
		r := t.TempDir()
		ds = append(ds, startDaemon(t, env, r, "--repo", r, "--listen", loopback, "--dht", "server"))
	}
	a, b, c := ds[0], ds[1], ds[2]
	connect(t, env, b, a)
	connect(t, env, c, a)

	const content = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
	r := mustMote(t, env, "dht", "provide", "--repo", b.repo, content)
	if strings.TrimSpace(r.stdout) != "provided "+content {
		t.Errorf("dht provide: %q", r.stdout)
	}
	if kept, err := os.ReadFile(filepath.Join(b.repo, keysFile)); err != nil || len(strings.Fields(string(kept))) != 1 {
		t.Errorf("%s after a provide: %q, %v; want the one key, to reprovide after a restart", keysFile, kept, err)
	}
	r = mustMote(t, env, "dht", "findprovs", "--repo", c.repo, "-n", "1", content)
	if strings.TrimSpace(r.stdout) != b.id {
		t.Errorf("dht findprovs through the daemon: %q, want %s", r.stdout, b.id)
	}
	r = mustMote(t, env, "dht", "findprovs", "--json", "--bootstrap", a.addr(), content)
	var provs []peerOut
	if err := json.Unmarshal([]byte(r.stdout), &provs); err != nil || len(provs) != 1 || provs[0].ID != b.id || len(provs[0].Addrs) == 0 {
		t.Errorf("one-shot dht findprovs --json: %q (%v)", r.stdout, err)
	}

	r = mustMote(t, env, "dht", "findpeer", "--repo", c.repo, b.id)
	if want := strings.TrimSuffix(b.addr(), "/p2p/"+b.id); !slices.Contains(strings.Fields(r.stdout), want) {
		t.Errorf("dht findpeer: %q, want %s", r.stdout, want)
	}
	r = mustMote(t, env, "dht", "query", "--repo", a.repo, c.id)
	if ids := strings.Fields(r.stdout); !slices.Contains(ids, c.id) {
		t.Errorf("dht query %s: %q", c.id, ids)
	}

	// A /pk/ record: B's public key, put by B, got by C.
	key, _, err := peer.LoadOrCreateKey(filepath.Join(b.repo, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "pk")
	pub := peer.MarshalPublicKey(key.Public())
	if err := os.WriteFile(file, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	mustMote(t, env, "dht", "put", "--repo", b.repo, "/pk/"+b.id, file)
	r = mustMote(t, env, "dht", "get", "--repo", c.repo, "--json", "/pk/"+b.id)
	var v valueOut
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || string(v.Value) != string(pub) {
		t.Errorf("dht get --json /pk/: %q (%v)", r.stdout, err)
	}
	if r := mote(t, env, "dht", "put", "--repo", b.repo, "/pk/"+c.id, file); r.code == 0 {
		t.Error("dht put of B's key under C's ID succeeded")
	}

	r = mustMote(t, env, "stats", "dht", "--repo", a.repo, "--json")
	var st dhtStats
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	if rp := st.Reprovide["LAN"]; rp.Keys != 0 {
		t.Errorf("stats dht: A reprovides %d keys, want none (it provided nothing)", rp.Keys)
	}
	if st.LAN.Peers < 2 || !st.LAN.Serving {
		t.Errorf("stats dht: LAN DHT has %d peers, serving %v, want the 2 others", st.LAN.Peers, st.LAN.Serving)
	}
	if r := mustMote(t, env, "stats", "dht", "--repo", a.repo); !strings.Contains(r.stdout, b.id) {
		t.Errorf("stats dht does not list %s:\n%s", b.id, r.stdout)
	}

	// IPNS: B publishes its name, C resolves it (text and JSON) and gets
	// the decoded record; a second publish takes the next sequence.
	r = mustMote(t, env, "name", "publish", "--repo", b.repo, "/ipfs/"+content)
	bID, _ := peer.Decode(b.id)
	if want := "Published to " + ipns.Name(bID) + ": /ipfs/" + content; strings.TrimSpace(r.stdout) != want {
		t.Errorf("name publish: %q, want %q", r.stdout, want)
	}
	if r := mustMote(t, env, "name", "resolve", "--repo", c.repo, "/ipns/"+ipns.Name(bID)); strings.TrimSpace(r.stdout) != "/ipfs/"+content {
		t.Errorf("name resolve: %q", r.stdout)
	}
	const other = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
	mustMote(t, env, "name", "publish", "--repo", b.repo, other)
	var rec ipnsOut
	r = mustMote(t, env, "name", "resolve", "--json", "--bootstrap", a.addr(), b.id)
	if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil || rec.Value != "/ipfs/"+other || rec.Sequence != 1 {
		t.Errorf("one-shot name resolve --json after a second publish: %q (%v), want sequence 1", r.stdout, err)
	}
	r = mustMote(t, env, "dht", "get", "--repo", a.repo, "/ipns/"+b.id)
	if !strings.Contains(r.stdout, "Value: /ipfs/"+other) || !strings.Contains(r.stdout, "Sequence: 1") {
		t.Errorf("dht get /ipns/: %q", r.stdout)
	}

	// Off: no DHT, and the commands say so.
	ro := t.TempDir()
	off := startDaemon(t, env, ro, "--repo", ro, "--listen", loopback, "--dht", "off")
	if r := mote(t, env, "dht", "query", "--repo", off.repo, a.id); r.code == 0 || !strings.Contains(r.stderr, "unknown command") {
		t.Errorf("dht query on a daemon without DHT: %s", r)
	}
}

// TestDHTBudgetConfig: the preset's DHT limits, with the repo's
// overrides, are those config show --effective prints.
func TestDHTBudgetConfig(t *testing.T) {
	t.Parallel()
	env := childEnv()
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, configFile), []byte(`{"DHT": {"Limits": {"MaxValueRecords": 9}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mustMote(t, env, "config", "show", "--effective", "--preset", "iot", "--repo", repo)
	var cfg repoConfig
	if err := json.Unmarshal([]byte(r.stdout), &cfg); err != nil {
		t.Fatal(err)
	}
	want, _ := kademlia.PresetBudget("iot")
	want.MaxValueRecords = 9
	if cfg.DHT.Limits != want {
		t.Errorf("effective DHT limits %+v, want %+v", cfg.DHT.Limits, want)
	}
}

// TestDHTPeersSaved: a daemon saves its routing-table peers at shutdown
// and reconnects to them at its next start, with no bootstrap list.
func TestDHTPeersSaved(t *testing.T) {
	t.Parallel()
	env := childEnv()
	ra, rb := t.TempDir(), t.TempDir()
	a := startDaemon(t, env, ra, "--repo", ra, "--dht", "server")
	b := startDaemon(t, env, rb, "--repo", rb, "--dht", "server", "--bootstrap", a.addrs[0])
	// Wait until B's LAN table holds A (its bootstrap runs in the
	// background once the daemon is ready).
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st dhtStats
		r := mustMote(t, env, "stats", "dht", "--repo", rb, "--json")
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatal(err)
		}
		if st.LAN.Peers == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B's LAN table never took A: %+v", st.LAN)
		}
		time.Sleep(50 * time.Millisecond) // polling a separate process
	}
	b.stop(os.Interrupt)
	saved, err := os.ReadFile(filepath.Join(rb, peersFile))
	if err != nil || !strings.Contains(string(saved), a.id) {
		t.Fatalf("%s after shutdown: %q, %v; want A's addresses", peersFile, saved, err)
	}
	b2 := startDaemon(t, env, rb, "--repo", rb, "--dht", "server")
	deadline = time.Now().Add(20 * time.Second)
	for !slices.ContainsFunc(peers(t, env, b2), func(p string) bool { return strings.HasSuffix(p, "/p2p/"+a.id) }) {
		if time.Now().After(deadline) {
			t.Fatal("the restarted daemon did not reconnect to its saved peer")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := mote(t, env, "init", "--repo", rb); r.code == 0 {
		t.Error("mote init over an existing repo succeeded")
	}
}
