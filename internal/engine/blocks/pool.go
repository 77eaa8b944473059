package blocks

import (
	"context"
	"sync/atomic"
)

// Pool is a bounded free list of equal-size buffers, for memory that is
// filled and dropped at a high rate (block reads, request records). On
// the development VM the first touch of fresh memory costs about 3 ms
// per MiB, fifty times a copy: a buffer that comes back from the pool has
// been touched already, and the runtime neither zeroes it nor returns
// it to the kernel. Unlike a sync.Pool, the free list survives garbage
// collections (which a heap of 1 MiB buffers triggers often). It keeps at
// most keep buffers; more are left to the garbage collector.
//
// A buffer must be put back only when nothing refers to it any more: the
// pool hands it to the next Get as it is.
type Pool struct {
	size int
	free chan []byte
	made atomic.Uint64 // buffers Get allocated
}

// NewPool returns a pool of buffers of size bytes that keeps at most keep
// free buffers.
func NewPool(size, keep int) *Pool {
	return &Pool{size: size, free: make(chan []byte, keep)}
}

// Size is the length of the pool's buffers.
func (p *Pool) Size() int { return p.size }

// Get returns a buffer of Size bytes, a recycled one when there is one.
// Its content is whatever its last user left.
func (p *Pool) Get() []byte {
	select {
	case b := <-p.free:
		return b[:p.size]
	default:
		p.made.Add(1)
		return make([]byte, p.size)
	}
}

// Put gives b back for a later Get; a buffer of another capacity, or one
// more than the pool keeps, is dropped.
func (p *Pool) Put(b []byte) {
	if cap(b) != p.size {
		return
	}
	select {
	case p.free <- b[:p.size]:
	default:
	}
}

// Made reports how many buffers Get has allocated (fresh memory), for
// tests that count them.
func (p *Pool) Made() uint64 { return p.made.Load() }

// Free reports how many buffers the pool keeps now.
func (p *Pool) Free() int { return len(p.free) }

// ColdPutter is a Store that can store a block without keeping its
// content in the OS page cache (Dir, on a file system that supports the
// advice): for blocks nothing is expected to read soon, a replica's
// pushed blocks. PutCold is Put otherwise, with the same durability.
type ColdPutter interface {
	PutCold(ctx context.Context, id ID, data []byte) error
}

// BufGetter is a Store that can read a block into a buffer of the
// caller's (Dir), for the read path: GetInto is Get, except that it
// checks what the block's stored form carries (DecodeStored: the AES-GCM
// tag of a sealed block, the CRC-32C of a plaintext one) instead of
// proving the content against id by its keyed hash, and that when the stored form of the block fits in buf,
// the block is read into buf and checked there, and the plaintext
// returned lies within buf (inBuf true). Otherwise it is a new buffer.
// Get stays the full check (scrub, verification, repair).
type BufGetter interface {
	GetInto(ctx context.Context, id ID, buf []byte) (data []byte, inBuf bool, err error)
}
