package noise

import "sync"

// Buffers come from two pools so that an idle connection holds none:
// small ones for handshakes and short frames, large ones for full frames.
const (
	// maxFrameWire is one full transport frame on the wire.
	maxFrameWire = 2 + maxMsg
	// smallBufSize fits a handshake message with a typical payload and
	// batches of small frames.
	smallBufSize = 4 << 10
	// largeBufSize holds two full frames: a Write seals up to two frames
	// per syscall, and Read can hold a frame plus read-ahead.
	largeBufSize = 2 * maxFrameWire
)

var (
	smallPool = sync.Pool{New: func() any { b := make([]byte, smallBufSize); return &b }}
	largePool = sync.Pool{New: func() any { b := make([]byte, largeBufSize); return &b }}
)

// getBuf returns a pooled buffer of length at least n (n ≤ largeBufSize).
func getBuf(n int) *[]byte {
	if n <= smallBufSize {
		return smallPool.Get().(*[]byte)
	}
	if n <= largeBufSize {
		return largePool.Get().(*[]byte)
	}
	b := make([]byte, n)
	return &b
}

func putBuf(b *[]byte) {
	switch len(*b) {
	case smallBufSize:
		smallPool.Put(b)
	case largeBufSize:
		largePool.Put(b)
	}
}
