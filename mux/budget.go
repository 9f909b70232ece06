package mux

import "sync/atomic"

// Budget is receive memory shared by sessions: the bytes of stream data
// received and not yet read, summed over every session whose Config
// holds it (a node's MaxStreamMemory). Each session's own bounds
// (MaxStreams × InitialWindow + MaxSessionRecv) keep one peer in check;
// a Budget keeps many peers together in check, which per-session bounds
// cannot. It counts the memory that buffers hold, in the chunks they are
// made of, not the bytes in them: a stream holding one unread byte holds
// a 2 KiB chunk. Each stream holds its first BudgetFree of chunks
// outside the budget, so that small requests (identify, ping, a DHT
// query) are served while bulk streams of unread data hold it all;
// MaxStreams bounds what that adds. While the budget is spent, a data
// frame that needs a chunk the budget cannot cover resets its stream
// with ResetCodeLimit.
//
// It also serves other transports' receive windows (QUIC's), through
// Reserve and Release.
type Budget struct {
	limit   int64
	used    atomic.Int64
	refused atomic.Uint64
	streams atomic.Uint64 // see StreamsRefused
}

// StreamsRefused counts the inbound streams that the sessions holding
// this Budget reset for their stream limits (MaxStreams,
// MaxInboundStreams, AcceptBacklog): the budget is what a node's
// sessions share, so that is where their refusals add up.
func (b *Budget) StreamsRefused() uint64 { return b.streams.Load() }

func (b *Budget) streamRefused() {
	if b != nil {
		b.streams.Add(1)
	}
}

// BudgetFree is the chunk memory a stream may hold outside its Budget:
// one 16 KiB chunk, which holds any identify message or small request.
const BudgetFree = 16 << 10

// NewBudget returns a budget of limit bytes; limit ≤ 0 is unlimited.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Limit is the budget's size in bytes; 0 if unlimited.
func (b *Budget) Limit() int64 { return max(b.limit, 0) }

// Used is how many bytes are taken.
func (b *Budget) Used() int64 { return b.used.Load() }

// Refused counts the refusals: streams reset or refused, windows not grown.
func (b *Budget) Refused() uint64 { return b.refused.Load() }

// Reserve takes n bytes, all or nothing, and reports whether it could;
// a refusal is counted.
func (b *Budget) Reserve(n int64) bool {
	if b.limit <= 0 {
		b.used.Add(n)
		return true
	}
	for {
		cur := b.used.Load()
		if cur+n > b.limit {
			b.refused.Add(1)
			return false
		}
		if b.used.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// Release gives back n bytes taken with Reserve.
func (b *Budget) Release(n int64) { b.used.Add(-n) }

// charge is what a stream whose chunks hold held bytes takes from its
// budget.
func charge(held uint32) uint32 {
	if held <= BudgetFree {
		return 0
	}
	return held - BudgetFree
}
