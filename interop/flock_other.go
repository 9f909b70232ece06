//go:build !unix

package interop

import "os"

// On non-Unix platforms there is no flock; concurrent builds are still safe
// (each writes its own temp file and renames atomically), merely wasteful.
func tryLockFile(*os.File) (bool, error) { return true, nil }

func unlockFile(*os.File) error { return nil }
