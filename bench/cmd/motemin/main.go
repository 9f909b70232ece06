// Command motemin is a minimal mote node: TCP (Noise, yamux) and QUIC-v1
// transports, identify and ping (always on), listening on 127.0.0.1.
// It is mote's counterpart of cmd/minhost for cmd/sidebyside's idle-memory
// and binary-size comparison.
//
//	motemin [-report 5s]
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

	ma "github.com/mote-p2p/mote/wire/multiaddr"

	"github.com/mote-p2p/mote/bench/internal/procstat"
	"github.com/mote-p2p/mote/node"
)

func main() {
	report := flag.Duration("report", 0, "print runtime figures as JSON after this long, then run until stdin ends")
	flag.Parse()
	n, err := node.New(node.Config{ListenAddrs: []ma.Multiaddr{
		ma.StringCast("/ip4/127.0.0.1/tcp/0"),
		ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"),
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "motemin:", err)
		os.Exit(1)
	}
	defer n.Close()
	var addrs []string
	for _, a := range n.Addrs() {
		addrs = append(addrs, a.String())
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	if *report <= 0 {
		fmt.Println(n.ID())
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
	}{procstat.Read(), rss, n.ID().String(), addrs})
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
