// Command sizereport breaks an unstripped Go ELF binary down by module:
// which dependencies the bytes of its code and data belong to. It is run
// by .ci/arm on the arm64 build of cmd/mote; see docs/BUILD.md.
//
// Usage:
//
//	go run ./internal/sizereport [-n 15] [-by module|package] BINARY
//
// Only symbols stored in the file are counted (text, read-only data,
// initialised data); zero-filled data (.bss, .noptrbss) takes no room in
// the file and is left out. The function table (.gopclntab) and other
// sections that no symbol covers are listed per section, not per module.
package main

import (
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	top := flag.Int("n", 15, "groups to list")
	by := flag.String("by", "module", "group symbols by `module` or by package")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: sizereport [-n N] [-by module|package] BINARY")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || (*by != "module" && *by != "package") {
		flag.Usage()
		os.Exit(2)
	}
	if err := report(os.Stdout, flag.Arg(0), *top, *by == "module"); err != nil {
		fmt.Fprintln(os.Stderr, "sizereport:", err)
		os.Exit(1)
	}
}

func report(w io.Writer, path string, top int, byModule bool) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return fmt.Errorf("%s: %w (sizereport needs a binary built without -ldflags=-s)", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}

	// Sections whose bytes are in the file.
	stored := make(map[elf.SectionIndex]bool)
	var secs []*elf.Section
	for i, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && s.Type != elf.SHT_NOBITS && s.Size > 0 {
			stored[elf.SectionIndex(i)] = true
			secs = append(secs, s)
		}
	}

	groups := make(map[string]uint64)
	covered := make(map[elf.SectionIndex]uint64)
	var total uint64
	for _, s := range syms {
		if !stored[s.Section] || s.Size == 0 {
			continue
		}
		g := packageOf(s.Name)
		if byModule {
			g = moduleOf(g)
		}
		groups[g] += s.Size
		covered[s.Section] += s.Size
		total += s.Size
	}

	fmt.Fprintf(w, "%s: %d bytes on disk\n", path, fi.Size())
	fmt.Fprintln(w, "sections stored in the file:")
	for _, s := range secs {
		fmt.Fprintf(w, "  %-14s %9d\n", s.Name, s.Size)
	}
	var other uint64
	for i, s := range f.Sections {
		if stored[elf.SectionIndex(i)] {
			if c := covered[elf.SectionIndex(i)]; c < s.Size {
				other += s.Size - c
			}
		}
	}

	type row struct {
		name string
		size uint64
	}
	rows := make([]row, 0, len(groups))
	for n, sz := range groups {
		rows = append(rows, row{n, sz})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].size != rows[j].size {
			return rows[i].size > rows[j].size
		}
		return rows[i].name < rows[j].name
	})
	kind := "package"
	if byModule {
		kind = "module"
	}
	fmt.Fprintf(w, "symbol bytes by %s (%d in symbols; %d in tables no symbol covers, mostly .gopclntab):\n", kind, total, other)
	for i, r := range rows {
		if i == top {
			var rest uint64
			for _, r := range rows[i:] {
				rest += r.size
			}
			fmt.Fprintf(w, "  %9d %5.1f%%  (%d more)\n", rest, pct(rest, total), len(rows)-i)
			break
		}
		fmt.Fprintf(w, "  %9d %5.1f%%  %s\n", r.size, pct(r.size, total), r.name)
	}
	return nil
}

func pct(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// packageOf returns the import path of the package a Go symbol belongs
// to, e.g. "crypto/tls" for "crypto/tls.(*Conn).Read" and
// "github.com/a/b" for "type:*github.com/a/b.T". The linker's per-function
// metadata (go:func.*) is a group of its own.
func packageOf(name string) string {
	if strings.HasPrefix(name, "go:func.") {
		return "(func metadata, go:func.*)"
	}
	for _, p := range []string{"type:", "go:itab.", "go:info.", "go:"} {
		if strings.HasPrefix(name, p) {
			name = name[len(p):]
			break
		}
	}
	name = strings.TrimPrefix(name, ".eq.") // generated equality functions
	name = strings.TrimLeft(name, "*[]")
	// The package path ends at the first dot after its last slash; stop
	// looking for slashes at the first bracket, parenthesis or comma, which
	// open receiver types and type arguments.
	cut := len(name)
	if i := strings.IndexAny(name, "[(,"); i >= 0 {
		cut = i
	}
	slash := strings.LastIndex(name[:cut], "/")
	rest := name[slash+1:]
	if i := strings.Index(rest, "."); i >= 0 {
		return name[:slash+1+i]
	}
	return name
}

// moduleOf maps an import path to its module, approximately: the
// standard library is "std", vendored copies inside it "std (vendor)",
// this module is itself, "host/owner/repo" for the big code hosts and
// "host/path" elsewhere.
func moduleOf(pkg string) string {
	const self = "github.com/mote-p2p/mote"
	first, _, _ := strings.Cut(pkg, "/")
	switch {
	case strings.HasPrefix(pkg, "("):
		return pkg
	case pkg == self || strings.HasPrefix(pkg, self+"/"):
		return self
	case first == "vendor":
		return "std (vendor)"
	case !strings.Contains(first, "."):
		return "std"
	}
	parts := strings.Split(pkg, "/")
	n := 2
	if first == "github.com" || first == "golang.org" || first == "gitlab.com" {
		n = 3
	}
	if len(parts) > n {
		parts = parts[:n]
	}
	return strings.Join(parts, "/")
}
