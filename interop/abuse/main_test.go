package abuse

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// moteBin is the mote binary TestMain built for this run.
var moteBin string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

// waitingParallel is -test.parallel unless given: the parallel tests
// (forPresetsParallel) mostly wait on daemons, which are other processes.
const waitingParallel = 8

func runTests(m *testing.M) int {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", strconv.Itoa(waitingParallel))
	}
	dir, err := os.MkdirTemp("", "mote-abuse-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "abuse:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	moteBin = filepath.Join(dir, "mote")
	if err := buildMote(moteBin); err != nil {
		fmt.Fprintln(os.Stderr, "abuse:", err)
		return 1
	}
	goroutines := runtime.NumGoroutine()
	code := m.Run()
	if err := checkDaemonsReaped(); err != nil {
		fmt.Fprintln(os.Stderr, "abuse:", err)
		code = 1
	}
	if err := checkGoroutines(goroutines); err != nil {
		fmt.Fprintln(os.Stderr, "abuse:", err)
		code = 1
	}
	if testing.Verbose() {
		printFigures(os.Stdout)
	}
	return code
}

// buildMote builds ./cmd/mote of this module into bin. A colleague's edit
// may leave the tree unbuildable for a moment, so a failed build is
// retried for up to two minutes before the run gives up.
func buildMote(bin string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/mote")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("go build ./cmd/mote: %v\n%s", err, out)
		}
		fmt.Fprintf(os.Stderr, "abuse: go build ./cmd/mote failed, retrying: %s\n", bytes.TrimSpace(out))
		time.Sleep(5 * time.Second) // waiting for someone else's edit, not for a condition we can poll
	}
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not in a module (%q)", mod)
	}
	return filepath.Dir(mod), nil
}

// checkGoroutines waits for the test process to be back to the goroutines
// it had before the tests (a few runtime ones may come and go), and
// reports a leak with the stacks otherwise.
func checkGoroutines(before int) error {
	const slack = 2
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before+slack {
			return nil
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			return fmt.Errorf("%d goroutines left after the tests, %d before:\n%s", n, before, buf)
		}
		time.Sleep(50 * time.Millisecond) // polling the count
	}
}
