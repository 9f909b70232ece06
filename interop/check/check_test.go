package check

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mote-p2p/mote/identify"
	"github.com/mote-p2p/mote/kademlia"
	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/perf"
	"github.com/mote-p2p/mote/ping"
	"github.com/mote-p2p/mote/wire"
	ma "github.com/mote-p2p/mote/wire/multiaddr"
)

// The broken peers below are mote nodes with one thing wrong; each must
// turn exactly the matching cells into FAIL, with the reason, and leave
// every other cell as it is for a good peer.

// want is an expected cell: its status and a part of its reason.
type want struct {
	s      Status
	reason string
}

var outCols = []string{"tcp+noise out", "tcp+tls out", "quic-v1 out"}

// goodPeer is what Run finds, from outside, on a mote node that serves
// perf: every cell that can be checked without the peer's help passes.
func goodPeer() map[string]map[string]want {
	w := map[string]map[string]want{}
	for _, row := range rows {
		w[row.ID] = map[string]want{}
		for _, col := range outCols {
			w[row.ID][col] = want{Pass, ""}
		}
	}
	all := func(row string, x want) {
		for _, col := range outCols {
			w[row][col] = x
		}
	}
	w["muxer"]["quic-v1 out"] = want{NA, "QUIC carries the streams itself"}
	w["early-muxer"]["quic-v1 out"] = want{NA, "QUIC carries the streams itself"}
	all("push-sent", want{NotChecked, "what it kept is seen only from its side"})
	all("push-received", want{NotChecked, "the peer pushed nothing"})
	all("ping-served", want{NotChecked, "needs the peer to ping mote"})
	for _, row := range kadServed {
		all(row, want{NotChecked, "needs the peer to query mote"})
	}
	return w
}

// startPeer starts a mote node on loopback TCP and QUIC serving perf
// and the DHT (kademlia.ID, every address accepted), changed by mod, and
// returns it, its DHT and its addresses.
func startPeer(t *testing.T, mod func(*node.Node)) (*node.Node, *kademlia.DHT, []string) {
	t.Helper()
	return startPeerDHT(t, true, mod)
}

