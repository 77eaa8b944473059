package nfs

import (
	"path/filepath"
	"testing"

	"github.com/regionfs/regionfs/internal/testkit"
)

// TestReadOpensNoBlockFile is the block-file guard of a sequential
// reader's READs (issue 16, counting, not timed): blocks written through
// the server and read back are read from the files their writes kept
// open (blocks.Descs): no block file opened by name for 32 READs of 32
// blocks, where each READ opened, fstat'ed and closed its block's file
// before (32 opens, checked without the kept files). A removed file's
// blocks, once collected, leave no descriptor of a deleted block file
// behind, and a new file of the same blocks (the same ids, new block
// files) reads its own data.
func TestReadOpensNoBlockFile(t *testing.T) {
	const n = 32
	dir := t.TempDir()
	f := newFixture(t, envOpt{dir: dir})
	fh := blocksFile(t, f, n)
	st := f.fs.Stats().Blocks
	readBlocks(t, f, fh, n)
	st2 := f.fs.Stats().Blocks
	reads, opens := st2.Gets-st.Gets, st2.FileOpens-st.FileOpens
	t.Logf("%d READs: %d block files read, %d opened by name", n, reads, opens)
	if reads < n/2 {
		t.Fatalf("%d block files read for %d READs of blocks just written: the cache answered, nothing measured", reads, n)
	}
	if opens != 0 {
		t.Fatalf("%d block files opened by name for %d READs of blocks just written, want 0 (read from the files their writes kept open)", opens, n)
	}
	if open, deleted := testkit.OpenFiles(t, filepath.Join(dir, "blocks")); open == 0 || deleted != 0 {
		t.Fatalf("%d block files open, %d of them deleted: want some, none deleted", open, deleted)
	}

	if _, err := f.c.Remove(f.ctx, f.root, "f"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.CollectGarbage(f.ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.fs.Stats().Blocks; st.Deletes < n {
		t.Fatalf("%d blocks deleted after the removal of a file of %d", st.Deletes, n)
	}
	if open, deleted := testkit.OpenFiles(t, filepath.Join(dir, "blocks")); deleted != 0 {
		t.Fatalf("after the collection: %d block files open, %d of them deleted (their space held)", open, deleted)
	}
	fh = blocksFile(t, f, n)
	readBlocks(t, f, fh, n)
}
