package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/mote-p2p/mote/node"
)

// effectiveLimits combines a preset (the --preset flag, else the repo's
// Preset, else "server") with the repo's Limits overrides.
func effectiveLimits(cfg *repoConfig, presetFlag string) (string, node.Limits, error) {
	name := cfg.Preset
	if presetFlag != "" {
		name = presetFlag
	}
	if name == "" {
		name = "server"
	}
	l, err := node.Preset(name)
	if err != nil {
		return "", node.Limits{}, err
	}
	return name, l.Override(cfg.Limits).WithDefaults(), nil
}

// applyMemoryLimit sets the runtime's soft memory limit and GOGC from the
// limits, unless GOMEMLIMIT or GOGC in the environment already chose them.
func applyMemoryLimit(l node.Limits) {
	if l.GCPercent > 0 && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(l.GCPercent)
	}
	if l.MemoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(l.MemoryLimit)
	}
}

// memoryCheck is how often the daemon looks whether to hand freed memory
// back to the OS.
const memoryCheck = 5 * time.Second

// releaseMemory hands freed heap back to the OS soon after a burst (a
// flood of junk, many peers leaving) rather than at the runtime's own
// pace: an idle daemon allocates too little to start a collection, and
// the runtime's scavenger returns pages over minutes, so RSS would stay
// at the burst's height. Each check costs a ReadMemStats; a collection
// runs only if the heap grew by 256 KiB since the last one or holds 1 MiB
// of free pages not yet returned, so an idle daemon collects about once a
// minute and a busy one every few seconds, which its own allocation
// would make it do anyway.
func releaseMemory(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	last := m.HeapAlloc
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		runtime.ReadMemStats(&m)
		if m.HeapAlloc > last+256<<10 || m.HeapIdle-m.HeapReleased > 1<<20 {
			debug.FreeOSMemory()
			runtime.ReadMemStats(&m)
			last = m.HeapAlloc
		}
	}
}

// cmdConfig implements `mote config show [--effective] [--preset P]`.
func cmdConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "show" {
		return errors.New("config: want a subcommand: show")
	}
	fs := newFlags("config show", stderr)
	repo := fs.String("repo", defaultRepoDir(), "repo directory")
	effective := fs.Bool("effective", false, "print the limits in force: preset plus the repo's overrides, defaults filled in")
	preset := fs.String("preset", "", "preset to apply: "+fmt.Sprint(node.PresetNames))
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := readConfig(*repo)
	if errors.Is(err, os.ErrNotExist) {
		if !*effective {
			return fmt.Errorf("no repo at %s (start one with: mote daemon --repo %s)", *repo, *repo)
		}
		cfg, err = newRepoConfig(), nil
	}
	if err != nil {
		return err
	}
	if *effective {
		name, l, err := effectiveLimits(cfg, *preset)
		if err != nil {
			return err
		}
		cfg.Preset, cfg.Limits = name, l
		if cfg.DHT.Limits, err = effectiveDHTBudget(cfg, name); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(cfg)
}
