package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mote-p2p/mote/node"
	"github.com/mote-p2p/mote/perf"
	"github.com/mote-p2p/mote/wire"
)

// Defaults of `mote perf`: 100 MiB each way lasts long enough on loopback
// and LANs for connection setup and window growth not to dominate, and the
// timeout lets both directions complete on links down to about 6 Mbit/s.
const (
	defaultPerfBytes   = 100 << 20
	defaultPerfTimeout = 5 * time.Minute
)

// enablePerf makes the daemon serve /perf/1.0.0 (mote daemon --perf). It
// is off by default, as the spec requires: any peer could make the node
// send and receive unlimited data.
func enablePerf(n *node.Node, stderr io.Writer) {
	fmt.Fprintf(stderr, "serving %s to any peer: do not use --perf on a publicly reachable node\n", perf.ID)
	n.SetHandler(perf.ID, servePerf)
}

// servePerf is the daemon's perf handler. Its errors are a client's
// business (the client sees the reset), so they are not reported here.
func servePerf(s *node.Stream) { _ = perf.Serve(s) }

// cmdPerf measures throughput to a peer that serves perf, from a throwaway
// node.
func cmdPerf(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("perf", stderr)
	upload := fs.Uint64("upload", defaultPerfBytes, "bytes to send to the peer")
	download := fs.Uint64("download", defaultPerfBytes, "bytes to ask the peer to send back")
	timeout := fs.Duration("timeout", defaultPerfTimeout, "give up after this long (connecting included)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("perf: want one MULTIADDR ending in /p2p/<peer-id>")
	}
	ctx, cancel := commandContext(*timeout)
	defer cancel()
	n, c, err := dialThrowaway(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	defer n.Close()
	id := c.RemotePeer()
	notSupported := fmt.Errorf("peer %s does not support %s (start its daemon with --perf)", id, perf.ID)
	s, err := n.NewStreamOn(ctx, c, perf.ID)
	if errors.Is(err, wire.ErrNotSupported) {
		return notSupported
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "PERF %s (%s) over %s\n", id, n.Peerstore().Agent(id), c.RemoteMultiaddr())
	res, err := perf.Run(ctx, s, *upload, *download)
	if errors.Is(err, wire.ErrNotSupported) {
		return notSupported // identify listed perf, the handler has gone since
	}
	if err != nil {
		return fmt.Errorf("perf %s: %w", id, err)
	}
	fmt.Fprintf(stdout, "upload: %d bytes in %.2f s = %.1f Mbit/s\n", res.Upload, res.UploadTime.Seconds(), res.UploadMbps())
	fmt.Fprintf(stdout, "download: %d bytes in %.2f s = %.1f Mbit/s\n", res.Download, res.DownloadTime.Seconds(), res.DownloadMbps())
	return nil
}
