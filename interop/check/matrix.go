package check

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Status is a cell's outcome.
type Status string

// The outcomes.
const (
	Pass       Status = "pass"
	Fail       Status = "FAIL"
	NotChecked Status = "not checked" // the check could not be made; Reason says why
	NA         Status = "n/a"         // the combination does not exist (a transport the peer lacks)
)

// Row is one check.
type Row struct {
	ID       string `json:"id"`
	Protocol string `json:"protocol"`
	Check    string `json:"check"`
	Spec     string `json:"spec"` // libp2p/specs paths it follows
}

// Column is one transport and direction.
type Column struct {
	Name      string `json:"name"`      // "tcp+noise out"
	Transport string `json:"transport"` // "tcp" or "quic-v1"
	Security  string `json:"security"`  // "/noise", "/tls/1.0.0"; "" on QUIC (its TLS 1.3)
	Dialer    string `json:"dialer"`    // "mote" (out) or "peer" (in)
}

// Cell is the outcome of one check on one column.
type Cell struct {
	Row    string        `json:"row"`    // Row.ID
	Column string        `json:"column"` // Column.Name
	Status Status        `json:"status"`
	Reason string        `json:"reason,omitempty"` // why it is not a pass, in one line
	Detail string        `json:"detail,omitempty"` // what was seen
	Took   time.Duration `json:"took_ns"`
}

// PeerInfo names a peer the runner drove (Peer.Info).
type PeerInfo struct {
	Name    string   `json:"name"`             // in the reasons: "Kubo", "go-libp2p"
	Version string   `json:"version"`          // "0.43.0" (Kubo: `ipfs version`)
	Config  []string `json:"config,omitempty"` // settings beyond the runner's defaults (Kubo: KEY=JSON)
}

// Matrix is the outcome of Run.
type Matrix struct {
	Peer     string        `json:"peer"`
	Addrs    []string      `json:"addrs"`
	Mote     string        `json:"mote"`             // our agent version
	Versions []string      `json:"versions"`         // agent versions the peer sent
	Driven   *PeerInfo     `json:"driven,omitempty"` // Target.Peer
	Started  time.Time     `json:"started"`
	Took     time.Duration `json:"took_ns"`
	Columns  []Column      `json:"columns"`
	Rows     []Row         `json:"rows"`
	Cells    []Cell        `json:"cells"`
}

// Cell returns the cell of a row (Row.ID) and column (Column.Name).
func (m *Matrix) Cell(row, column string) (Cell, bool) {
	for _, c := range m.Cells {
		if c.Row == row && c.Column == column {
			return c, true
		}
	}
	return Cell{}, false
}

// Expectation is what a cell should be: its status, and a piece of its
// reason ("" for any).
type Expectation struct {
	Status Status
	Reason string
}

// HealthyPeer is what every cell of a driven peer that speaks all mote
// checks should be: a pass, but n/a in the columns of missing (a
// security protocol the peer lacks, "" for none), for the muxer rows on
// QUIC, for perf, which the reference peers do not serve, and for the
// DHT rows in which the peer asks mote on the out columns (mote's node,
// which serves the DHT, is on the in columns' connections). except
// overrides single rows by ID in the other cells.
func HealthyPeer(missing string, except map[string]Expectation) func(Row, Column) Expectation {
	return func(row Row, col Column) Expectation {
		switch {
		case col.Security == missing && missing != "":
			return Expectation{NA, "the peer does not offer " + missing}
		case col.Transport == "quic-v1" && (row.ID == "muxer" || row.ID == "early-muxer"):
			return Expectation{NA, "QUIC carries the streams itself"}
		case row.ID == "perf":
			return Expectation{NA, "not advertised"}
		case col.Dialer == "mote" && slices.Contains(kadServed, row.ID):
			return Expectation{NA, "checked in the in columns"}
		}
		if e, ok := except[row.ID]; ok {
			return e
		}
		return Expectation{Status: Pass}
	}
}

