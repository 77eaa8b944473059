package blocks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/blocks/blockstest"
	"github.com/regionfs/regionfs/internal/engine/disk"
)

func packBatch(t *testing.T, k blocks.Keys, n, seed int) ([]blocks.ID, [][]byte) {
	t.Helper()
	var ids []blocks.ID
	var data [][]byte
	for i := range n {
		b := bytes.Repeat([]byte{byte(seed), byte(i)}, 700+i)
		ids = append(ids, k.Hasher.Sum(b))
		data = append(data, b)
	}
	return ids, data
}

func packFiles(t *testing.T, fs disk.FS, dir string) []string {
	t.Helper()
	ents, err := fs.ReadDir(path.Join(dir, "packs"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestPutPack: a batch put as one pack is one file, read back, found by
// Has and Walk, kept by a crash once PutPack returned, and goes with
// Delete: a deleted block stays deleted when the store is opened again,
// and the pack goes with its last block.
func TestPutPack(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		t.Run(fmt.Sprint("sealed=", sealed), func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, sealed)
			ids, data := packBatch(t, f.keys, 5, 1)
			// One block already stored as a file is not packed again.
			if err := f.store.Put(ctx, ids[0], data[0]); err != nil {
				t.Fatal(err)
			}
			if err := f.store.PutPack(ctx, append(ids, ids[1]), append(data, data[1])); err != nil {
				t.Fatal(err)
			}
			if err := f.store.Sync(ctx); err != nil { // the file's name
				t.Fatal(err)
			}
			if st := f.store.Stats(); st.Puts != 5 {
				t.Fatalf("%d puts, want 5 (one file, four packed)", st.Puts)
			}
			if p := packFiles(t, f.fs, "b"); len(p) != 1 {
				t.Fatalf("pack files %v, want one", p)
			}
			c := f.fs.CrashClone()
			s, err := blocks.OpenDir(c, "b", f.keys)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range []*blocks.Dir{f.store, s} {
				for i, id := range ids {
					got, err := st.Get(ctx, id)
					if err != nil || !bytes.Equal(got, data[i]) {
						t.Fatalf("block %d: %v", i, err)
					}
					if ok, err := st.Has(ctx, id); !ok || err != nil {
						t.Fatalf("Has block %d: %v %v", i, ok, err)
					}
				}
				n := 0
				if err := st.Walk(ctx, func(blocks.ID) error { n++; return nil }); err != nil || n != len(ids) {
					t.Fatalf("walk: %d ids, %v", n, err)
				}
			}
			// Delete two of the packed blocks, reopen: they stay deleted.
			for _, id := range ids[1:3] {
				if err := s.Delete(ctx, id); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Get(ctx, id); !errors.Is(err, blocks.ErrNotFound) {
					t.Fatalf("deleted: %v", err)
				}
			}
			s, err = blocks.OpenDir(c, "b", f.keys)
			if err != nil {
				t.Fatal(err)
			}
			for i, id := range ids {
				got, err := s.Get(ctx, id)
				if i == 1 || i == 2 {
					if !errors.Is(err, blocks.ErrNotFound) {
						t.Fatalf("block %d deleted before reopening: %v", i, err)
					}
				} else if err != nil || !bytes.Equal(got, data[i]) {
					t.Fatalf("block %d after reopening: %v", i, err)
				}
			}
			if st := s.Stats(); st.CorruptReads != 0 {
				t.Fatalf("%d corrupt reads", st.CorruptReads)
			}
			for _, id := range ids[3:] {
				if err := s.Delete(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			if p := packFiles(t, c, "b"); len(p) != 0 {
				t.Fatalf("pack files %v after their last block went", p)
			}
		})
	}
}

// TestTornAndDuplicatePacks: at open, a pack whose trailer does not
// check (a crash inside its PutPack) is removed, and a block found in two
// packs is indexed once, from the older: the newer pack, with nothing
// else live, is removed.
func TestTornAndDuplicatePacks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, true)
	ids, data := packBatch(t, f.keys, 3, 2)
	if err := f.store.PutPack(ctx, ids, data); err != nil {
		t.Fatal(err)
	}
	p := packFiles(t, f.fs, "b")
	whole := readFile(t, f.fs, path.Join("b/packs", p[0]))
	writeFile(t, f.fs, "b/packs/00000000000000f0.pack", whole)
	writeFile(t, f.fs, "b/packs/00000000000000f1.pack", whole[:len(whole)-1])
	writeFile(t, f.fs, "b/packs/00000000000000f2.pack", nil)
	if err := f.fs.SyncDir("b/packs"); err != nil {
		t.Fatal(err)
	}
	s, err := blocks.OpenDir(f.fs, "b", f.keys)
	if err != nil {
		t.Fatal(err)
	}
	if got := packFiles(t, f.fs, "b"); len(got) != 1 || got[0] != p[0] {
		t.Fatalf("packs after open: %v, want %v", got, p)
	}
	for i, id := range ids {
		if got, err := s.Get(ctx, id); err != nil || !bytes.Equal(got, data[i]) {
			t.Fatalf("block %d: %v", i, err)
		}
	}
	// A new pack takes a number past every pack seen.
	ids2, data2 := packBatch(t, f.keys, 2, 3)
	if err := s.PutPack(ctx, ids2, data2); err != nil {
		t.Fatal(err)
	}
	if got := packFiles(t, f.fs, "b"); len(got) != 2 || got[1] <= "00000000000000f2.pack" {
		t.Fatalf("packs: %v", got)
	}
}

