package interop

import "syscall"

// daemonSysProcAttr makes the kernel SIGKILL the Kubo daemon if the process
// that started it dies (e.g. the test binary is killed by `go test` on
// timeout), so no daemon can outlive the harness.
func daemonSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
