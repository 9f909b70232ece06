// Package procstat reads what the benchmark commands report about a
// process: resident set size from /proc, Go heap and stack figures, the
// goroutine count and CPU time. It also raises the open-file limit, which
// thousands of connections need. Standard library only, so that either
// stack's programs can use it without linking the other.
package procstat

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Go is a snapshot of the Go runtime's figures for this process.
type Go struct {
	HeapInuse  uint64 `json:"heap_inuse"`  // bytes, MemStats.HeapInuse
	StackInuse uint64 `json:"stack_inuse"` // bytes, MemStats.StackInuse
	Sys        uint64 `json:"sys"`         // bytes, MemStats.Sys
	Goroutines int    `json:"goroutines"`
	CPU        int64  `json:"cpu_ns"` // user + system CPU time of the process so far
}

// Read reads the figures as they are.
func Read() Go {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return Go{
		HeapInuse:  m.HeapInuse,
		StackInuse: m.StackInuse,
		Sys:        m.Sys,
		Goroutines: runtime.NumGoroutine(),
		CPU:        int64(CPUTime()),
	}
}

// Settled waits (up to 5 s) for the goroutine count to stop changing,
// collects garbage, returns freed memory to the OS and then reads the
// figures: the state to take deltas of.
func Settled() Go {
	g := runtime.NumGoroutine()
	for range 25 {
		time.Sleep(200 * time.Millisecond)
		g2 := runtime.NumGoroutine()
		if g2 == g {
			break
		}
		g = g2
	}
	runtime.GC()
	debug.FreeOSMemory()
	return Read()
}

// VmRSS is the resident set size of process pid (0: this process), in
// bytes, from /proc/<pid>/status.
func VmRSS(pid int) (int64, error) {
	path := "/proc/self/status"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("%s: VmRSS %q: %w", path, v, err)
				}
				return kb * 1024, nil
			}
		}
	}
	return 0, fmt.Errorf("%s: no VmRSS line", path)
}
