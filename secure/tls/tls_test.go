package tls

import (
	"bytes"
	"context"
	stdtls "crypto/tls"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mote-p2p/mote/peer"
	"github.com/mote-p2p/mote/secure"
)

// exchange sends a message each way and checks it arrives.
func exchange(t *testing.T, a, b net.Conn) {
	t.Helper()
	for _, dir := range []struct{ w, r net.Conn }{{a, b}, {b, a}} {
		msg := []byte("hello from " + dir.w.LocalAddr().String())
		errc := make(chan error, 1)
		go func() {
			_, err := dir.w.Write(msg)
			errc <- err
		}()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(dir.r, got); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("got %q, want %q", got, msg)
		}
	}
}

func TestHandshakeKeyTypes(t *testing.T) {
	for _, p := range pairs {
		for i, ck := range keyTypes {
			for j, sk := range keyTypes {
				// Every combination over a pipe; same types over TCP.
				if p.name == "tcp" && i != j {
					continue
				}
				t.Run(p.name+"/"+ck.name+"-"+sk.name, func(t *testing.T) {
					ckey, skey := ck.gen(t), sk.gen(t)
					client := newTransport(t, ckey, yamux)
					server := newTransport(t, skey, yamux)
					cc, sc := p.mk(t)
					a, b, errC, errS := secureBoth(testCtx(t), client, server, cc, sc, server.LocalPeer())
					if errC != nil || errS != nil {
						t.Fatalf("client %v, server %v", errC, errS)
					}
					var _ secure.Conn = a
					if a.LocalPeer() != client.LocalPeer() || a.RemotePeer() != server.LocalPeer() ||
						b.LocalPeer() != server.LocalPeer() || b.RemotePeer() != client.LocalPeer() {
						t.Fatal("peer IDs wrong")
					}
					if !peer.KeyEqual(a.RemotePublicKey(), skey.Public()) || !peer.KeyEqual(b.RemotePublicKey(), ckey.Public()) {
						t.Fatal("remote keys wrong")
					}
					if a.EarlyMuxer() != yamux || b.EarlyMuxer() != yamux {
						t.Fatalf("early muxer %q / %q", a.EarlyMuxer(), b.EarlyMuxer())
					}
					if v := a.ConnectionState().Version; v != stdtls.VersionTLS13 {
						t.Fatalf("version %x", v)
					}
					exchange(t, a, b)
				})
			}
		}
	}
}

func TestHandshakeWithoutExpectedPeer(t *testing.T) {
	client, server := newTransport(t, nil), newTransport(t, nil)
	cc, sc := pipePair(t)
	a, _, errC, errS := secureBoth(testCtx(t), client, server, cc, sc, "")
	if errC != nil || errS != nil {
		t.Fatalf("client %v, server %v", errC, errS)
	}
	if a.RemotePeer() != server.LocalPeer() {
		t.Fatal("wrong remote peer")
	}
}

func TestEarlyMuxer(t *testing.T) {
	const mplex = "/mplex/6.7.0"
	tests := []struct {
		name           string
		client, server []string
		want           string // EarlyMuxer on both sides
		wantALPN       string
	}{
		{"both yamux", []string{yamux}, []string{yamux}, yamux, yamux},
		{"client lists none", nil, []string{yamux}, "", ALPN},
		{"server lists none", []string{yamux}, nil, "", ALPN},
		{"no overlap", []string{"/other/1"}, []string{yamux}, "", ALPN},
		{"client order wins (mplex)", []string{mplex, yamux}, []string{yamux, mplex}, mplex, mplex},
		{"client order wins (yamux)", []string{yamux, mplex}, []string{mplex, yamux}, yamux, yamux},
		{"first common in client order", []string{"/other/1", yamux, mplex}, []string{mplex, yamux}, yamux, yamux},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := newTransport(t, nil, tc.client...)
			server := newTransport(t, nil, tc.server...)
			cc, sc := pipePair(t)
			a, b, errC, errS := secureBoth(testCtx(t), client, server, cc, sc, server.LocalPeer())
			if errC != nil || errS != nil {
				t.Fatalf("client %v, server %v", errC, errS)
			}
			if a.EarlyMuxer() != tc.want || b.EarlyMuxer() != tc.want {
				t.Fatalf("early muxer client %q server %q, want %q", a.EarlyMuxer(), b.EarlyMuxer(), tc.want)
			}
			if p := a.ConnectionState().NegotiatedProtocol; p != tc.wantALPN {
				t.Fatalf("ALPN %q, want %q", p, tc.wantALPN)
			}
		})
	}
}

