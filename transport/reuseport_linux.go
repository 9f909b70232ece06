//go:build linux

package transport

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortSupported: Linux (3.9 and later) has SO_REUSEPORT.
const reusePortSupported = true

// reusePortControl sets SO_REUSEADDR and SO_REUSEPORT on a socket before it
// is bound: on listeners, so that dials may bind to the same port; on
// those dials, so that they may bind to the listener's port. Both sockets
// need the option and the same user (the kernel's rule), which also means
// another process of ours could listen on the port too.
func reusePortControl(_, _ string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if err == nil {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	}); cerr != nil {
		return cerr
	}
	if err != nil {
		return &reuseOptError{err}
	}
	return nil
}

// isAddrInUse reports whether errno says the local address is taken.
func isAddrInUse(errno syscall.Errno) bool {
	return errno == unix.EADDRINUSE || errno == unix.EADDRNOTAVAIL
}
