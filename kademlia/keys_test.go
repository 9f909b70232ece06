package kademlia

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hexSet is a store's keys in hex, sorted.
func hexSet(s *KeyStore) []string {
	var out []string
	for _, k := range s.Keys() {
		out = append(out, hex.EncodeToString(k))
	}
	slices.Sort(out)
	return out
}

func mustOpen(t *testing.T, path string, max int) *KeyStore {
	t.Helper()
	s, err := OpenKeyStore(path, max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestKeyStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	s := mustOpen(t, path, 0)
	a, b, c := multihash("a"), multihash("b"), multihash("c")
	for _, tc := range []struct {
		add   [][]byte
		added int
	}{
		{[][]byte{a, b}, 2},
		{[][]byte{b, c, c}, 1}, // deduplicated against the store and the batch
		{[][]byte{a}, 0},
		{nil, 0},
	} {
		n, err := s.Add(tc.add...)
		if err != nil || n != tc.added {
			t.Fatalf("Add(%d keys) = %d, %v; want %d", len(tc.add), n, err, tc.added)
		}
	}
	want := []string{hex.EncodeToString(a), hex.EncodeToString(b), hex.EncodeToString(c)}
	slices.Sort(want)
	if got := hexSet(s); !slices.Equal(got, want) || s.Len() != 3 {
		t.Fatalf("keys %v (len %d), want %v", got, s.Len(), want)
	}
	// The file holds one hex line per key, before any Close: a crash
	// loses nothing Add returned.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	slices.Sort(lines)
	if !slices.Equal(lines, want) {
		t.Errorf("file lines %q, want %q", lines, want)
	}
	again := mustOpen(t, path, 0)
	if got := hexSet(again); !slices.Equal(got, want) {
		t.Errorf("reopened before close: %v, want %v", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, _ := again.Skipped(); n != 0 {
		t.Errorf("%d lines skipped in a file the store wrote", n)
	}
}

func TestKeyStoreCorruptLines(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		max     int
		keys    []string
		skipped int
		err     error
	}{
		{"blank lines and CRLF", "0a0b\r\n\n  1220ff \n\n", 0, []string{"0a0b", "1220ff"}, 0, nil},
		{"bad hex", "zz\n0a\n", 0, []string{"0a"}, 1, ErrCorruptKeyLine},
		{"odd digits", "abc\n0a\n", 0, []string{"0a"}, 1, ErrCorruptKeyLine},
		{"key too long", strings.Repeat("ab", MaxProviderKeyLen+1) + "\n0a\n", 0, []string{"0a"}, 1, ErrCorruptKeyLine},
		{"line past the read buffer", strings.Repeat("a", 10000) + "\n0a\n" + strings.Repeat("b", 5000), 0, []string{"0a"}, 2, ErrCorruptKeyLine},
		{"torn last key", "0a\n0b", 0, []string{"0a", "0b"}, 0, nil},
		{"torn last line", "0a\n0", 0, []string{"0a"}, 1, ErrCorruptKeyLine},
		{"duplicate lines", "0a\n0A\n0a\n", 0, []string{"0a"}, 0, nil},
		{"past the bound", "01\n02\n03\n04\n", 2, []string{"01", "02"}, 2, ErrKeyStoreFull},
		{"empty file", "", 0, nil, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s := mustOpen(t, path, tc.max)
			if got := hexSet(s); !slices.Equal(got, tc.keys) {
				t.Errorf("keys %v, want %v", got, tc.keys)
			}
			n, first := s.Skipped()
			if n != tc.skipped || (tc.err == nil) != (first == nil) || tc.err != nil && !errors.Is(first, tc.err) {
				t.Errorf("Skipped() = %d, %v; want %d, %v", n, first, tc.skipped, tc.err)
			}
			// A key added after a damaged tail is a line of its own.
			if tc.max == 0 {
				if _, err := s.Add([]byte{0xcc}); err != nil {
					t.Fatal(err)
				}
				s.Close()
				r := mustOpen(t, path, 0)
				want := slices.Sorted(slices.Values(append(slices.Clone(tc.keys), "cc")))
				if got := hexSet(r); !slices.Equal(got, want) {
					t.Errorf("after an Add and a reopen: %v, want %v", got, want)
				}
				if n2, _ := r.Skipped(); n2 != tc.skipped {
					t.Errorf("after an Add and a reopen %d lines skipped, want %d", n2, tc.skipped)
				}
			}
		})
	}
}

func TestKeyStoreBound(t *testing.T) {
	for _, file := range []bool{false, true} {
		path := ""
		if file {
			path = filepath.Join(t.TempDir(), "keys")
		}
		s := mustOpen(t, path, 3)
		for i, tc := range []struct {
			add   [][]byte
			added int
			err   error
		}{
			{[][]byte{{1}, {2}}, 2, nil},
			{[][]byte{{3}, {4}}, 0, ErrKeyStoreFull}, // all or none
			{[][]byte{{1}, {3}}, 1, nil},
			{[][]byte{{2}}, 0, nil}, // present already: no room needed
			{[][]byte{{5}}, 0, ErrKeyStoreFull},
		} {
			n, err := s.Add(tc.add...)
			if n != tc.added || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Errorf("file %v, step %d: Add = %d, %v; want %d, %v", file, i, n, err, tc.added, tc.err)
			}
		}
		if s.Len() != 3 {
			t.Errorf("file %v: %d keys, want 3", file, s.Len())
		}
		if file {
			s.Close()
			if r := mustOpen(t, path, 3); r.Len() != 3 {
				t.Errorf("reopened: %d keys, want 3", r.Len())
			}
		}
	}
	if s := mustOpen(t, "", 0); s.max != DefaultMaxKeys {
		t.Errorf("default bound %d, want %d", s.max, DefaultMaxKeys)
	}
}