// Mismatches compares every cell of m with want and lists the ones that
// differ, a line each; a matrix without the six columns of a driven peer
// (three transports, both directions) is one mismatch.
func (m *Matrix) Mismatches(want func(Row, Column) Expectation) []string {
	var cols []string
	for _, tr := range []string{"tcp+noise", "tcp+tls", "quic-v1"} {
		cols = append(cols, tr+" out", tr+" in")
	}
	if len(m.Columns) != len(cols) || len(m.Cells) != len(m.Rows)*len(cols) || len(m.Rows) != len(rows) {
		return []string{fmt.Sprintf("%d rows, %d columns, %d cells", len(m.Rows), len(m.Columns), len(m.Cells))}
	}
	var out []string
	for i, col := range m.Columns {
		if col.Name != cols[i] {
			return []string{fmt.Sprintf("column %d is %q, want %q", i, col.Name, cols[i])}
		}
	}
	for _, row := range m.Rows {
		for _, col := range m.Columns {
			w := want(row, col)
			c, ok := m.Cell(row.ID, col.Name)
			if !ok || c.Status != w.Status || !strings.Contains(c.Reason, w.Reason) {
				out = append(out, fmt.Sprintf("%s / %s: %s %q (%s), want %s %q", row.ID, col.Name, c.Status, c.Reason, c.Detail, w.Status, w.Reason))
			}
		}
	}
	return out
}

// Failed reports whether any check failed.
func (m *Matrix) Failed() bool {
	for _, c := range m.Cells {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

// WriteJSON writes the matrix with every check's details as JSON.
func (m *Matrix) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes the matrix as an aligned table, the reasons as
// numbered notes below it.
func (m *Matrix) WriteText(w io.Writer) error {
	return m.write(w, false)
}

// WriteMarkdown writes the matrix as a Markdown table and notes.
func (m *Matrix) WriteMarkdown(w io.Writer) error {
	return m.write(w, true)
}

func (m *Matrix) write(w io.Writer, md bool) error {
	bw := new(strings.Builder)
	title := "mote interop " + m.Peer
	if len(m.Versions) > 0 {
		title += " (" + strings.Join(m.Versions, ", ") + ")"
	}
	if md {
		fmt.Fprintf(bw, "%s\n\n", title)
	} else {
		fmt.Fprintln(bw, title)
	}
	fmt.Fprintf(bw, "%s, %.1f s; %s; out: mote dials the peer, in: the peer dials mote\n", m.Started.Format("2006-01-02 15:04 MST"), m.Took.Seconds(), m.Mote)
	if m.Driven != nil {
		fmt.Fprintf(bw, "%s %s", m.Driven.Name, m.Driven.Version)
		if len(m.Driven.Config) > 0 {
			fmt.Fprintf(bw, ", config %s", strings.Join(m.Driven.Config, " "))
		}
		fmt.Fprintln(bw)
	}
	fmt.Fprintln(bw)

	// The table, with reasons as numbered notes.
	table := [][]string{{"protocol", "check"}}
	for _, c := range m.Columns {
		table[0] = append(table[0], c.Name)
	}
	var notes []string
	count := map[Status]int{}
	for _, row := range m.Rows {
		line := []string{row.Protocol, row.Check}
		for _, col := range m.Columns {
			c, ok := m.Cell(row.ID, col.Name)
			if !ok {
				line = append(line, "")
				continue
			}
			count[c.Status]++
			s := string(c.Status)
			if c.Status == NotChecked {
				s = "n/c"
			}
			if c.Reason != "" {
				i := indexOf(notes, c.Reason)
				if i < 0 {
					notes = append(notes, c.Reason)
					i = len(notes) - 1
				}
				s += fmt.Sprintf(" [%d]", i+1)
			}
			line = append(line, s)
		}
		table = append(table, line)
	}
	if md {
		for i, line := range table {
			fmt.Fprintf(bw, "| %s |\n", strings.Join(line, " | "))
			if i == 0 {
				bw.WriteString("|")
				for range line {
					bw.WriteString("---|")
				}
				bw.WriteString("\n")
			}
		}
	} else {
		widths := make([]int, len(table[0]))
		for _, line := range table {
			for i, s := range line {
				widths[i] = max(widths[i], len(s))
			}
		}
		for _, line := range table {
			var sb strings.Builder
			for i, s := range line {
				sb.WriteString(s)
				if i < len(line)-1 {
					for range widths[i] - len(s) + 2 {
						sb.WriteByte(' ')
					}
				}
			}
			fmt.Fprintln(bw, strings.TrimRight(sb.String(), " "))
		}
	}
	fmt.Fprintln(bw)
	for i, n := range notes {
		if md {
			fmt.Fprintf(bw, "%d. %s\n", i+1, n)
		} else {
			fmt.Fprintf(bw, "[%d] %s\n", i+1, n)
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(bw)
	}
	fmt.Fprintf(bw, "%d pass, %d FAIL, %d not checked (n/c), %d n/a\n", count[Pass], count[Fail], count[NotChecked], count[NA])
	_, err := io.WriteString(w, bw.String())
	return err
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