// TestClientHello checks what our client puts in its ClientHello: no SNI,
// TLS 1.3 only, ALPN muxers then "libp2p".
func TestClientHello(t *testing.T) {
	client := newTransport(t, nil, yamux, "/mplex/6.7.0")
	sid, err := NewIdentity(edKey(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := sid.ConfigForServer([]string{yamux})
	inner := cfg.GetConfigForClient
	hellos := make(chan *stdtls.ClientHelloInfo, 1)
	cfg.GetConfigForClient = func(h *stdtls.ClientHelloInfo) (*stdtls.Config, error) {
		hellos <- h
		return inner(h)
	}
	cc, sc := pipePair(t)
	errc := make(chan error, 1)
	go func() { errc <- stdtls.Server(sc, cfg).Handshake() }()
	if _, err := client.SecureOutbound(testCtx(t), cc, sid.LocalPeer()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	h := <-hellos
	if h.ServerName != "" {
		t.Fatalf("client sent SNI %q", h.ServerName)
	}
	if len(h.SupportedVersions) != 1 || h.SupportedVersions[0] != stdtls.VersionTLS13 {
		t.Fatalf("client versions %x", h.SupportedVersions)
	}
	if got := strings.Join(h.SupportedProtos, ","); got != yamux+",/mplex/6.7.0,"+ALPN {
		t.Fatalf("client ALPN %s", got)
	}
}

func TestPeerMismatch(t *testing.T) {
	client, server := newTransport(t, nil), newTransport(t, nil)
	wrong := newTransport(t, nil).LocalPeer()
	cc, sc := tcpPair(t)
	_, _, errC, errS := secureBoth(testCtx(t), client, server, cc, sc, wrong)
	var pm *secure.PeerMismatchError
	if !errors.As(errC, &pm) {
		t.Fatalf("client error %v, want PeerMismatchError", errC)
	}
	if pm.Expected != wrong || pm.Actual != server.LocalPeer() {
		t.Fatalf("mismatch names %s / %s", pm.Expected, pm.Actual)
	}
	if !strings.Contains(errC.Error(), wrong.String()) || !strings.Contains(errC.Error(), server.LocalPeer().String()) {
		t.Fatalf("error %q does not name both peers", errC)
	}
	if errS == nil {
		t.Fatal("server accepted a client that aborted")
	}
}

// badCerts are certificates a peer must refuse, with the error it reports.
func badCerts(t *testing.T, host peer.PrivateKey) []struct {
	name string
	opts certOpts
	want error
} {
	now := time.Now()
	return []struct {
		name string
		opts certOpts
		want error
	}{
		{"no extension", certOpts{host: host, noExt: true}, ErrNoExtension},
		{"malformed extension", certOpts{host: host, extValue: []byte{0x30, 0x03, 0x04, 0x01, 0x01}}, ErrMalformedExtension},
		{"signed by another key", certOpts{host: host, signer: edKey(t)}, peer.ErrBadSignature},
		{"expired", certOpts{host: host, notBefore: now.Add(-2 * time.Hour), notAfter: now.Add(-time.Minute)}, ErrExpired},
		{"not yet valid", certOpts{host: host, notBefore: now.Add(time.Hour), notAfter: now.Add(2 * time.Hour)}, ErrNotYetValid},
		{"unknown critical extension", certOpts{host: host, extra: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}}}, ErrUnknownCriticalExtension},
	}
}

// Negative handshakes run over TCP: on a net.Pipe the rejecting side's
// alert and the other side's pending flight can block each other.

func TestClientRefusesBadServer(t *testing.T) {
	host := edKey(t)
	for _, tc := range badCerts(t, host) {
		t.Run(tc.name, func(t *testing.T) {
			cert, certKey := makeCert(t, tc.opts)
			client := newTransport(t, nil)
			cc, sc := tcpPair(t)
			errS := rawServer(sc, cert, certKey, []string{ALPN})
			_, err := client.SecureOutbound(testCtx(t), cc, "")
			if !errors.Is(err, tc.want) {
				t.Fatalf("client error %v, want %v", err, tc.want)
			}
			if <-errS == nil {
				t.Fatal("server saw no failure")
			}
		})
	}
}

func TestServerRefusesBadClient(t *testing.T) {
	host := edKey(t)
	for _, tc := range badCerts(t, host) {
		t.Run(tc.name, func(t *testing.T) {
			cert, certKey := makeCert(t, tc.opts)
			server := newTransport(t, nil)
			cc, sc := tcpPair(t)
			type res struct {
				c   *Conn
				err error
			}
			ch := make(chan res, 1)
			go func() {
				c, err := server.SecureInbound(testCtx(t), sc)
				ch <- res{c, err}
			}()
			// TLS 1.3: the client's handshake completes before the server
			// has looked at its certificate ...
			tc2, err := rawClient(cc, cert, certKey, []string{ALPN})
			if err != nil {
				t.Fatalf("client handshake: %v", err)
			}
			r := <-ch
			if !errors.Is(r.err, tc.want) {
				t.Fatalf("server error %v, want %v", r.err, tc.want)
			}
			// ... and it learns of the rejection on its first read.
			if _, err := tc2.Read(make([]byte, 1)); err == nil {
				t.Fatal("client read succeeded after rejection")
			}
		})
	}
}

func TestServerRefusesUnknownALPN(t *testing.T) {
	server := newTransport(t, nil, yamux)
	cert, certKey := makeCert(t, certOpts{host: edKey(t)})
	cc, sc := tcpPair(t)
	errc := make(chan error, 1)
	go func() {
		_, err := server.SecureInbound(testCtx(t), sc)
		errc <- err
	}()
	if _, err := rawClient(cc, cert, certKey, []string{"h2"}); err == nil {
		t.Fatal("client handshake succeeded")
	}
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "application protocol") {
		t.Fatalf("server error %v", err)
	}
}

