package client

// Large reply buffers are kept for reuse: a sequential reader's 1 MiB
// READ replies each took a fresh allocation, whose first touch (page
// faults, the collector) was most of the mount's CPU in a read.

const (
	// recycleMin: replies at least this large are read into a kept
	// buffer.
	recycleMin = 256 << 10
	// replyBufBytes is the capacity of a kept buffer: a 1 MiB READ reply
	// with its headers, and room for the offset of the data in it (a
	// buffer handed back is the data's slice: see Buffers.Put).
	replyBufBytes = 1<<20 + 64<<10
	keptBuffers   = 8
)

// Buffers is a bounded free list of large reply buffers, shared by a
// session's connections.
type Buffers struct{ free chan []byte }

// NewBuffers returns an empty free list.
func NewBuffers() *Buffers { return &Buffers{free: make(chan []byte, keptBuffers)} }

func (b *Buffers) get() []byte {
	select {
	case x := <-b.free:
		return x
	default:
		return make([]byte, 0, replyBufBytes)
	}
}

// Put gives a reply's storage back (any slice of a reply: its capacity
// from there on is reused). The caller must hold no reference into it.
func (b *Buffers) Put(x []byte) {
	if b == nil || cap(x) < 1<<20+4<<10 {
		return
	}
	select {
	case b.free <- x[:0]:
	default:
	}
}
