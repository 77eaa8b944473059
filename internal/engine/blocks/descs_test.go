package blocks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/blocks/blockstest"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/testkit"
)

// descsFixture is a Dir on a real directory whose block files are kept
// open in a set of at most max.
type descsFixture struct {
	root  string
	keys  blocks.Keys
	descs *blocks.Descs
	store *blocks.Dir
}

func newDescsFixture(t *testing.T, sealed bool, max int) *descsFixture {
	t.Helper()
	f := &descsFixture{root: t.TempDir(), keys: blockstest.Keys(t, sealed), descs: blocks.NewDescs(max)}
	d, err := disk.NewOS(f.root)
	if err != nil {
		t.Fatal(err)
	}
	if f.store, err = blocks.OpenDirWith(d, "b", f.keys, blocks.DirOptions{Descs: f.descs}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.descs.Close)
	return f
}

func (f *descsFixture) put(t *testing.T, data []byte) blocks.ID {
	t.Helper()
	id := f.keys.Hasher.Sum(data)
	if err := f.store.Put(context.Background(), id, data); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *descsFixture) getInto(t *testing.T, id blocks.ID, want []byte) {
	t.Helper()
	got, _, err := f.store.GetInto(context.Background(), id, make([]byte, 0, 256<<10))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("GetInto %s: %d bytes (want %d), %v", id, len(got), len(want), err)
	}
}

// TestDescsOpenOnce is the guard of the kept block files (issue 16,
// counting, not timed): a block read back after its Put, or read again,
// is read from the file its writer or its first read opened: no block
// file opened by name (Stats.FileOpens) for 4 blocks written and each
// read 3 times; a block written before the set kept files (or evicted
// from it) is opened once by name and kept. Without the set every read
// opens its file (12 opens, checked).
func TestDescsOpenOnce(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		t.Run(fmt.Sprint("sealed=", sealed), func(t *testing.T) {
			f := newDescsFixture(t, sealed, 8)
			var ids []blocks.ID
			var datas [][]byte
			for i := range 4 {
				data := bytes.Repeat([]byte{byte(i + 1)}, 100<<10)
				ids, datas = append(ids, f.put(t, data)), append(datas, data)
			}
			before := f.store.Stats().FileOpens
			for range 3 {
				for i, id := range ids {
					f.getInto(t, id, datas[i])
				}
			}
			if n := f.store.Stats().FileOpens - before; n != 0 {
				t.Fatalf("%d block files opened by name for 12 reads of 4 blocks just written, want 0", n)
			}
			if st := f.descs.Stats(); st.Open != 4 || st.Hits != 12 {
				t.Fatalf("kept files: %+v, want 4 open, 12 hits", st)
			}
			// Past the limit: the least recently used files are closed,
			// and a read of their block opens it once again.
			for i := range 6 {
				f.put(t, bytes.Repeat([]byte{byte(100 + i)}, 1000))
			}
			if st := f.descs.Stats(); st.Open != 8 {
				t.Fatalf("%d files kept open, want the limit, 8", st.Open)
			}
			if open, _ := testkit.OpenFiles(t, f.root); open != 8 {
				t.Fatalf("%d block files open in the process, want 8", open)
			}
			before = f.store.Stats().FileOpens
			f.getInto(t, ids[0], datas[0]) // evicted
			f.getInto(t, ids[0], datas[0])
			if n := f.store.Stats().FileOpens - before; n != 1 {
				t.Fatalf("%d opens by name for two reads of an evicted block, want 1", n)
			}
			f.descs.Close()
			if open, _ := testkit.OpenFiles(t, f.root); open != 0 {
				t.Fatalf("%d block files still open after Close", open)
			}
			f.getInto(t, ids[1], datas[1]) // still readable, by name
			if open, _ := testkit.OpenFiles(t, f.root); open != 0 {
				t.Fatalf("%d block files open after a read of a closed set", open)
			}
		})
	}
}