func TestServerWithoutClientALPN(t *testing.T) {
	server := newTransport(t, nil, yamux)
	host := edKey(t)
	cert, certKey := makeCert(t, certOpts{host: host})
	cc, sc := tcpPair(t)
	ch := make(chan *Conn, 1)
	errc := make(chan error, 1)
	go func() {
		c, err := server.SecureInbound(testCtx(t), sc)
		ch <- c
		errc <- err
	}()
	if _, err := rawClient(cc, cert, certKey, nil); err != nil {
		t.Fatal(err)
	}
	c := <-ch
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if c.EarlyMuxer() != "" || c.RemotePeer() != peer.IDFromPublicKey(host.Public()) {
		t.Fatalf("early muxer %q, remote %s", c.EarlyMuxer(), c.RemotePeer())
	}
}

func TestServerRefusesMissingClientCert(t *testing.T) {
	server := newTransport(t, nil)
	cc, sc := tcpPair(t)
	errc := make(chan error, 1)
	go func() {
		_, err := server.SecureInbound(testCtx(t), sc)
		errc <- err
	}()
	tc := stdtls.Client(cc, &stdtls.Config{InsecureSkipVerify: true, NextProtos: []string{ALPN}})
	tc.Handshake()
	if err := <-errc; err == nil {
		t.Fatal("server accepted a client without certificate")
	}
}

