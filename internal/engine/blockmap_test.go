package engine

import (
	"bytes"
	"context"
	"testing"
)

// mapFile is a file of mapBlocks blocks a test reads through block maps.
const mapBlocks = 8

func mapContent(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7+i>>9)
	}
	return b
}

// primeMap reads blocks 0 and 1 of ino whole, as a sequential READ
// does, and fails unless the second came from the file's block map and
// that map names block 2: the test's change comes after it was made.
func primeMap(t *testing.T, fs *FS, ino uint64, want []byte) {
	t.Helper()
	ctx := context.Background()
	bs := int(fs.Geometry().BlockSize)
	h0 := fs.maps.hits.Load()
	for i := range 2 {
		d, _, _, h, err := fs.ReadHeld(ctx, RootCred, ino, uint64(i*bs), bs)
		if err != nil || !bytes.Equal(d, want[i*bs:(i+1)*bs]) {
			t.Fatalf("prime: block %d: %d bytes, %v", i, len(d), err)
		}
		h.Release()
	}
	if fs.maps.hits.Load() == h0 {
		t.Fatalf("prime: no READ from a block map")
	}
	if m := fs.mapOf(ino); m == nil || m.first > 2 || m.first+uint64(len(m.ents)) <= 2 {
		t.Fatalf("prime: no map of block 2: %+v", m)
	}
}

// checkRead reads ino whole-block by whole-block (each READ a
// sequential reader's) and its attributes, and fails unless they are
// want and size.
func checkRead(t *testing.T, what string, fs *FS, cred Cred, ino uint64, want []byte) {
	t.Helper()
	ctx := context.Background()
	bs := int(fs.Geometry().BlockSize)
	a, err := fs.GetAttr(ctx, ino)
	if err != nil || a.Size != uint64(len(want)) {
		t.Fatalf("%s: attributes: size %d, want %d, %v", what, a.Size, len(want), err)
	}
	for i := 0; i < mapBlocks; i++ {
		d, eof, at, h, err := fs.ReadHeld(ctx, cred, ino, uint64(i*bs), bs)
		lo, hi := min(i*bs, len(want)), min((i+1)*bs, len(want))
		if err != nil || !bytes.Equal(d, want[lo:hi]) || eof != (hi == len(want)) || at.Size != uint64(len(want)) {
			t.Fatalf("%s: block %d: %d bytes (want %d, equal %v), eof %v, size %d, %v",
				what, i, len(d), hi-lo, bytes.Equal(d, want[lo:hi]), eof, at.Size, err)
		}
		h.Release()
	}
}

