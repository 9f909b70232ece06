package interop

import (
	"bytes"
	"fmt"
	"sync"
)

// logBuffer is a concurrency-safe, bounded io.Writer. It keeps the first
// headMax bytes and the last tailMax bytes written to it, so that both the
// start-up banner and the most recent output of a long-running process are
// available for error messages while memory stays bounded.
type logBuffer struct {
	mu      sync.Mutex
	headMax int
	tailMax int
	head    []byte
	tail    []byte // ring-less: trimmed from the front when it grows past 2*tailMax
	total   int64
}

func newLogBuffer(headMax, tailMax int) *logBuffer {
	return &logBuffer{headMax: headMax, tailMax: tailMax}
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	b.total += int64(n)
	if room := b.headMax - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	if len(p) >= b.tailMax {
		b.tail = append(b.tail[:0], p[len(p)-b.tailMax:]...)
		return n, nil
	}
	b.tail = append(b.tail, p...)
	if len(b.tail) > 2*b.tailMax {
		b.tail = append(b.tail[:0], b.tail[len(b.tail)-b.tailMax:]...)
	}
	return n, nil
}

// String returns the retained output, marking any elided middle part.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	tail := b.tail
	if len(tail) > b.tailMax {
		tail = tail[len(tail)-b.tailMax:]
	}
	kept := int64(len(b.head) + len(tail))
	var sb bytes.Buffer
	sb.Write(b.head)
	if b.total > kept {
		fmt.Fprintf(&sb, "\n[... %d bytes elided ...]\n", b.total-kept)
	}
	sb.Write(tail)
	return sb.String()
}

// Tail returns at most the last n retained bytes.
func (b *logBuffer) Tail(n int) string {
	s := b.String()
	if len(s) > n {
		return "[...]" + s[len(s)-n:]
	}
	return s
}

// capBuffer is an io.Writer that stores at most max bytes and remembers
// whether anything was dropped.
type capBuffer struct {
	max       int
	buf       bytes.Buffer
	truncated bool
}

func (c *capBuffer) Write(p []byte) (int, error) {
	room := c.max - c.buf.Len()
	if room < len(p) {
		c.truncated = true
		if room > 0 {
			c.buf.Write(p[:room])
		}
		return len(p), nil
	}
	c.buf.Write(p)
	return len(p), nil
}