func TestServerRefusesTLS12(t *testing.T) {
	server := newTransport(t, nil)
	cc, sc := tcpPair(t)
	errc := make(chan error, 1)
	go func() {
		_, err := server.SecureInbound(testCtx(t), sc)
		errc <- err
	}()
	tc := stdtls.Client(cc, &stdtls.Config{InsecureSkipVerify: true, MaxVersion: stdtls.VersionTLS12, NextProtos: []string{ALPN}})
	if err := tc.Handshake(); err == nil {
		t.Fatal("TLS 1.2 handshake succeeded")
	}
	if err := <-errc; err == nil {
		t.Fatal("server accepted TLS 1.2")
	}
}

// TestConfigs runs the crypto/tls configs as QUIC uses them.
func TestConfigs(t *testing.T) {
	ckey, skey := edKey(t), keyTypes[1].gen(t)
	cid, err := NewIdentity(ckey)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := NewIdentity(skey)
	if err != nil {
		t.Fatal(err)
	}
	scfg := sid.ConfigForServer(nil)
	run := func(expect peer.ID) (*stdtls.Conn, *stdtls.Conn, error, error) {
		cc, sc := tcpPair(t)
		ch := make(chan error, 1)
		ts := stdtls.Server(sc, scfg)
		go func() {
			err := ts.Handshake()
			if err != nil {
				sc.Close()
			}
			ch <- err
		}()
		tcl := stdtls.Client(cc, cid.ConfigForClient(expect, nil))
		errC := tcl.Handshake()
		if errC != nil {
			cc.Close()
		}
		return tcl, ts, errC, <-ch
	}
	// The same server config serves several handshakes.
	for range 2 {
		tcl, ts, errC, errS := run(sid.LocalPeer())
		if errC != nil || errS != nil {
			t.Fatalf("client %v, server %v", errC, errS)
		}
		if p := tcl.ConnectionState().NegotiatedProtocol; p != ALPN {
			t.Fatalf("ALPN %q", p)
		}
		k, err := PublicKeyFromChain(tcl.ConnectionState().PeerCertificates)
		if err != nil || peer.IDFromPublicKey(k) != sid.LocalPeer() {
			t.Fatalf("client side key: %v", err)
		}
		k, err = PublicKeyFromChain(ts.ConnectionState().PeerCertificates)
		if err != nil || peer.IDFromPublicKey(k) != cid.LocalPeer() {
			t.Fatalf("server side key: %v", err)
		}
	}
	_, _, errC, _ := run(cid.LocalPeer())
	var pm *secure.PeerMismatchError
	if !errors.As(errC, &pm) || pm.Expected != cid.LocalPeer() || pm.Actual != sid.LocalPeer() {
		t.Fatalf("client error %v, want PeerMismatchError", errC)
	}
}

func TestContextCancel(t *testing.T) {
	client := newTransport(t, nil)
	cc, sc := pipePair(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := client.SecureOutbound(ctx, cc, "")
		errc <- err
	}()
	// Read the ClientHello, then cancel while the client waits for the
	// server's answer.
	buf := make([]byte, 5)
	if _, err := io.ReadFull(sc, buf); err != nil {
		t.Fatal(err)
	}
	if buf[0] != 0x16 {
		t.Fatalf("first record type %#x, want handshake", buf[0])
	}
	go io.Copy(io.Discard, sc)
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// conn is left open for the caller, its deadline cleared.
	if _, err := cc.Write([]byte("still open")); err != nil {
		t.Fatalf("conn unusable after cancelled handshake: %v", err)
	}
}

func TestContextDeadline(t *testing.T) {
	server := newTransport(t, nil)
	_, sc := tcpPair(t) // the client never speaks
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := server.SecureInbound(ctx, sc)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	// Already expired: no I/O at all.
	if _, err := server.SecureInbound(ctx, sc); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}
