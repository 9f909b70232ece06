package check

import "syscall"

// sysProcAttr makes the kernel SIGKILL a Kubo process if the process that
// started it dies, so that no daemon outlives the runner.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
