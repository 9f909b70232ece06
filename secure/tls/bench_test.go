package tls

import (
	"context"
	"crypto/x509"
	"net"
	"testing"
)

func BenchmarkHandshake(b *testing.B) {
	client := newTransport(b, nil, yamux)
	server := newTransport(b, nil, yamux)
	ctx := context.Background()
	expect := server.LocalPeer()
	b.ReportAllocs()
	for b.Loop() {
		cc, sc := net.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := server.SecureInbound(ctx, sc)
			done <- err
		}()
		if _, err := client.SecureOutbound(ctx, cc, expect); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		cc.Close()
		sc.Close()
	}
}

func BenchmarkPublicKeyFromChain(b *testing.B) {
	cert, _ := makeCert(b, certOpts{host: edKey(b)})
	chain := []*x509.Certificate{cert}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PublicKeyFromChain(chain); err != nil {
			b.Fatal(err)
		}
	}
}