// hookFS runs a hook before every change a Dir makes to its files.
type hookFS struct {
	disk.FS
	hook func(op, name string)
}

func (h *hookFS) Create(name string) (disk.File, error) {
	h.hook("create", name)
	f, err := h.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &hookFile{File: f, h: h, name: name}, nil
}

func (h *hookFS) SyncDir(name string) error {
	h.hook("syncdir", name)
	err := h.FS.SyncDir(name)
	h.hook("syncdir done", name)
	return err
}

func (h *hookFS) Rename(a, b string) error { h.hook("rename", a); return h.FS.Rename(a, b) }
func (h *hookFS) Remove(name string) error { h.hook("remove", name); return h.FS.Remove(name) }

type hookFile struct {
	disk.File
	h    *hookFS
	name string
}

func (f *hookFile) Write(p []byte) (int, error) {
	f.h.hook("write", f.name)
	return f.File.Write(p)
}

func (f *hookFile) Sync() error {
	f.h.hook("sync", f.name)
	err := f.File.Sync()
	f.h.hook("sync done", f.name)
	return err
}

// TestPackCrashOrdering is the pack path's crash test: before and after
// every change PutPack makes to the disk, a block the store says it has
// (Has, which lets a caller commit metadata naming it) must be readable
// in what a crash at that moment leaves; whatever a crash leaves opens,
// and no block in it reads as corrupt. It fails when a pack's blocks are
// found before the pack's data and name are synced.
func TestPackCrashOrdering(t *testing.T) {
	ctx := context.Background()
	mem := disk.NewMem()
	k := blockstest.Keys(t, true)
	h := &hookFS{FS: mem, hook: func(string, string) {}}
	s, err := blocks.OpenDir(h, "b", k)
	if err != nil {
		t.Fatal(err)
	}
	ids, data := packBatch(t, k, 4, 4)
	points := 0
	h.hook = func(op, name string) {
		if !strings.Contains(name, "packs") {
			return
		}
		points++
		c := mem.CrashClone()
		cs, err := blocks.OpenDir(c, "b", k)
		if err != nil {
			t.Fatalf("crash at %s %s: open: %v", op, name, err)
		}
		for i, id := range ids {
			has, err := s.Has(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cs.Get(ctx, id)
			switch {
			case err == nil && !bytes.Equal(got, data[i]):
				t.Fatalf("crash at %s %s: block %d reads other data", op, name, i)
			case err != nil && !errors.Is(err, blocks.ErrNotFound):
				t.Fatalf("crash at %s %s: block %d: %v", op, name, i, err)
			case err != nil && has:
				t.Fatalf("crash at %s %s: the store has block %d, a crash now loses it", op, name, i)
			}
		}
	}
	if err := s.PutPack(ctx, ids, data); err != nil {
		t.Fatal(err)
	}
	h.hook("returned", "packs")
	if points < 5 {
		t.Fatalf("%d crash points in PutPack, want its create, write, sync and directory sync", points)
	}
	c := mem.CrashClone()
	cs, err := blocks.OpenDir(c, "b", k)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if _, err := cs.Get(ctx, id); err != nil {
			t.Fatalf("block %d after PutPack returned and a crash: %v", i, err)
		}
	}
}
