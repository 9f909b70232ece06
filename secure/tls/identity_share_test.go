package tls

import (
	stdtls "crypto/tls"
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
