package kademlia

// keys.go keeps the list of keys we provide ourselves, so that a restart
// goes on reproviding them. The list is a flat file of one key per line,
// in lowercase hex, appended to and fsync'd on every Add and rewritten
// atomically (temporary file, then rename) on Remove. That is enough up
// to the default bound of a million keys (70 MB of file); past that an
// embedded store with indexed deletes would be the next step.

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// DefaultMaxKeys is the bound of a KeyStore opened with max <= 0: a
// million keys, about 100 MB of memory and 70 MB of file for 34-byte
// multihashes.
const DefaultMaxKeys = 1_000_000

// maxKeyLine bounds a line of the file: the hex of the longest provider
// key. Longer lines are corrupt, and are never read into memory whole.
const maxKeyLine = 2 * MaxProviderKeyLen

// keyWriteBuffer is the size of the writes Add and Remove make: big
// enough that a batch of keys costs few system calls.
const keyWriteBuffer = 64 << 10

var (
	// ErrKeyStoreFull is wrapped when adding keys would take a KeyStore
	// past its bound, and by the error about lines past the bound at open.
	ErrKeyStoreFull = errors.New("kademlia: key store is full")
	// ErrKeyStoreClosed is wrapped by Add and Remove after Close.
	ErrKeyStoreClosed = errors.New("kademlia: key store is closed")
	// ErrCorruptKeyLine is wrapped by the error about a line of the file
	// that is not a key, which OpenKeyStore skips.
	ErrCorruptKeyLine = errors.New("kademlia: corrupt line in the key store")
)

// KeyStore is the set of keys (multihashes) we provide, kept in memory
// and, unless it was opened with no path, in a file. It is safe for
// concurrent use.
type KeyStore struct {
	path string
	max  int

	mu      sync.Mutex
	keys    map[string]struct{}
	f       *os.File // append handle; nil without a file or after Close
	size    int64    // bytes of f that hold whole, synced lines
	closed  bool
	broken  error // a Remove renamed the new file but could not reopen it
	skipped int
	skipErr error
}

// OpenKeyStore loads the keys of the file at path, creating it if
// needed; path "" keeps the keys in memory only. It holds at most max
// keys (DefaultMaxKeys if max <= 0). Lines that are not keys are skipped
// and counted (see Skipped), as are keys past the bound, so that a
// damaged file never stops the node from starting; such lines stay in
// the file until a Remove rewrites it.
func OpenKeyStore(path string, max int) (*KeyStore, error) {
	if max <= 0 {
		max = DefaultMaxKeys
	}
	s := &KeyStore{path: path, max: max, keys: make(map[string]struct{})}
	if path == "" {
		return s, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("kademlia: open key store: %w", err)
	}
	size, torn, err := s.load(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("kademlia: open key store %s: %w", path, err)
	}
	if torn {
		// The last line has no newline (a write cut short by a crash, or
		// an edit): end it, or the next Add would glue a key to it.
		if _, err := f.Write([]byte{'\n'}); err != nil {
			f.Close()
			return nil, fmt.Errorf("kademlia: open key store %s: end the last line: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("kademlia: open key store %s: %w", path, err)
		}
		size++
	}
	s.f, s.size = f, size
	return s, nil
}

// load reads the file's keys. It returns the bytes read and whether the
// last line lacks its newline.
func (s *KeyStore) load(r io.Reader) (size int64, torn bool, err error) {
	br := bufio.NewReaderSize(r, 4096)
	buf := make([]byte, MaxProviderKeyLen)
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		size += int64(len(b))
		long := false
		for errors.Is(err, bufio.ErrBufferFull) {
			// Too long to be a key: skip to its end without holding it.
			long = true
			b, err = br.ReadSlice('\n')
			size += int64(len(b))
		}
		if err != nil && err != io.EOF {
			return size, false, fmt.Errorf("read line %d: %w", line, err)
		}
		if err == io.EOF && len(b) == 0 && !long {
			return size, false, nil
		}
		torn = err == io.EOF
		s.parseLine(line, b, long, buf)
		if torn {
			return size, true, nil
		}
	}
}

func (s *KeyStore) parseLine(line int, b []byte, long bool, buf []byte) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 && !long {
		return // blank lines are harmless
	}
	switch {
	case long || len(b) > maxKeyLine:
		s.skip(fmt.Errorf("%w: line %d is longer than %d characters", ErrCorruptKeyLine, line, maxKeyLine))
		return
	case len(b)%2 != 0:
		s.skip(fmt.Errorf("%w: line %d has an odd number of hex digits", ErrCorruptKeyLine, line))
		return
	}
	n, err := hex.Decode(buf, b)
	if err != nil {
		s.skip(fmt.Errorf("%w: line %d: %w", ErrCorruptKeyLine, line, err))
		return
	}
	k := string(buf[:n])
	if _, ok := s.keys[k]; ok {
		return
	}
	if len(s.keys) >= s.max {
		s.skip(fmt.Errorf("%w: line %d is past the bound of %d keys", ErrKeyStoreFull, line, s.max))
		return
	}
	s.keys[k] = struct{}{}
}

