//go:build !nointerop

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mote-p2p/mote/interop/check"
)

// maxInteropRun bounds a whole `mote interop` run (each check has its own
// --timeout).
const maxInteropRun = time.Hour

// cmdInterop checks a libp2p peer protocol by protocol and prints the
// matrix (interop/check).
func cmdInterop(args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlags("interop", stderr)
	kuboPath := fs.String("kubo", "", "start a throwaway Kubo from the ipfs binary at `PATH` and check it in both directions")
	var kuboConfig multiFlag
	fs.Var(&kuboConfig, "kubo-config", "`KEY=JSON` setting of that Kubo's config (repeatable), e.g. Swarm.Transports.Security.TLS=false")
	timeout := fs.Duration("timeout", 10*time.Second, "time limit of each check")
	jsonFile := fs.String("json", "", "also write every check's details, timings and the versions seen as JSON to `FILE`")
	mdFile := fs.String("markdown", "", "also write the matrix as Markdown to `FILE`")
	quiet := fs.Bool("quiet", false, "print only the matrix (no progress on stderr)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *kuboPath == "" && fs.NArg() == 0:
		return errors.New("interop: want MULTIADDR/p2p/<id>... of a running peer, or --kubo PATH")
	case *kuboPath != "" && fs.NArg() > 0:
		return errors.New("interop: --kubo checks the Kubo it starts; give no addresses with it")
	case *kuboPath == "" && len(kuboConfig) > 0:
		return errors.New("interop: --kubo-config needs --kubo")
	}
	cfg := map[string]any{}
	for _, kv := range kuboConfig {
		key, val, ok := strings.Cut(kv, "=")
		if !ok || key == "" || !json.Valid([]byte(val)) {
			return fmt.Errorf("interop: --kubo-config %q: want KEY=JSON, e.g. Swarm.Transports.Network.QUIC=false", kv)
		}
		cfg[key] = json.RawMessage(val)
	}
	ctx, cancel := commandContext(maxInteropRun)
	defer cancel()

	opts := check.Options{Timeout: *timeout}
	progress := func(string) {}
	if !*quiet {
		progress = progressLine(stderr)
		opts.Progress = func(p check.Progress) {
			progress(fmt.Sprintf("[%d/%d] %s: %s (%.1f s)", p.Done, p.Total, p.Column, p.Row, p.Elapsed.Seconds()))
		}
	}
	target := check.Target{Addrs: fs.Args()}
	if *kuboPath != "" {
		progress("starting kubo " + *kuboPath)
		// A DHT server, so that the DHT rows are checked both ways
		// (--kubo-config Routing.Type="none" turns it off).
		k, err := check.StartKubo(ctx, *kuboPath, check.KuboOptions{Routing: "dhtserver", Config: cfg})
		if err != nil {
			progress("")
			return err
		}
		defer func() {
			if serr := k.Stop(); serr != nil && err == nil {
				err = serr
			}
		}()
		target.Peer = k
	}
	m, err := check.Run(ctx, target, opts)
	progress("")
	if err != nil {
		return err
	}
	if err := m.WriteText(stdout); err != nil {
		return err
	}
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{{*jsonFile, m.WriteJSON}, {*mdFile, m.WriteMarkdown}} {
		if f.name == "" {
			continue
		}
		if err := writeFile(f.name, f.write); err != nil {
			return err
		}
	}
	if m.Failed() {
		return errors.New("interop: some checks failed")
	}
	return nil
}

func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}

// progressLine shows one line of progress on w: rewritten in place on a
// terminal, one line each otherwise. "" clears it.
func progressLine(w io.Writer) func(string) {
	f, ok := w.(*os.File)
	st, err := os.Stdout.Stat()
	if ok {
		st, err = f.Stat()
	}
	if !ok || err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return func(s string) {
			if s != "" {
				fmt.Fprintln(w, s)
			}
		}
	}
	return func(s string) { fmt.Fprintf(w, "\r\x1b[K%s", s) }
}
