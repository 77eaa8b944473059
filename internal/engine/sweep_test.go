package engine

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// sharedBlocks stands in for a shared object store: one block store per
// domain directory that outlives the engines opened on it.
type sharedBlocks struct {
	mu     sync.Mutex
	stores map[string]*blocks.Memory
	keys   map[string]blocks.Keys
}

func (s *sharedBlocks) open(dir string, k blocks.Keys) (blocks.Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stores[dir] == nil {
		s.stores[dir], s.keys[dir] = blocks.NewMemory(k), k
	}
	return s.stores[dir], nil
}

// TestSweepOrphansSharedStore: blocks a writer put into a block store
// that is not a local block directory (an S3 bucket) and never committed
// (a node killed between its upload and its metadata commit) are removed
// by the sweep of the next unclean open; committed blocks stay. While
// ownership is not surely valid, the sweep deletes nothing.
func TestSweepOrphansSharedStore(t *testing.T) {
	ctx := context.Background()
	st := &sharedBlocks{stores: map[string]*blocks.Memory{}, keys: map[string]blocks.Keys{}}
	mem := kv.NewMemory()
	e, err := Open(ctx, Options{KV: mem, Disk: disk.NewMem(), Blocks: st.open})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := e.CreateFS(ctx, "f", FSOptions{BlockSize: MinBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	ino := must(fs.Create(ctx, RootCred, RootIno, "x", CreateGuarded, SetAttr{}, 0))(t).Attr.Ino
	data := append(bytes.Repeat([]byte{1}, MinBlockSize), bytes.Repeat([]byte{2}, MinBlockSize)...)
	if _, _, err := fs.Write(ctx, RootCred, ino, 0, data); err != nil {
		t.Fatal(err)
	}
	if len(st.stores) != 1 {
		t.Fatalf("%d block stores, want 1", len(st.stores))
	}
	var dir string
	for d := range st.stores {
		dir = d
	}
	// Two uploads whose commit never came.
	var orphans []blocks.ID
	for i := range 2 {
		b := bytes.Repeat([]byte{byte(10 + i)}, MinBlockSize)
		id := st.keys[dir].Hasher.Sum(b)
		if err := st.stores[dir].Put(ctx, id, b); err != nil {
			t.Fatal(err)
		}
		orphans = append(orphans, id)
	}
	stored := func() int {
		n := 0
		if err := st.stores[dir].Walk(ctx, func(blocks.ID) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := stored(); n != 4 {
		t.Fatalf("%d blocks stored, want 4", n)
	}
	crashed := mem.CrashClone()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// Ownership not surely valid: nothing is deleted.
	e2, err := Open(ctx, Options{KV: crashed.CrashClone(), Disk: disk.NewMem(), Blocks: st.open, Valid: func(uint64) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
	if n := stored(); n != 4 {
		t.Fatalf("%d blocks stored after a sweep without valid ownership, want 4", n)
	}

	e3, err := Open(ctx, Options{KV: crashed, Disk: disk.NewMem(), Blocks: st.open, Valid: func(uint64) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer e3.Close()
	if n := stored(); n != 2 {
		t.Fatalf("%d blocks stored after the sweep, want 2", n)
	}
	for _, id := range orphans {
		if ok, err := st.stores[dir].Has(ctx, id); err != nil || ok {
			t.Fatalf("orphan %s still stored (%v)", id, err)
		}
	}
	fs3, err := e3.FS("f")
	if err != nil {
		t.Fatal(err)
	}
	got, _, _, err := fs3.Read(ctx, RootCred, ino, 0, 4*MinBlockSize)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("content after the sweep: %d bytes, %v", len(got), err)
	}
	if err := fs3.Replica().Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
}
