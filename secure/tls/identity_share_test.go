package tls

import (
	stdtls "crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"github.com/mote-p2p/mote/peer"
)

// TestSharedIdentity: a transport reuses a given identity, and refuses
// one made for another key.
func TestSharedIdentity(t *testing.T) {
	key, _ := peer.GenerateEd25519(nil)
	other, _ := peer.GenerateEd25519(nil)
	id, err := NewIdentity(key)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(Config{Key: key, Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Identity() != id {
		t.Error("the given identity was not used")
	}
	if _, err := New(Config{Key: other, Identity: id}); err == nil {
		t.Error("an identity of another key was accepted")
	}
}

// TestConfigForDialRecordsKey: the dial config hands back the server key
// it verified, so QUIC need not check the chain again.
func TestConfigForDialRecordsKey(t *testing.T) {
	ck, _ := peer.GenerateEd25519(nil)
	sk, _ := peer.GenerateEd25519(nil)
	cid, err := NewIdentity(ck)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := NewIdentity(sk)
	if err != nil {
		t.Fatal(err)
	}
	cfg, verified := cid.ConfigForDial(peer.IDFromPublicKey(sk.Public()), nil)
	if verified() != nil {
		t.Fatal("a key before any handshake")
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() { done <- stdtls.Server(b, sid.ConfigForServer(nil)).Handshake() }()
	if err := stdtls.Client(a, cfg).Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if k := verified(); k == nil || !peer.KeyEqual(k, sk.Public()) {
		t.Fatalf("verified key = %v, want the server's", k)
	}
}

// TestConfigForListenRecordsKey: the listen config hands back each
// client's key once, by connection state, and nothing for a state it did
// not verify; a full table is dropped rather than grown.
func TestConfigForListenRecordsKey(t *testing.T) {
	sk, _ := peer.GenerateEd25519(nil)
	sid, err := NewIdentity(sk)
	if err != nil {
		t.Fatal(err)
	}
	cfg, verified := sid.ConfigForListen(nil)
	handshake := func() (stdtls.ConnectionState, peer.PublicKey) {
		t.Helper()
		ck, _ := peer.GenerateEd25519(nil)
		cid, err := NewIdentity(ck)
		if err != nil {
			t.Fatal(err)
		}
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		done := make(chan error, 1)
		go func() { done <- stdtls.Client(a, cid.ConfigForClient("", nil)).Handshake() }()
		srv := stdtls.Server(b, cfg)
		if err := srv.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return srv.ConnectionState(), ck.Public()
	}
	cs1, k1 := handshake()
	cs2, k2 := handshake()
	if k := verified(cs2); k == nil || !peer.KeyEqual(k, k2) {
		t.Fatalf("second client: verified key = %v, want its key", k)
	}
	if k := verified(cs1); k == nil || !peer.KeyEqual(k, k1) {
		t.Fatalf("first client: verified key = %v, want its key", k)
	}
	if k := verified(cs1); k != nil {
		t.Fatal("a key was handed out twice")
	}
	if k := verified(stdtls.ConnectionState{}); k != nil {
		t.Fatal("a key for a connection without certificates")
	}
}

// TestPendingBounded: unclaimed results never exceed maxPending.
func TestPendingBounded(t *testing.T) {
	var p pending
	key, _ := peer.GenerateEd25519(nil)
	for range 3*maxPending + 1 {
		p.put(&x509.Certificate{}, key.Public())
		if len(p.keys) > maxPending {
			t.Fatalf("%d unclaimed keys kept, at most %d", len(p.keys), maxPending)
		}
	}
}

// TestClassicKeyExchange: an identity with classic key exchange agrees on
// X25519 with a default peer in either role, and two default identities
// agree on the post-quantum hybrid.
func TestClassicKeyExchange(t *testing.T) {
	mk := func(classic bool) *Identity {
		k, _ := peer.GenerateEd25519(nil)
		id, err := NewIdentity(k)
		if err != nil {
			t.Fatal(err)
		}
		if classic {
			return id.WithClassicKeyExchange()
		}
		return id
	}
	for _, tc := range []struct {
		name           string
		client, server bool
		want           stdtls.CurveID
	}{
		{"default both", false, false, stdtls.X25519MLKEM768},
		{"classic client", true, false, stdtls.X25519},
		{"classic server", false, true, stdtls.X25519},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cid, sid := mk(tc.client), mk(tc.server)
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			done := make(chan error, 1)
			go func() { done <- stdtls.Client(a, cid.ConfigForClient(sid.LocalPeer(), nil)).Handshake() }()
			srv := stdtls.Server(b, sid.ConfigForServer(nil))
			if err := srv.Handshake(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := srv.ConnectionState().CurveID; got != tc.want {
				t.Errorf("key agreement %v, want %v", got, tc.want)
			}
		})
	}
	if id := mk(false); id.WithClassicKeyExchange() == id || id.curves != nil {
		t.Error("WithClassicKeyExchange changed the identity it was called on")
	}
}