// startPeerDHT is startPeer with the DHT only if withDHT (nil if not).
// A peer's protocols should not change once Run dials it: its push
// would reach the first column.
func startPeerDHT(t *testing.T, withDHT bool, mod func(*node.Node)) (*node.Node, *kademlia.DHT, []string) {
	t.Helper()
	n, err := node.New(node.Config{ListenAddrs: []ma.Multiaddr{
		ma.StringCast("/ip4/127.0.0.1/tcp/0"),
		ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	var d *kademlia.DHT
	if withDHT {
		if d, err = kademlia.New(n, kademlia.Config{Protocol: kademlia.ID, Mode: kademlia.ModeServer}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		// The node of a column is gone for good once it disconnected;
		// left in the table, it would stall the lookups of the next
		// columns (a QUIC dial to a closed port is not refused: it
		// times out).
		n.AddHooks(node.Hooks{PeerDisconnected: func(id peer.ID) { d.RoutingTable().Remove(id) }})
	}
	n.SetHandler(perf.ID, func(s *node.Stream) { perf.Serve(s) })
	if mod != nil {
		mod(n)
	}
	var addrs []string
	for _, a := range n.Addrs() {
		addrs = append(addrs, a.String()+"/p2p/"+n.ID().String())
	}
	return n, d, addrs
}

// identifyHandler serves identify as the node does, with edit applied to
// the message.
func identifyHandler(n *node.Node, edit func(*identify.Message)) node.Handler {
	return func(s *node.Stream) {
		rec, err := peer.SealPeerRecord(n.Key(), &peer.PeerRecord{ID: n.ID(), Seq: 1, Addrs: n.Addrs()})
		if err != nil {
			s.Reset()
			return
		}
		info := &identify.Info{Key: n.Key(), ListenAddrs: n.Addrs(), Protocols: n.Protocols(), AgentVersion: "mote/" + node.Version, SignedRecord: rec}
		m := identify.Build(info, s.Conn().RemoteMultiaddr())
		edit(m)
		if err := identify.WriteMessage(s, m); err != nil {
			s.Reset()
			return
		}
		s.Close()
	}
}

func run(t *testing.T, addrs []string, o Options) *Matrix {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	o.PerfBytes = 64 << 10
	m, err := Run(t.Context(), Target{Addrs: addrs}, o)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	m.WriteText(&out)
	t.Logf("\n%s", out.String())
	return m
}

// checkMatrix compares every cell with w.
func checkMatrix(t *testing.T, m *Matrix, w map[string]map[string]want) {
	t.Helper()
	if len(m.Cells) != len(m.Rows)*len(m.Columns) {
		t.Errorf("%d cells for %d rows × %d columns", len(m.Cells), len(m.Rows), len(m.Columns))
	}
	for _, row := range m.Rows {
		for _, col := range m.Columns {
			c, ok := m.Cell(row.ID, col.Name)
			x, expected := w[row.ID][col.Name]
			switch {
			case !ok:
				t.Errorf("%s / %s: no cell", row.ID, col.Name)
			case !expected:
				t.Errorf("%s / %s: unexpected cell %+v", row.ID, col.Name, c)
			case c.Status != x.s || !strings.Contains(c.Reason, x.reason):
				t.Errorf("%s / %s: %s %q, want %s %q", row.ID, col.Name, c.Status, c.Reason, x.s, x.reason)
			case c.Status != Pass && c.Reason == "":
				t.Errorf("%s / %s: %s without a reason", row.ID, col.Name, c.Status)
			}
		}
	}
}

func TestGoodPeer(t *testing.T) {
	_, _, addrs := startPeer(t, nil)
	var progress []Progress
	m := run(t, addrs, Options{Progress: func(p Progress) { progress = append(progress, p) }})
	checkMatrix(t, m, goodPeer())
	if m.Failed() {
		t.Error("Failed() on a good peer")
	}
	if len(progress) != len(m.Cells) || progress[len(progress)-1].Done != len(m.Cells) || progress[0].Total != len(m.Cells) {
		t.Errorf("%d progress reports for %d cells", len(progress), len(m.Cells))
	}
	if len(m.Versions) != 1 || m.Versions[0] != "mote/"+node.Version {
		t.Errorf("versions seen %v", m.Versions)
	}
}

// A signed peer record that does not match its key: signed by another
// key than that of the peer it names.
func TestBadSignedRecord(t *testing.T) {
	other, err := peer.GenerateEd25519(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, _, addrs := startPeer(t, func(n *node.Node) {
		n.SetHandler(identify.ID, identifyHandler(n, func(m *identify.Message) {
			rec := &peer.PeerRecord{ID: n.ID(), Seq: 1, Addrs: n.Addrs()}
			env, err := peer.Seal(other, peer.PeerRecordDomain, peer.PeerRecordPayloadType, rec.Marshal())
			if err != nil {
				panic(err)
			}
			m.SignedPeerRecord = env.Marshal()
		}))
	})
	m := run(t, addrs, Options{})
	w := goodPeer()
	for _, col := range outCols {
		w["id-record"][col] = want{Fail, "the signed peer record does not open"}
	}
	checkMatrix(t, m, w)
	if c, _ := m.Cell("id-record", outCols[0]); !strings.Contains(c.Reason, "signed by "+peer.IDFromPublicKey(other.Public()).String()) {
		t.Errorf("reason %q does not name the key that signed", c.Reason)
	}
	if !m.Failed() {
		t.Error("Failed() is false")
	}
}

// A protocol advertised in identify but refused with na.
func TestAdvertisedButRefused(t *testing.T) {
	_, _, addrs := startPeer(t, func(n *node.Node) {
		n.RemoveHandler(perf.ID)
		n.SetHandler(identify.ID, identifyHandler(n, func(m *identify.Message) {
			m.Protocols = append(m.Protocols, perf.ID)
		}))
	})
	m := run(t, addrs, Options{})
	w := goodPeer()
	for _, col := range outCols {
		w["perf"][col] = want{Fail, "advertised in identify but refused (na)"}
	}
	checkMatrix(t, m, w)
}

// A protocol neither advertised nor served is n/a, not a failure.
func TestNotAdvertised(t *testing.T) {
	_, _, addrs := startPeer(t, func(n *node.Node) { n.RemoveHandler(perf.ID) })
	m := run(t, addrs, Options{})
	w := goodPeer()
	for _, col := range outCols {
		w["perf"][col] = want{NA, "not advertised"}
	}
	checkMatrix(t, m, w)
}

// A handler that never answers: the check times out, the runner does not
// hang.
func TestStalledHandler(t *testing.T) {
	_, _, addrs := startPeer(t, func(n *node.Node) {
		n.SetHandler(ping.ID, func(s *node.Stream) {
			io.Copy(io.Discard, s) // reads the pings, never echoes
			s.Close()
		})
	})
	start := time.Now()
	m := run(t, addrs, Options{Timeout: time.Second})
	w := goodPeer()
	for _, col := range outCols {
		w["ping"][col] = want{Fail, "timed out after 1 s"}
	}
	checkMatrix(t, m, w)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("run took %v", took)
	}
}

// An identify message over the 8 KiB limit.
func TestOversizedIdentify(t *testing.T) {
	_, _, addrs := startPeer(t, func(n *node.Node) {
		n.SetHandler(identify.ID, func(s *node.Stream) {
			s.Write(append(wire.AppendUvarint(nil, 9000), make([]byte, 9000)...))
			s.Close()
		})
	})
	m := run(t, addrs, Options{})
	w := goodPeer()
	for _, col := range outCols {
		w["id-message"][col] = want{Fail, "exceeds the 8192-byte limit"}
		for _, row := range []string{"id-key", "id-agent", "id-protocols", "id-listen", "id-observed", "id-record"} {
			w[row][col] = want{NotChecked, noMessage}
		}
		// Whether they are advertised is unknown.
		for _, row := range append([]string{"perf"}, kadAsks...) {
			w[row][col] = want{NotChecked, noMessage}
		}
	}
	checkMatrix(t, m, w)
}

// The address hosts another peer than its /p2p/ID says.
func TestWrongPeerID(t *testing.T) {
	n, _, addrs := startPeer(t, nil)
	key, err := peer.GenerateEd25519(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other := peer.IDFromPublicKey(key.Public()).String()
	for i := range addrs {
		addrs[i] = strings.Replace(addrs[i], n.ID().String(), other, 1)
	}
	m := run(t, addrs, Options{})
	w := map[string]map[string]want{}
	for _, row := range rows {
		w[row.ID] = map[string]want{}
		for _, col := range outCols {
			w[row.ID][col] = want{NotChecked, "no connection: the handshake failed"}
		}
	}
	for _, col := range outCols {
		w["handshake"][col] = want{Fail, "is " + n.ID().String() + ", not " + other}
	}
	checkMatrix(t, m, w)
}

// A dial for a peer ID that the peer does not have must fail; here the
// "wrong" ID is the peer's own, so it succeeds and the cell fails.
func TestWrongIDAccepted(t *testing.T) {
	n, _, addrs := startPeer(t, nil)
	m := run(t, addrs, Options{wrongID: n.ID()})
	w := goodPeer()
	for _, col := range outCols {
		w["wrong-id"][col] = want{Fail, "a dial for another peer ID (" + n.ID().String() + ") succeeded"}
	}
	checkMatrix(t, m, w)
}

// A listener that accepts TCP and never speaks: the handshake times out.
func TestSilentListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		l.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	}()
	key, err := peer.GenerateEd25519(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	addr := "/ip4/127.0.0.1/tcp/" + strings.TrimPrefix(l.Addr().String(), "127.0.0.1:") + "/p2p/" + peer.IDFromPublicKey(key.Public()).String()
	m := run(t, []string{addr}, Options{Timeout: time.Second})
	w := map[string]map[string]want{}
	for _, row := range rows {
		w[row.ID] = map[string]want{
			"tcp+noise out": {NotChecked, "no connection: the handshake failed"},
			"tcp+tls out":   {NotChecked, "no connection: the handshake failed"},
			"quic-v1 out":   {NA, "the peer has no quic-v1 address"},
		}
	}
	w["handshake"]["tcp+noise out"] = want{Fail, "timed out after 1 s"}
	w["handshake"]["tcp+tls out"] = want{Fail, "timed out after 1 s"}
	checkMatrix(t, m, w)
}

func TestRunErrors(t *testing.T) {
	n, _, addrs := startPeer(t, nil)
	key, err := peer.GenerateEd25519(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addrs []string
		want  string
	}{
		{nil, "no address"},
		{[]string{"/ip4/127.0.0.1/tcp/1"}, "has no /p2p/"},
		{[]string{"/ip4/bogus"}, "address"},
		{[]string{addrs[0], strings.Replace(addrs[1], n.ID().String(), peer.IDFromPublicKey(key.Public()).String(), 1)}, "two peers"},
	} {
		if _, err := Run(t.Context(), Target{Addrs: tc.addrs}, Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%q): %v, want an error with %q", tc.addrs, err, tc.want)
		}
	}
}

func TestMatrixOutput(t *testing.T) {
	m := &Matrix{
		Peer:    "12D3KooWtest",
		Mote:    "mote/" + node.Version,
		Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Columns: []Column{{Name: "a out"}, {Name: "b out"}},
		Rows:    rows[:2],
		Cells: []Cell{
			{Row: "handshake", Column: "a out", Status: Pass},
			{Row: "handshake", Column: "b out", Status: Fail, Reason: "timed out after 1 s"},
			{Row: "wrong-id", Column: "a out", Status: NA, Reason: "no b"},
			{Row: "wrong-id", Column: "b out", Status: NotChecked, Reason: "timed out after 1 s"},
		},
	}
	var text, md, js bytes.Buffer
	if err := m.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"handshake  security and peer ID            pass     FAIL [1]\n", "FAIL [1]", "n/a [2]", "n/c [1]", "[1] timed out after 1 s\n[2] no b\n", "1 pass, 1 FAIL, 1 not checked (n/c), 1 n/a"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text lacks %q:\n%s", s, text.String())
		}
	}
	if err := m.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"| protocol | check | a out | b out |\n|---|---|---|---|\n", "| handshake | security and peer ID | pass | FAIL [1] |", "1. timed out after 1 s\n2. no b\n"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("markdown lacks %q:\n%s", s, md.String())
		}
	}
	if err := m.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Matrix
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if c, ok := back.Cell("wrong-id", "b out"); !ok || c.Status != NotChecked || c.Reason != "timed out after 1 s" {
		t.Errorf("JSON round trip: %+v", c)
	}
}

func TestSetJSON(t *testing.T) {
	in := []byte(`{"A":{"B":1e3,"Big":12345678901234567890},"C":[1]}`)
	out, err := setJSON(in, []string{"A", "X", "Y"}, json.RawMessage(`true`))
	if err != nil {
		t.Fatal(err)
	}
	if out, err = setJSON(out, []string{"C"}, json.RawMessage(`"s"`)); err != nil {
		t.Fatal(err)
	}
	if want := `{"A":{"B":1e3,"Big":12345678901234567890,"X":{"Y":true}},"C":"s"}`; string(out) != want {
		t.Errorf("got %s, want %s", out, want)
	}
	if _, err := setJSON(out, []string{"C", "D"}, json.RawMessage(`1`)); err == nil {
		t.Error("set inside a string: no error")
	}
}

// Every goroutine Run starts has ended when it returns (the peer's end
// with the peer).
func TestNoGoroutinesLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	n, _, addrs := startPeer(t, nil)
	run(t, addrs, Options{})
	n.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