func TestKeyStoreBadKeys(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "keys"), 0)
	for _, bad := range [][]byte{{}, make([]byte, MaxProviderKeyLen+1)} {
		n, err := s.Add(multihash("fine"), bad)
		if n != 0 || !errors.Is(err, ErrBadKey) {
			t.Errorf("Add of a %d-byte key = %d, %v; want 0, ErrBadKey", len(bad), n, err)
		}
	}
	if s.Len() != 0 {
		t.Errorf("%d keys after refused batches", s.Len())
	}
	if n, err := s.Add(make([]byte, MaxProviderKeyLen)); n != 1 || err != nil {
		t.Errorf("Add of the longest key = %d, %v", n, err)
	}
}

func TestKeyStoreRemove(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	s := mustOpen(t, path, 0)
	if _, err := s.Add([]byte{1}, []byte{2}, []byte{3}, []byte{4}, []byte{5}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		remove  [][]byte
		removed int
		keys    []string
	}{
		{[][]byte{{2}, {4}, {9}}, 2, []string{"01", "03", "05"}},
		{[][]byte{{9}}, 0, []string{"01", "03", "05"}},
		{[][]byte{{1}, {1}}, 1, []string{"03", "05"}},
	} {
		n, err := s.Remove(tc.remove...)
		if err != nil || n != tc.removed {
			t.Fatalf("Remove = %d, %v; want %d", n, err, tc.removed)
		}
		if got := hexSet(s); !slices.Equal(got, tc.keys) {
			t.Errorf("keys %v, want %v", got, tc.keys)
		}
		if got := hexSet(mustOpen(t, path, 0)); !slices.Equal(got, tc.keys) {
			t.Errorf("file after Remove holds %v, want %v", got, tc.keys)
		}
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
	// Appends after a rewrite go to the new file.
	if _, err := s.Add([]byte{6}); err != nil {
		t.Fatal(err)
	}
	if got := hexSet(mustOpen(t, path, 0)); !slices.Equal(got, []string{"03", "05", "06"}) {
		t.Errorf("after Remove then Add the file holds %v", got)
	}

	// A rewrite that cannot happen removes nothing, in memory or on disk.
	before, _ := os.ReadFile(path)
	if err := os.Mkdir(path+".tmp", 0o700); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Remove([]byte{3}); err == nil || n != 0 {
		t.Errorf("Remove with no way to write the new file = %d, %v; want an error", n, err)
	}
	after, _ := os.ReadFile(path)
	if s.Len() != 3 || !bytes.Equal(before, after) {
		t.Errorf("failed Remove changed the store: %d keys, file %q → %q", s.Len(), before, after)
	}
	os.Remove(path + ".tmp")
	if n, err := s.Remove([]byte{3}); n != 1 || err != nil {
		t.Errorf("Remove once possible again = %d, %v", n, err)
	}

	// Memory only: no file at all.
	m := mustOpen(t, "", 0)
	m.Add([]byte{1}, []byte{2})
	if n, err := m.Remove([]byte{1}); n != 1 || err != nil || m.Len() != 1 {
		t.Errorf("memory-only Remove = %d, %v, %d left", n, err, m.Len())
	}
}

func TestKeyStoreClosed(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "keys"), 0)
	s.Add([]byte{1})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Add([]byte{2}); !errors.Is(err, ErrKeyStoreClosed) {
		t.Errorf("Add after Close: %v", err)
	}
	if _, err := s.Remove([]byte{1}); !errors.Is(err, ErrKeyStoreClosed) {
		t.Errorf("Remove after Close: %v", err)
	}
	if s.Len() != 1 || len(s.Keys()) != 1 {
		t.Error("keys unreadable after Close")
	}
	if _, err := OpenKeyStore(filepath.Join(t.TempDir(), "no", "such", "dir"), 0); err == nil {
		t.Error("opened a store in a directory that does not exist")
	}
}
