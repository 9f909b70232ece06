// Command minhost is a minimal go-libp2p host: TCP and QUIC-v1
// transports, Noise, yamux, identify and ping, listening on 127.0.0.1.
// It is go-libp2p's side of the binary-size and idle-memory comparison in
// cmd/sidebyside; cmd/motemin is mote's.
//
//	minhost [-report 5s]
//
// Without -report it prints its addresses and runs until interrupted.
// With -report D it waits D after start, prints one JSON line of its Go
// runtime figures and resident set size, and then runs until standard
// input ends or it is interrupted.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/mote-p2p/mote/bench/internal/procstat"
)

func main() {
	report := flag.Duration("report", 0, "print runtime figures as JSON after this long, then run until stdin ends")
	flag.Parse()
	h, err := libp2p.New(
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.Ping(true),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "minhost:", err)
		os.Exit(1)
	}
	defer h.Close()
	var addrs []string
	for _, a := range h.Addrs() {
		addrs = append(addrs, a.String())
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	if *report <= 0 {
		fmt.Println(h.ID())
		for _, a := range addrs {
			fmt.Println(a)
		}
		<-sig
		return
	}
	time.Sleep(*report)
	rss, _ := procstat.VmRSS(0)
	json.NewEncoder(os.Stdout).Encode(struct {
		procstat.Go
		RSS   int64    `json:"rss"`
		ID    string   `json:"id"`
		Addrs []string `json:"addrs"`
	}{procstat.Read(), rss, h.ID().String(), addrs})
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-sig:
	}
}
