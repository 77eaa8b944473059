package engine

import (
	"testing"

	"github.com/regionfs/regionfs/internal/engine/blocks"
)

// TestBlockCacheKeys: the engine's one cache keeps the blocks of each
// domain apart, evicts the least recently used beyond its bound and
// drops what the collector deletes.
func TestBlockCacheKeys(t *testing.T) {
	c := newBlockCache(8 << 10)
	id := blocks.ID{byte(blocks.AlgBLAKE3), 1}
	c.put(1, id, []byte("one"))
	c.put(2, id, []byte("two"))
	if b, ok := c.get(1, id); !ok || string(b) != "one" {
		t.Fatalf("domain 1: %q %v", b, ok)
	}
	if b, ok := c.get(2, id); !ok || string(b) != "two" {
		t.Fatalf("domain 2: %q %v", b, ok)
	}
	c.drop(1, id)
	if _, ok := c.get(1, id); ok {
		t.Fatal("dropped block still cached")
	}
	if _, ok := c.get(2, id); !ok {
		t.Fatal("drop in domain 1 dropped domain 2's block")
	}
	// 1 KiB blocks (at most an eighth of the bound each): the oldest go.
	for i := range 10 {
		c.put(3, blocks.ID{byte(blocks.AlgBLAKE3), byte(10 + i)}, make([]byte, 1<<10))
	}
	if _, ok := c.get(3, blocks.ID{byte(blocks.AlgBLAKE3), 10}); ok {
		t.Fatal("least recently used block not evicted")
	}
	if _, ok := c.get(3, blocks.ID{byte(blocks.AlgBLAKE3), 19}); !ok {
		t.Fatal("newest block evicted")
	}
	if c.size > c.max {
		t.Fatalf("cache holds %d bytes, bound %d", c.size, c.max)
	}
}

// TestBlockCacheHolds: a block read into a pool buffer goes back to the
// pool when it is evicted and nobody holds it, not before its last hold
// is released (a READ reply still being written), and never when it was
// handed out for good (Read, get: callers that keep the bytes).
func TestBlockCacheHolds(t *testing.T) {
	c := newBlockCache(8 * poolBufBytes)
	fill := func(n byte) (blocks.ID, Hold) {
		b := &blockBuf{mem: c.pool.Get()}
		data := b.mem[:DefaultBlockSize]
		data[0] = n
		id := blocks.ID{byte(blocks.AlgBLAKE3), n}
		return id, c.putHeld(1, id, data, b)
	}
	evict := func(from byte) {
		for i := range byte(8) {
			_, h := fill(from + i)
			h.Release()
		}
	}
	held, h := fill(1)
	pinned, h2 := fill(2)
	h2.Release()
	if _, ok := c.get(1, pinned); !ok {
		t.Fatal("block 2 not cached")
	}
	data, h3, ok := c.getHeld(1, held)
	if !ok {
		t.Fatal("block 1 not cached")
	}
	h.Release() // the reader's first hold; the second (h3) and the cache's remain
	evict(10)
	if _, _, ok := c.getHeld(1, held); ok {
		t.Fatal("block 1 not evicted")
	}
	// Blocks 1 (held) and 2 (pinned) were evicted: neither went back.
	if n := c.pool.Free(); n != 0 {
		t.Fatalf("%d free buffers, want 0", n)
	}
	if data[0] != 1 {
		t.Fatal("held buffer changed")
	}
	h3.Release()
	if n := c.pool.Free(); n != 1 {
		t.Fatalf("%d free buffers after the last hold, want 1", n)
	}
	c.reset()
	if n := c.pool.Free(); n != 9 {
		t.Fatalf("%d free buffers after reset, want 9 (the pinned block's never)", n)
	}
}
