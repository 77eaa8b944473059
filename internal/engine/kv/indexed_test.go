package kv_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/engine/kv/kvtest"
)

// applyTo returns a kv.CommitFunc applying ops to a Memory, squashed first
// when squash is set.
func applyTo(m *kv.Memory, squash bool) kv.CommitFunc {
	return func(ops []kv.Op, sync bool) error {
		if squash {
			ranges, points := kv.Squash(ops)
			ops = append(ranges, points...)
		}
		return kvtest.Commit(m, ops, sync)
	}
}

// indexedStore is a Memory whose batches are indexed batches committing
// squashed operations: it runs the conformance suite.
type indexedStore struct{ *kv.Memory }

func (s indexedStore) NewBatch() kv.Batch {
	return kv.NewIndexedBatch(s.Memory, applyTo(s.Memory, true))
}

func TestIndexedBatch(t *testing.T) {
	kvtest.Run(t, func(*testing.T) kv.Store { return indexedStore{kv.NewMemory()} })
}

// TestSquashModel: random operation sequences give the same state applied
// in order and squashed.
func TestSquashModel(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	key := func() []byte { return fmt.Appendf(nil, "k%02d", r.IntN(30)) }
	for round := range 300 {
		var ops []kv.Op
		for range r.IntN(20) {
			switch r.IntN(3) {
			case 0:
				ops = append(ops, kv.Op{Kind: kv.OpSet, Key: key(), Value: fmt.Appendf(nil, "v%d", r.IntN(100))})
			case 1:
				ops = append(ops, kv.Op{Kind: kv.OpDelete, Key: key()})
			case 2:
				lo, hi := key(), key()
				ops = append(ops, kv.Op{Kind: kv.OpDeleteRange, Key: lo, Hi: hi})
			}
		}
		plain, squashed := kv.NewMemory(), kv.NewMemory()
		for _, m := range []*kv.Memory{plain, squashed} {
			b := m.NewBatch()
			for i := range 30 {
				b.Set(fmt.Appendf(nil, "k%02d", i), []byte("base"))
			}
			b.Commit(true)
			b.Close()
		}
		if err := applyTo(plain, false)(ops, true); err != nil {
			t.Fatal(err)
		}
		if err := applyTo(squashed, true)(ops, true); err != nil {
			t.Fatal(err)
		}
		if a, b := dump(t, plain), dump(t, squashed); a != b {
			t.Fatalf("round %d (seed %d): ops %v\nin order %s\nsquashed %s", round, seed, ops, a, b)
		}
	}
}

func dump(t *testing.T, s kv.Store) string {
	it, err := s.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	out := ""
	for ok := it.First(); ok; ok = it.Next() {
		v, _ := it.Value()
		out += string(it.Key()) + "=" + string(v) + " "
	}
	return out
}
