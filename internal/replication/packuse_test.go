package replication

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/disk"
)

// storedBlocks counts the block files and the pack files under a
// region's blocks/ directory.
func storedBlocks(t *testing.T, d *disk.Mem) (files, packs int) {
	t.Helper()
	var walk func(dir string)
	walk = func(dir string) {
		ents, err := d.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			p := path.Join(dir, e.Name())
			switch {
			case e.IsDir():
				walk(p)
			case strings.HasSuffix(e.Name(), ".pack"):
				packs++
			default:
				if _, err := blocks.ParseID(e.Name()); err == nil {
					files++
				}
			}
		}
	}
	walk("blocks")
	return files, packs
}

// onlyPacked fails unless the region holds its blocks in packs only:
// then every block read there comes from a pack.
func onlyPacked(t *testing.T, r *region, what string) {
	t.Helper()
	files, packs := storedBlocks(t, r.disk)
	if files != 0 || packs == 0 {
		t.Fatalf("%s: %d block files and %d packs in %s, want packs only", what, files, packs, r.name)
	}
}

// writeFiles writes n files of perFile blocks of random data, named
// prefix00…, and returns their contents by name.
func writeFiles(t *testing.T, ctx context.Context, fs *engine.FS, rng *rand.Rand, prefix string, n, perFile int) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for i := range n {
		buf := make([]byte, perFile*engine.MinBlockSize)
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		name := fmt.Sprintf("%s%02d", prefix, i)
		c, err := fs.Create(ctx, engine.RootCred, engine.RootIno, name, engine.CreateGuarded, engine.SetAttr{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := fs.Write(ctx, engine.RootCred, c.Attr.Ino, 0, buf); err != nil {
			t.Fatal(err)
		}
		out[name] = buf
	}
	return out
}

// readBack reads every file of want from fs and compares it, and returns
// how many of the reads fs's block store served from packs.
func readBack(t *testing.T, ctx context.Context, fs *engine.FS, want map[string][]byte) uint64 {
	t.Helper()
	before := fs.Stats().Blocks.PackedGets
	for name, data := range want {
		a, err := fs.Lookup(ctx, engine.RootCred, engine.RootIno, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got []byte
		for off := uint64(0); ; {
			b, eof, _, err := fs.Read(ctx, engine.RootCred, a.Ino, off, 1<<20)
			if err != nil {
				t.Fatalf("read %s at %d: %v", name, off, err)
			}
			got = append(got, b...)
			off += uint64(len(b))
			if eof || len(b) == 0 {
				break
			}
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes read back differ from the %d written", name, len(got), len(data))
		}
	}
	return fs.Stats().Blocks.PackedGets - before
}

func blocksOf(files map[string][]byte) uint64 {
	n := 0
	for _, d := range files {
		n += len(d) / engine.MinBlockSize
	}
	return uint64(n)
}

// TestPackedFailoverFailback: a replica that holds its blocks in packs
// only serves them after failover (every read of the promoted file
// system comes from a pack), and the original, after failback (reverse
// replication into it), packs what it receives and serves it from its
// packs after the second failover. It fails when the store stops reading
// packs.
func TestPackedFailoverFailback(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	if _, err := a.e.CreateFS(ctx, "fs-src", engine.FSOptions{BlockSize: engine.MinBlockSize}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(19, 1))
	first := writeFiles(t, ctx, a.fs("fs-src"), rng, "a", 6, 4)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, a.fs("fs-src"), b.fs("fs-dst"))
	more := writeFiles(t, ctx, a.fs("fs-src"), rng, "s", 4, 3)
	converged(t, a.fs("fs-src"), b.fs("fs-dst"))
	onlyPacked(t, b, "replica")

	// Failover: B promoted, A fenced.
	a.n.RemoveOutbound("r1")
	rp, err := b.n.Promote(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.rep("fs-src").Fence(ctx, rp.NewEpoch); err != nil {
		t.Fatal(err)
	}
	all := map[string][]byte{}
	for _, m := range []map[string][]byte{first, more} {
		for k, v := range m {
			all[k] = v
		}
	}
	if got, want := readBack(t, ctx, b.fs("fs-dst"), all), blocksOf(all); got < want {
		t.Fatalf("after failover: %d block reads from packs, want at least the %d blocks", got, want)
	}
	onB := writeFiles(t, ctx, b.fs("fs-dst"), rng, "b", 5, 3)

	// Failback: B replicates into A, which packs what it receives.
	_, packsBefore := storedBlocks(t, a.disk)
	hist, err := b.rep("fs-dst").EpochHistory()
	if err != nil {
		t.Fatal(err)
	}
	fork, err := PrepareResync(ctx, a.rep("fs-src"), hist, b.rep("fs-dst").DurableSeq())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.n.AddInbound(InboundSpec{ID: "r2", SourceRegion: b.name, SourceFS: "fs-dst", DestFS: "fs-src", Fork: fork}); err != nil {
		t.Fatal(err)
	}
	if err := b.n.AddOutbound(OutboundSpec{ID: "r2", SourceFS: "fs-dst", DestRegion: a.name, DestFS: "fs-src"}); err != nil {
		t.Fatal(err)
	}
	onB2 := writeFiles(t, ctx, b.fs("fs-dst"), rng, "c", 3, 3)
	converged(t, b.fs("fs-dst"), a.fs("fs-src"))
	if _, packs := storedBlocks(t, a.disk); packs <= packsBefore {
		t.Fatalf("failback: %d packs in the original, %d before: it did not pack what it received", packs, packsBefore)
	}

	// Failover back home: the blocks A received come from its packs.
	if _, err := a.n.Promote(ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	received := map[string][]byte{}
	for _, m := range []map[string][]byte{onB, onB2} {
		for k, v := range m {
			received[k] = v
		}
	}
	if got, want := readBack(t, ctx, a.fs("fs-src"), received), blocksOf(received); got < want {
		t.Fatalf("after failback: %d block reads from packs, want at least the %d blocks received", got, want)
	}
	readBack(t, ctx, a.fs("fs-src"), all)
}

// TestPackedCloneVerifyCollect: a clone of a replica whose blocks are
// all packed (what a drill makes) reads them from the packs; verify with
// every block reads each from its pack; once the clone is deleted and
// the source deletes files, the collector deletes their packed blocks
// (the packs of the deleted files' blocks go) and the replica still
// verifies. It fails when the store stops reading packs.
func TestPackedCloneVerifyCollect(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	if _, err := a.e.CreateFS(ctx, "fs-src", engine.FSOptions{BlockSize: engine.MinBlockSize}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(19, 2))
	files := writeFiles(t, ctx, a.fs("fs-src"), rng, "f", 8, 4)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, a.fs("fs-src"), b.fs("fs-dst"))
	late := writeFiles(t, ctx, a.fs("fs-src"), rng, "g", 6, 4)
	converged(t, a.fs("fs-src"), b.fs("fs-dst"))
	onlyPacked(t, b, "replica")

	clone, err := b.e.Clone(ctx, "fs-dst", "drill-clone")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[string][]byte{files, late} {
		if got, want := readBack(t, ctx, clone, m), blocksOf(m); got < want {
			t.Fatalf("clone of the replica: %d block reads from packs, want at least the %d blocks", got, want)
		}
	}
	dst := b.fs("fs-dst")
	before := dst.Stats().Blocks.PackedGets
	if err := dst.Replica().Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got, want := dst.Stats().Blocks.PackedGets-before, blocksOf(files)+blocksOf(late); got < want {
		t.Fatalf("verify with blocks: %d reads from packs, want at least the %d blocks", got, want)
	}
	if err := b.e.DeleteFS(ctx, "drill-clone"); err != nil {
		t.Fatal(err)
	}

	// The source deletes the late files: the replica's collector deletes
	// their blocks, out of the packs.
	_, packsBefore := storedBlocks(t, b.disk)
	deletesBefore := dst.Stats().Blocks.Deletes
	for name := range late {
		if _, err := a.fs("fs-src").Remove(ctx, engine.RootCred, engine.RootIno, name); err != nil {
			t.Fatal(err)
		}
	}
	converged(t, a.fs("fs-src"), dst)
	for range 3 {
		if _, err := b.e.CollectGarbage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := dst.Stats().Blocks.Deletes-deletesBefore, blocksOf(late); got < want {
		t.Fatalf("collector deleted %d blocks of the replica, want the %d of the deleted files", got, want)
	}
	if _, packs := storedBlocks(t, b.disk); packs >= packsBefore {
		t.Fatalf("%d packs after the collector, %d before: the packs of the deleted files stayed", packs, packsBefore)
	}
	if err := dst.Replica().Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	readBack(t, ctx, dst, files)
}
