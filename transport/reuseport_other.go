//go:build !linux

package transport

import "syscall"

// reusePortSupported: port reuse is implemented on Linux only; elsewhere
// dials leave from ephemeral ports.
const reusePortSupported = false

func reusePortControl(_, _ string, _ syscall.RawConn) error { return nil }

func isAddrInUse(syscall.Errno) bool { return false }