// TestDescsDeleted: a deleted block is never served from its kept file,
// and its file is closed with the deletion (no descriptor holds a
// removed file's space); a block put again after its deletion (the same
// content, so the same id) is read from its new file.
func TestDescsDeleted(t *testing.T) {
	ctx := context.Background()
	f := newDescsFixture(t, false, 8)
	data := bytes.Repeat([]byte("deleted "), 10000)
	id := f.put(t, data)
	f.getInto(t, id, data)
	if err := f.store.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.store.GetInto(ctx, id, make([]byte, 0, 256<<10)); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("GetInto of a deleted block: %v, want ErrNotFound", err)
	}
	if open, deleted := testkit.OpenFiles(t, f.root); open != 0 || deleted != 0 {
		t.Fatalf("after the delete: %d block files open, %d of them deleted", open, deleted)
	}
	f.put(t, data)
	f.getInto(t, id, data)
	if open, deleted := testkit.OpenFiles(t, f.root); open != 1 || deleted != 0 {
		t.Fatalf("after the put again: %d block files open, %d of them deleted, want 1 and 0", open, deleted)
	}
}

// TestDescsCorruptKept: a kept file whose bytes are damaged in place is
// refused (the check runs on every read), and once a good file replaces
// it under the block's name (a repair: a new file renamed over it) the
// block reads again: a kept file that fails its check is dropped.
func TestDescsCorruptKept(t *testing.T) {
	ctx := context.Background()
	f := newDescsFixture(t, false, 8)
	data := bytes.Repeat([]byte("kept "), 20000)
	id := f.put(t, data)
	f.getInto(t, id, data)
	name := filepath.Join(f.root, "b", id.String()[2:4], id.String())
	orig, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(orig)
	bad[len(bad)/2] ^= 1
	// In place: the kept descriptor reads the same file.
	w, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(bad, 0); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, _, err := f.store.GetInto(ctx, id, make([]byte, 0, 256<<10)); !errors.Is(err, blocks.ErrCorrupt) {
		t.Fatalf("GetInto of a damaged kept file: %v, want ErrCorrupt", err)
	}
	tmp := name + ".new"
	if err := os.WriteFile(tmp, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
	f.getInto(t, id, data)
	if open, deleted := testkit.OpenFiles(t, f.root); open != 1 || deleted != 0 {
		t.Fatalf("%d block files open, %d of them deleted, want 1 and 0", open, deleted)
	}
}

// TestDescsConcurrent: reads, puts, deletes and evictions at once (run
// with -race): every read returns its block or ErrNotFound, and once
// all ended and the set is closed no block file is open.
func TestDescsConcurrent(t *testing.T) {
	ctx := context.Background()
	f := newDescsFixture(t, false, 4)
	const n = 16
	datas := make([][]byte, n)
	ids := make([]blocks.ID, n)
	for i := range n {
		datas[i] = bytes.Repeat([]byte{byte(i)}, 4096+i)
		ids[i] = f.keys.Hasher.Sum(datas[i])
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			buf := make([]byte, 0, 8192)
			for r := range 300 {
				i := (r*7 + w*3) % n
				switch r % 5 {
				case 0:
					if err := f.store.Put(ctx, ids[i], datas[i]); err != nil {
						t.Error(err)
					}
				case 1:
					if err := f.store.Delete(ctx, ids[i]); err != nil {
						t.Error(err)
					}
				default:
					got, _, err := f.store.GetInto(ctx, ids[i], buf)
					if err != nil && !errors.Is(err, blocks.ErrNotFound) || err == nil && !bytes.Equal(got, datas[i]) {
						t.Errorf("block %d: %d bytes, %v", i, len(got), err)
					}
				}
			}
		})
	}
	wg.Wait()
	if st := f.descs.Stats(); st.Open > 4 {
		t.Fatalf("%d files kept, limit 4", st.Open)
	}
	if _, deleted := testkit.OpenFiles(t, f.root); deleted != 0 {
		t.Fatalf("%d deleted block files kept open", deleted)
	}
	f.descs.Close()
	if open, _ := testkit.OpenFiles(t, f.root); open != 0 {
		t.Fatalf("%d block files open after Close", open)
	}
}
