package peer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreateKey returns the private key stored at path, or, if the file
// does not exist, generates an Ed25519 key, stores it there and reports
// created=true. The file holds the PrivateKey protobuf (MarshalPrivateKey).
//
// A key file readable by group or others is still loaded, but its mode is
// tightened to 0600 first: refusing to start would punish the operator
// for a mistake that is safe to repair, and leaving it would keep the
// identity exposed. If two processes create the key at once, both end up
// with the one that reached the disk first.
func LoadOrCreateKey(path string) (key PrivateKey, created bool, err error) {
	key, err = loadKey(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key, err = GenerateEd25519(nil)
	if err != nil {
		return nil, false, err
	}
	err = writeKey(path, key, false)
	if errors.Is(err, fs.ErrExist) {
		// Another process won the race; use its key.
		key, err = loadKey(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// SaveKey writes key to path (mode 0600, parent directories 0700),
// replacing any existing file atomically: a crash leaves either the old
// key or the new one, never a truncated file.
func SaveKey(path string, key PrivateKey) error {
	return writeKey(path, key, true)
}

// loadKey reads and decodes a key file, repairing loose permissions.
func loadKey(path string) (PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("load key: %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			return nil, fmt.Errorf("load key: tighten permissions of %s: %w", path, err)
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxPrivateKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	k, err := UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	return k, nil
}

// writeKey stores key via a temporary file in the same directory. With
// replace=false the final step is a hard link, which fails with
// fs.ErrExist instead of overwriting a key created meanwhile.
func writeKey(path string, key PrivateKey, replace bool) (err error) {
	b, err := MarshalPrivateKey(key)
	if err != nil {
		return fmt.Errorf("save key: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save key: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if tmp != nil {
			tmp.Close()
		}
		os.Remove(tmpName) // after a rename this finds nothing, harmlessly
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("save key: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("save key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("save key: %w", err)
	}
	err = tmp.Close()
	tmp = nil
	if err != nil {
		return fmt.Errorf("save key: %w", err)
	}
	if replace {
		err = os.Rename(tmpName, path)
	} else {
		err = os.Link(tmpName, path)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			// Some filesystems have no hard links; fall back to rename,
			// giving up only the create-race protection.
			if _, statErr := os.Lstat(path); errors.Is(statErr, fs.ErrNotExist) {
				err = os.Rename(tmpName, path)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("save key: %w", err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable where the platform supports it; failure
// only weakens crash safety, so it is ignored.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}