func (s *KeyStore) skip(err error) {
	s.skipped++
	if s.skipErr == nil {
		s.skipErr = err
	}
}

// Skipped reports the lines of the file OpenKeyStore skipped, corrupt or
// past the bound, and the error about the first of them (wrapping
// ErrCorruptKeyLine or ErrKeyStoreFull).
func (s *KeyStore) Skipped() (lines int, first error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.skipped, s.skipErr
}

// Add adds keys not yet in the store and returns how many it added. It
// adds all of them or none: a key that is not 1 to MaxProviderKeyLen
// bytes fails the call (wrapping ErrBadKey), as does passing the bound
// (ErrKeyStoreFull). The new keys are on disk when Add returns; each
// call costs an fsync, so add a batch of keys in one call.
func (s *KeyStore) Add(keys ...[]byte) (added int, err error) {
	for i, k := range keys {
		if len(k) == 0 || len(k) > MaxProviderKeyLen {
			return 0, fmt.Errorf("kademlia: key store: key %d of %d bytes, want 1 to %d: %w", i, len(k), MaxProviderKeyLen, ErrBadKey)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return 0, err
	}
	var fresh []string
	batch := make(map[string]struct{})
	for _, k := range keys {
		if _, ok := s.keys[string(k)]; ok {
			continue
		}
		if _, ok := batch[string(k)]; ok {
			continue
		}
		batch[string(k)] = struct{}{}
		fresh = append(fresh, string(k))
	}
	if len(s.keys)+len(fresh) > s.max {
		return 0, fmt.Errorf("kademlia: key store: %d new keys to %d would pass the bound of %d: %w", len(fresh), len(s.keys), s.max, ErrKeyStoreFull)
	}
	if len(fresh) == 0 {
		return 0, nil
	}
	if s.f != nil {
		n, err := writeKeys(s.f, fresh)
		if err == nil {
			err = s.f.Sync()
		}
		if err != nil {
			// Cut off what part of the batch reached the file, so that
			// memory and file agree and no torn line is left behind.
			s.f.Truncate(s.size)
			return 0, fmt.Errorf("kademlia: key store: append to %s: %w", s.path, err)
		}
		s.size += n
	}
	for _, k := range fresh {
		s.keys[k] = struct{}{}
	}
	return len(fresh), nil
}

// Remove removes keys and returns how many were in the store. A file is
// rewritten atomically, so that a crash leaves either the old list or
// the new one; if that fails, nothing is removed.
func (s *KeyStore) Remove(keys ...[]byte) (removed int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return 0, err
	}
	var gone []string
	for _, k := range keys {
		if _, ok := s.keys[string(k)]; ok {
			delete(s.keys, string(k))
			gone = append(gone, string(k))
		}
	}
	if len(gone) == 0 || s.path == "" {
		return len(gone), nil
	}
	if err := s.rewrite(); err != nil {
		if s.broken == nil {
			for _, k := range gone {
				s.keys[k] = struct{}{}
			}
			return 0, err
		}
		return len(gone), err
	}
	return len(gone), nil
}

// rewrite replaces the file by one of the keys in memory.
func (s *KeyStore) rewrite() error {
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("kademlia: key store: rewrite: %w", err)
	}
	all := make([]string, 0, len(s.keys))
	for k := range s.keys {
		all = append(all, k)
	}
	n, err := writeKeys(f, all)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("kademlia: key store: rewrite %s: %w", s.path, err)
	}
	// Make the rename itself durable. Some file systems refuse to sync a
	// directory; the rename is done either way.
	if dir, err := os.Open(filepath.Dir(s.path)); err == nil {
		dir.Sync()
		dir.Close()
	}
	// The old handle appends to the replaced file: open the new one.
	s.f.Close()
	s.f = nil
	nf, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.broken = fmt.Errorf("kademlia: key store: reopen %s after a rewrite: %w", s.path, err)
		return s.broken
	}
	s.f, s.size = nf, n
	return nil
}

func (s *KeyStore) usable() error {
	if s.closed {
		return ErrKeyStoreClosed
	}
	return s.broken
}

// writeKeys writes one hex line per key.
func writeKeys(w io.Writer, keys []string) (int64, error) {
	bw := bufio.NewWriterSize(w, keyWriteBuffer)
	var n int64
	line := make([]byte, 0, maxKeyLine+1)
	for _, k := range keys {
		line = hex.AppendEncode(line[:0], []byte(k))
		line = append(line, '\n')
		m, err := bw.Write(line)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, bw.Flush()
}

// Keys returns a copy of the keys, in no particular order.
func (s *KeyStore) Keys() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, 0, len(s.keys))
	for k := range s.keys {
		out = append(out, []byte(k))
	}
	return out
}

// Len is the number of keys.
func (s *KeyStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

// Close closes the file. The keys stay readable; Add and Remove fail.
func (s *KeyStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("kademlia: key store: close %s: %w", s.path, err)
	}
	return nil
}
