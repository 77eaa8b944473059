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
