//go:build !linux

package check

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
