package blocks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/blocks/blockstest"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
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

// packFiles returns the pack files of the store at dir (every fan-out
// directory's).
func packFiles(t *testing.T, fs disk.FS, dir string) []string {
	t.Helper()
	subs, err := fs.ReadDir(path.Join(dir, "packs"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range subs {
		ents, err := fs.ReadDir(path.Join(dir, "packs", s.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			out = append(out, path.Join(s.Name(), e.Name()))
		}
	}
	return out
}

var packPrefix = []byte("P\x00")

func openPacked(t *testing.T, fs disk.FS, m kv.Store, k blocks.Keys) *blocks.Dir {
	t.Helper()
	s, err := blocks.OpenDirPacked(fs, "b", k, blocks.PackIndex{KV: m, Prefix: packPrefix})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// commitSynced is the commit of a caller that names blocks in its
// metadata: synced, after PutPack returned (see blocks.PackPutter).
func commitSynced(t *testing.T, m kv.Store) {
	t.Helper()
	b := m.NewBatch()
	defer b.Close()
	b.Set([]byte("caller"), []byte("names the blocks"))
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
}

// TestPutPack: a batch put as one pack is one file, read back, found by
// Has and Walk, kept by a crash once PutPack returned and the caller's
// metadata committed, and goes with Delete: a deleted block stays
// deleted when the store is opened again, a crash before its bytes are
// freed leaves it readable or gone (never corrupt), and the pack goes
// with its last block.
func TestPutPack(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		t.Run(fmt.Sprint("sealed=", sealed), func(t *testing.T) {
			ctx := context.Background()
			mem, m := disk.NewMem(), kv.NewMemory()
			k := blockstest.Keys(t, sealed)
			store := openPacked(t, mem, m, k)
			ids, data := packBatch(t, k, 5, 1)
			// One block already stored as a file is not packed again.
			if err := store.Put(ctx, ids[0], data[0]); err != nil {
				t.Fatal(err)
			}
			if err := store.PutPack(ctx, append(ids, ids[1]), append(data, data[1])); err != nil {
				t.Fatal(err)
			}
			if err := store.Sync(ctx); err != nil { // the file's name
				t.Fatal(err)
			}
			commitSynced(t, m)
			if st := store.Stats(); st.Puts != 5 {
				t.Fatalf("%d puts, want 5 (one file, four packed)", st.Puts)
			}
			if p := packFiles(t, mem, "b"); len(p) != 1 {
				t.Fatalf("pack files %v, want one", p)
			}
			cm, c := m.CrashClone(), mem.CrashClone()
			s := openPacked(t, c, cm, k)
			for _, st := range []*blocks.Dir{store, s} {
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
			// Delete two of the packed blocks. A crash before their
			// bytes are freed leaves each readable or gone.
			for _, id := range ids[1:3] {
				if err := s.Delete(ctx, id); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Get(ctx, id); !errors.Is(err, blocks.ErrNotFound) {
					t.Fatalf("deleted: %v", err)
				}
			}
			early := openPacked(t, c.CrashClone(), cm.CrashClone(), k)
			for i, id := range ids {
				if got, err := early.Get(ctx, id); err != nil && !errors.Is(err, blocks.ErrNotFound) || err == nil && !bytes.Equal(got, data[i]) {
					t.Fatalf("block %d after a crash before its deletion was flushed: %v", i, err)
				}
			}
			if err := s.FlushDeletes(ctx); err != nil {
				t.Fatal(err)
			}
			c = c.CrashClone()
			s = openPacked(t, c, cm.CrashClone(), k)
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
			if err := s.FlushDeletes(ctx); err != nil {
				t.Fatal(err)
			}
			if p := packFiles(t, c, "b"); len(p) != 0 {
				t.Fatalf("pack files %v after their last block went", p)
			}
		})
	}
}

// TestPackOpenPrunes: at open, a pack past the newest one the index
// names (a crash inside its PutPack, or before the index's commit was
// durable), and one below it that the index does not name, are removed;
// the others stay, and a new pack takes the number after the newest
// named one.
func TestPackOpenPrunes(t *testing.T) {
	ctx := context.Background()
	mem, m := disk.NewMem(), kv.NewMemory()
	k := blockstest.Keys(t, true)
	s := openPacked(t, mem, m, k)
	ids, data := packBatch(t, k, 3, 2)
	if err := s.PutPack(ctx, ids[:2], data[:2]); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPack(ctx, ids[2:], data[2:]); err != nil {
		t.Fatal(err)
	}
	commitSynced(t, m)
	p := packFiles(t, mem, "b")
	if len(p) != 2 {
		t.Fatalf("packs %v, want 2", p)
	}
	whole := readFile(t, mem, path.Join("b/packs", p[0]))
	sub := path.Dir(p[0])
	writeFile(t, mem, "b/packs/"+sub+"/0000000000000000.pack", whole) // below, unnamed
	writeFile(t, mem, "b/packs/"+sub+"/00000000000000f1.pack", whole) // past
	writeFile(t, mem, "b/packs/"+sub+"/00000000000000f2.pack", nil)
	if err := mem.MkdirAll("b/packs/000002"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, mem, "b/packs/000002/0000000000002000.pack", whole)
	s = openPacked(t, mem, m, k)
	got := packFiles(t, mem, "b")
	if len(got) != 2 || got[0] != p[0] || got[1] != p[1] {
		t.Fatalf("packs after open: %v, want %v", got, p)
	}
	for i, id := range ids {
		if got, err := s.Get(ctx, id); err != nil || !bytes.Equal(got, data[i]) {
			t.Fatalf("block %d: %v", i, err)
		}
	}
	ids2, data2 := packBatch(t, k, 2, 3)
	if err := s.PutPack(ctx, ids2, data2); err != nil {
		t.Fatal(err)
	}
	if got := packFiles(t, mem, "b"); len(got) != 3 || got[2] != sub+"/0000000000000003.pack" {
		t.Fatalf("packs: %v", got)
	}
}

// countFS counts a Dir's calls that read or sync files and directories.
type countFS struct {
	disk.FS
	opens, readDirs, syncDirs int
}

func (c *countFS) Open(name string) (disk.File, error) {
	c.opens++
	return c.FS.Open(name)
}

func (c *countFS) ReadDir(name string) ([]fs.DirEntry, error) {
	c.readDirs++
	return c.FS.ReadDir(name)
}

func (c *countFS) SyncDir(name string) error {
	c.syncDirs++
	return c.FS.SyncDir(name)
}

// TestPackOpenCost is the guard of open's cost: a store of 4200 packs
// (two fan-out directories) opens without opening or syncing one pack
// file, reading the packs directory and the fan-out directories of the
// prune window only, and the blocks of its first pack and of its last
// read back.
func TestPackOpenCost(t *testing.T) {
	ctx := context.Background()
	mem, m := disk.NewMem(), kv.NewMemory()
	k := blockstest.Keys(t, false)
	s := openPacked(t, mem, m, k)
	const n = 4200
	var first, last blocks.ID
	for i := range n {
		b := []byte(fmt.Sprintf("block %d", i))
		id := k.Hasher.Sum(b)
		if i == 0 {
			first = id
		}
		last = id
		if err := s.PutPack(ctx, []blocks.ID{id}, [][]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	commitSynced(t, m)
	c := &countFS{FS: mem}
	s = openPacked(t, c, m, k)
	if c.opens != 0 || c.readDirs > 4 || c.syncDirs > 2 {
		t.Fatalf("open of %d packs: %d opens, %d directory reads, %d directory syncs; want 0, at most 4 (the store's, packs/, the two fan-out directories of the prune window), at most 2 (the store's parent, the store's for packs/)", n, c.opens, c.readDirs, c.syncDirs)
	}
	for _, id := range []blocks.ID{first, last} {
		if _, err := s.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if subs, err := mem.ReadDir("b/packs"); err != nil || len(subs) != 2 {
		t.Fatalf("fan-out directories of %d packs: %d, want 2 (%v)", n, len(subs), err)
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

func (h *hookFS) PunchHole(name string, off, n int64) error {
	h.hook("punch", name)
	err := h.FS.(disk.Puncher).PunchHole(name, off, n)
	h.hook("punch done", name)
	return err
}

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
// every change PutPack and the freeing of deleted blocks make to the
// disk, a block the store says it has (Has, which lets a caller commit
// metadata naming it) must be readable in what a crash at that moment
// leaves once the caller's synced commit is in it; whatever a crash
// leaves opens, and every block the image's own index names reads back
// (none is corrupt). It fails when a pack's blocks are named before the
// pack's data and name are synced, or a deleted block's range is punched
// out before its deletion from the index is durable.
func TestPackCrashOrdering(t *testing.T) {
	ctx := context.Background()
	mem, m := disk.NewMem(), kv.NewMemory()
	k := blockstest.Keys(t, true)
	h := &hookFS{FS: mem, hook: func(string, string) {}}
	s := openPacked(t, h, m, k)
	ids, data := packBatch(t, k, 4, 4)
	points := 0
	callerCommits := true
	h.hook = func(op, name string) {
		if !strings.Contains(name, "packs") {
			return
		}
		points++
		var has []bool
		for _, id := range ids {
			ok, err := s.Has(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			has = append(has, ok)
		}
		if callerCommits {
			commitSynced(t, m) // a caller names what Has found
		}
		cm, c := m.CrashClone(), mem.CrashClone()
		cs, err := blocks.OpenDirPacked(c, "b", k, blocks.PackIndex{KV: cm, Prefix: packPrefix})
		if err != nil {
			t.Fatalf("crash at %s %s: open: %v", op, name, err)
		}
		for i, id := range ids {
			got, err := cs.Get(ctx, id)
			switch {
			case err == nil && !bytes.Equal(got, data[i]):
				t.Fatalf("crash at %s %s: block %d reads other data", op, name, i)
			case err != nil && !errors.Is(err, blocks.ErrNotFound):
				t.Fatalf("crash at %s %s: block %d: %v", op, name, i, err)
			case err != nil && has[i]:
				t.Fatalf("crash at %s %s: the store has block %d, a crash now loses it", op, name, i)
			}
		}
	}
	if err := s.PutPack(ctx, ids, data); err != nil {
		t.Fatal(err)
	}
	h.hook("returned", "packs")
	if points < 6 {
		t.Fatalf("%d crash points in PutPack, want its directory's, its create, write, sync and directory sync", points)
	}
	// Deletions: no caller commits (a collector's deletions are not
	// synced): a punched range the image's index still names fails.
	points, callerCommits = 0, false
	for _, id := range ids[:3] {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FlushDeletes(ctx); err != nil {
		t.Fatal(err)
	}
	h.hook("flushed", "packs")
	if points < 4 {
		t.Fatalf("%d crash points freeing deleted packed blocks, want their punches", points)
	}
	for i, id := range ids {
		if _, err := s.Get(ctx, id); (i < 3) != errors.Is(err, blocks.ErrNotFound) {
			t.Fatalf("block %d after deletes: %v", i, err)
		}
	}
}