// TestBlockMapStale: a file's block map is never served once anything
// changed the store (blockmap.go). Each case fills a map by reading the
// file (primeMap checks that the second READ came from it), changes the
// file through one of the engine's writers, and reads it again: the new
// content and attributes, never the map's. Each case fails when the
// store's change count misses its writer (checked: with the pipelined
// commits, which the committer's transactions use, left uncounted every
// case fails; TestSealedChanges guards each counted call of the store).
func TestBlockMapStale(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	bs := MinBlockSize
	newFile := func(t *testing.T, fs *FS, name string, seed byte) (uint64, []byte) {
		t.Helper()
		f := must(fs.Create(ctx, RootCred, RootIno, name, CreateGuarded, SetAttr{}, 0))(t).Attr
		want := mapContent(seed, mapBlocks*bs)
		if _, _, err := fs.Write(ctx, RootCred, f.Ino, 0, want); err != nil {
			t.Fatal(err)
		}
		return f.Ino, want
	}
	n := 0
	fsName := func() string { n++; return "fs" + string(rune('a'+n)) }
	// mapped is a new file system with a file "f" whose block map a
	// read made.
	mapped := func(t *testing.T, seed byte) (*FS, uint64, []byte) {
		t.Helper()
		fs := v.mkfs(fsName())
		ino, want := newFile(t, fs, "f", seed)
		primeMap(t, fs, ino, want)
		return fs, ino, want
	}

	t.Run("overwrite", func(t *testing.T) {
		fs, ino, want := mapped(t, 1)
		blk := mapContent(99, bs)
		mustDo(fs.Write(ctx, RootCred, ino, uint64(2*bs), blk))(t)
		copy(want[2*bs:], blk)
		checkRead(t, "after an overwrite", fs, RootCred, ino, want)
	})
	t.Run("pending extent and merge", func(t *testing.T) {
		fs, ino, want := mapped(t, 2)
		patch := []byte("a pending extent")
		mustDo(fs.Write(ctx, RootCred, ino, uint64(3*bs+5), patch))(t)
		copy(want[3*bs+5:], patch)
		checkRead(t, "after a small write", fs, RootCred, ino, want)
		primeMap(t, fs, ino, want)
		if err := fs.mergeExtents(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := v.e.CollectGarbage(ctx); err != nil {
			t.Fatal(err)
		}
		checkRead(t, "after the merge", fs, RootCred, ino, want)
	})
	t.Run("truncate", func(t *testing.T) {
		fs, ino, want := mapped(t, 3)
		size := uint64(2*bs + 100)
		mustDo(fs.SetAttr(ctx, RootCred, ino, SetAttr{Size: &size}, nil))(t)
		checkRead(t, "after a shrink", fs, RootCred, ino, want[:size])
		// Grown again: a hole where the blocks were.
		primeMap(t, fs, ino, want)
		size = uint64(mapBlocks * bs)
		mustDo(fs.SetAttr(ctx, RootCred, ino, SetAttr{Size: &size}, nil))(t)
		grown := append(bytes.Clone(want[:2*bs+100]), make([]byte, int(size)-2*bs-100)...)
		checkRead(t, "after a shrink and a growth", fs, RootCred, ino, grown)
	})
	t.Run("setattr mode", func(t *testing.T) {
		fs := v.mkfs(fsName())
		ino, want := newFile(t, fs, "f", 4)
		other := Cred{UID: 1000, GID: 1000}
		mode := uint32(0o644)
		mustDo(fs.SetAttr(ctx, RootCred, ino, SetAttr{Mode: &mode}, nil))(t)
		primeMap(t, fs, ino, want)
		checkRead(t, "readable by others", fs, other, ino, want)
		mode = 0o600
		mustDo(fs.SetAttr(ctx, RootCred, ino, SetAttr{Mode: &mode}, nil))(t)
		if a := must(fs.GetAttr(ctx, ino))(t); a.Mode&0o777 != 0o600 {
			t.Fatalf("mode %o after chmod 600", a.Mode)
		}
		_, _, _, _, err := fs.ReadHeld(ctx, other, ino, uint64(2*bs), bs)
		wantErr(t, err, ErrPermission)
	})
	t.Run("collected block", func(t *testing.T) {
		fs, ino, want := mapped(t, 5)
		// Block 2 replaced, its old block collected (and so gone from
		// the block store and cache): a stale map would name it.
		blk := mapContent(77, bs)
		mustDo(fs.Write(ctx, RootCred, ino, uint64(2*bs), blk))(t)
		copy(want[2*bs:], blk)
		if _, err := v.e.CollectGarbage(ctx); err != nil {
			t.Fatal(err)
		}
		checkRead(t, "after a collection", fs, RootCred, ino, want)
	})
	t.Run("clone", func(t *testing.T) {
		name := fsName()
		fs := v.mkfs(name)
		ino, want := newFile(t, fs, "f", 6)
		primeMap(t, fs, ino, want)
		c, err := v.e.Clone(ctx, name, name+"-clone")
		if err != nil {
			t.Fatal(err)
		}
		primeMap(t, c, ino, want)
		blk := mapContent(55, bs)
		mustDo(c.Write(ctx, RootCred, ino, uint64(2*bs), blk))(t)
		old := bytes.Clone(want)
		copy(want[2*bs:], blk)
		checkRead(t, "the clone after its write", c, RootCred, ino, want)
		checkRead(t, "the origin after its clone's write", fs, RootCred, ino, old)
		primeMap(t, fs, ino, old)
		mustDo(fs.Write(ctx, RootCred, ino, uint64(3*bs), blk))(t)
		copy(old[3*bs:], blk)
		checkRead(t, "the origin after its write", fs, RootCred, ino, old)
		checkRead(t, "the clone after its origin's write", c, RootCred, ino, want)
	})
	t.Run("replica apply and promotion", func(t *testing.T) {
		src := v.mkfs(fsName())
		dstName := fsName()
		if err := src.Replica().SetPin(dstName, 1); err != nil {
			t.Fatal(err)
		}
		ino, want := newFile(t, src, "f", 7)
		dst, err := v.e.CreateReplica(ctx, dstName, "")
		if err != nil {
			t.Fatal(err)
		}
		recs := must(src.Replica().ReadJournal(ctx, 1, 1000, 64<<20))(t)
		last := ship(t, ctx, src, dst, recs)
		primeMap(t, dst, ino, want)
		// Applied records: the replica's file changes under its map.
		blk := mapContent(33, bs)
		mustDo(src.Write(ctx, RootCred, ino, uint64(2*bs), blk))(t)
		copy(want[2*bs:], blk)
		size := uint64(7*bs + 9)
		mustDo(src.SetAttr(ctx, RootCred, ino, SetAttr{Size: &size}, nil))(t)
		want = want[:size]
		recs = must(src.Replica().ReadJournal(ctx, last+1, 1000, 64<<20))(t)
		ship(t, ctx, src, dst, recs)
		checkRead(t, "the replica after an apply", dst, RootCred, ino, want)
		// Promoted, then written: the new primary's own writes.
		primeMap(t, dst, ino, want)
		if _, err := dst.Replica().Promote(ctx); err != nil {
			t.Fatal(err)
		}
		checkRead(t, "the promoted replica", dst, RootCred, ino, want)
		primeMap(t, dst, ino, want)
		mustDo(dst.Write(ctx, RootCred, ino, uint64(3*bs), blk))(t)
		copy(want[3*bs:], blk)
		checkRead(t, "the promoted replica after a write", dst, RootCred, ino, want)
	})
	t.Run("resync after failback", func(t *testing.T) {
		aName, bName := fsName(), fsName()
		a := v.mkfs(aName)
		if err := a.Replica().SetPin(bName, 1); err != nil {
			t.Fatal(err)
		}
		ino, want := newFile(t, a, "f", 8)
		b, err := v.e.CreateReplica(ctx, bName, "")
		if err != nil {
			t.Fatal(err)
		}
		ship(t, ctx, a, b, must(a.Replica().ReadJournal(ctx, 1, 1000, 64<<20))(t))
		fork := b.Replica().DurableSeq()
		if _, err := b.Replica().Promote(ctx); err != nil {
			t.Fatal(err)
		}
		// The old source writes what the failover loses; the new
		// primary writes what the resync brings back to it.
		lost := mapContent(11, bs)
		mustDo(a.Write(ctx, RootCred, ino, uint64(2*bs), lost))(t)
		gone := bytes.Clone(want)
		copy(gone[2*bs:], lost)
		blk := mapContent(22, bs)
		mustDo(b.Write(ctx, RootCred, ino, uint64(3*bs), blk))(t)
		copy(want[3*bs:], blk)
		if err := a.Replica().Fence(ctx, 2); err != nil {
			t.Fatal(err)
		}
		primeMap(t, a, ino, gone)
		ka := must(a.Replica().KeysTouched(ctx, fork+1, a.Replica().DurableSeq()))(t)
		if err := a.Replica().BeginResync(ctx, ka); err != nil {
			t.Fatal(err)
		}
		snap := must(b.Replica().Snapshot(ctx))(t)
		defer snap.Close()
		ingestRanges(t, ctx, b, a, snap, keySetRanges(t, ctx, b, snap, fork, ka))
		if err := a.Replica().FinishResync(ctx, snap.Seq, snap.Seq, snap.Epoch, snap.Time); err != nil {
			t.Fatal(err)
		}
		checkRead(t, "the old source after its resync", a, RootCred, ino, want)
	})
}

// mustDo fails the test when a two-result call failed.
func mustDo[A, B any](_ A, _ B, err error) func(testing.TB) {
	return func(t testing.TB) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestBlockMapChangeCount: the store's change count moves around each
// commit and ingest (kv.Sealed.Changes), and a map read while a change
// was under way is not kept.
func TestBlockMapChangeCount(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	fs := v.mkfs("fs")
	bs := MinBlockSize
	f := must(fs.Create(ctx, RootCred, RootIno, "f", CreateGuarded, SetAttr{}, 0))(t).Attr
	want := mapContent(1, mapBlocks*bs)
	mustDo(fs.Write(ctx, RootCred, f.Ino, 0, want))(t)
	n0, settled := v.e.changes.Changes()
	if !settled {
		t.Fatalf("changes not settled with nothing being written")
	}
	must(fs.Mkdir(ctx, RootCred, RootIno, "d", SetAttr{}))(t)
	if n1, _ := v.e.changes.Changes(); n1 == n0 {
		t.Fatalf("a mkdir left the change count at %d", n0)
	}
	// A map read at a count that moved before it was kept is dropped.
	version, _ := fs.mapVersion()
	m := &blockMap{version: version - 1, n: inode{typ: TypeRegular, nlink: 1, size: uint64(len(want))}, ents: make([]blockEntry, 1)}
	fs.keepMap(f.Ino, m)
	if fs.mapOf(f.Ino) != nil {
		t.Fatalf("a map of an earlier state kept")
	}
}
