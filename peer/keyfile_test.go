package peer

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX permissions")
	}
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "identity.key")

	k1, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v", created, err)
	}
	if k1.Type() != KeyEd25519 {
		t.Errorf("generated %v key", k1.Type())
	}
	checkMode(t, path, 0o600)
	checkMode(t, dir, 0o700)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	k2, created, err := LoadOrCreateKey(path)
	if err != nil || created {
		t.Fatalf("second call: created=%v err=%v", created, err)
	}
	if !KeyEqual(k1.Public(), k2.Public()) {
		t.Fatal("reloaded a different key")
	}

	// Loose permissions are repaired on load.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(path); err != nil {
		t.Fatal(err)
	}
	checkMode(t, path, 0o600)

	// SaveKey replaces atomically, with any key type.
	rk := testRSAKey(t)
	if err := SaveKey(path, rk); err != nil {
		t.Fatal(err)
	}
	checkMode(t, path, 0o600)
	k3, created, err := LoadOrCreateKey(path)
	if err != nil || created || !KeyEqual(k3.Public(), rk.Public()) {
		t.Fatalf("after SaveKey: created=%v err=%v", created, err)
	}

	// A corrupt file is an error, never silently replaced.
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(path); err == nil {
		t.Fatal("corrupt key file loaded")
	}
	if b, _ := os.ReadFile(path); string(b) != "not a key" {
		t.Fatal("corrupt key file was overwritten")
	}
	// A directory is not a key.
	if _, _, err := LoadOrCreateKey(dir); err == nil {
		t.Fatal("directory loaded as key")
	}
	if err := SaveKey(path, nil); err == nil {
		t.Fatal("SaveKey(nil) succeeded")
	}
}

func TestKeyFileSpecVector(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(path, unhex(vecSecpPriv), 0o600); err != nil {
		t.Fatal(err)
	}
	k, created, err := LoadOrCreateKey(path)
	if err != nil || created {
		t.Fatalf("created=%v err=%v", created, err)
	}
	if got := IDFromPublicKey(k.Public()).String(); got != vecSecpID {
		t.Errorf("ID %s, want %s", got, vecSecpID)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s mode %o, want %o", path, got, want)
	}
}

// TestCreateKeyNoClobber covers the create race: the no-replace write used
// by LoadOrCreateKey must fail, not overwrite, when another process has
// created the key file in the meantime.
func TestCreateKeyNoClobber(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	first := testKey(1)
	if err := writeKey(path, first, false); err != nil {
		t.Fatal(err)
	}
	err := writeKey(path, testKey(2), false)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second create: err = %v, want fs.ErrExist", err)
	}
	k, created, err := LoadOrCreateKey(path)
	if err != nil || created || !KeyEqual(k.Public(), first.Public()) {
		t.Fatalf("key was replaced (created=%v, err=%v)", created, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}
