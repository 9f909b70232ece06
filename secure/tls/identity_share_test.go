package tls

import (
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
