//go:build !unix

package procstat

import "time"

// CPUTime is not measured on this system; it returns 0.
func CPUTime() time.Duration { return 0 }

// RaiseNoFile does nothing on this system; it returns 0.
func RaiseNoFile() uint64 { return 0 }
