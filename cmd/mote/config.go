package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

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

// applyMemoryLimit sets the runtime's soft memory limit from the limits,
// unless GOMEMLIMIT in the environment already chose one.
func applyMemoryLimit(l node.Limits) {
	if l.MemoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(l.MemoryLimit)
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
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(cfg)
}
