//go:build nointerop

package main

import (
	"errors"
	"io"
)

// cmdInterop: the runner was left out of this build.
func cmdInterop([]string, io.Writer, io.Writer) error {
	return errors.New("interop: this mote was built with the nointerop tag, which leaves the interop runner out")
}
