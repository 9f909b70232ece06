package abuse

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// The control API's deadlines (cmd/mote/api.go): a client must send its
// request within apiReadTimeout of connecting, whatever it trickles.
const (
	apiReadTimeout = 10 * time.Second
	apiCutSlack    = 2 * time.Second
)

// apiAnswer is the control API's one-line answer.
type apiAnswer struct {
	Error  string
	Result json.RawMessage
}

// apiCall sends one raw request line to the API and reads the answer.
func apiCall(t *testing.T, addr, line string) apiAnswer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(commandTimeout))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatal(err)
	}
	b, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		t.Fatalf("API answer to %.60q: %v", line, err)
	}
	var a apiAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("API answer to %.60q: %v: %q", line, err, b)
	}
	return a
}

// TestControlAPI: requests without the token, with a wrong one, or not
// in the API's format are refused without a result; the right token is
// served; and a client that connects and trickles its request byte by
// byte is cut at the read deadline (10 s) while others are served.
func TestControlAPI(t *testing.T) {
	forPresetsParallel(t, func(t *testing.T, preset string) {
		d := startDaemon(t, daemonConfig{preset: preset})
		addr, token := d.apiEndpoint(t)
		if len(token) < 32 {
			t.Fatalf("API token %q: too short", token)
		}
		target := "/ip4/127.0.0.1/tcp/1/p2p/" + d.id.String()
		refused := []struct{ name, line string }{
			{"no token", `{"Cmd":"stats"}`},
			{"empty token", `{"Cmd":"stats","Token":""}`},
			{"wrong token", `{"Cmd":"stats","Token":"` + strings.Repeat("0", len(token)) + `"}`},
			{"token prefix", `{"Cmd":"stats","Token":"` + token[:len(token)-1] + `"}`},
			{"swarm/connect without token", `{"Cmd":"swarm/connect","Args":["` + target + `"]}`},
			{"HTTP request", "GET /api/v0/stats HTTP/1.1\r"},
			{"HTTP POST with token", "POST /api/v0/stats?token=" + token + " HTTP/1.1\r"},
		}
		for _, r := range refused {
			a := apiCall(t, addr, r.line)
			if a.Error == "" || a.Result != nil {
				t.Errorf("%s: answer %+v; want an error and no result", r.name, a)
			}
			if strings.Contains(r.name, "token") && !strings.Contains(r.name, "HTTP") && !strings.HasPrefix(a.Error, "unauthorized") {
				t.Errorf("%s: error %q; want unauthorized", r.name, a.Error)
			}
		}
		if a := apiCall(t, addr, `{"Cmd":"stats","Token":"`+token+`"}`); a.Error != "" || a.Result == nil {
			t.Errorf("request with the token: %+v; want a result", a)
		}

		// A slow client: connects and trickles a request, a byte every
		// 200 ms, never finishing the line.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		trickled := make(chan int)
		go func() {
			n := 0
			req := `{"Cmd":"stats","Token":"` + token + `"` + strings.Repeat(" ", 1000)
			for n < len(req) {
				if _, err := c.Write([]byte{req[n]}); err != nil {
					break
				}
				n++
				time.Sleep(200 * time.Millisecond) // the attacker's pace
			}
			trickled <- n
		}()
		served := d.stats(t) // others are served meanwhile
		c.SetReadDeadline(time.Now().Add(apiReadTimeout + 3*apiCutSlack))
		rest, rerr := io.ReadAll(c)
		cut := time.Since(start)
		c.Close()
		n := <-trickled
		t.Logf("control-api            %-6s | %d malformed/unauthorized requests refused | slow client cut after %v (%d bytes trickled, read %q, %v) | stats during: %d goroutines",
			preset, len(refused), cut.Round(100*time.Millisecond), n, rest, rerr, served.Goroutines)
		if errors.Is(rerr, os.ErrDeadlineExceeded) {
			t.Fatalf("slow client still connected after %v; the API's read deadline is %v", cut, apiReadTimeout)
		}
		if cut < apiReadTimeout-apiCutSlack || cut > apiReadTimeout+apiCutSlack {
			t.Errorf("slow client cut after %v; want about the read deadline %v", cut, apiReadTimeout)
		}
	})
}
