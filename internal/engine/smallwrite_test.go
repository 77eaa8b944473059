package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kms/kmstest"
	"github.com/regionfs/regionfs/internal/engine/kv/pebblekv"
	"github.com/regionfs/regionfs/internal/race"
)

// TestSmallFileWriteReads is a guard of the create probe of issue 16
// (counted, not timed): the first write of a new small file (its data
// inline in the metadata) reads the store only for what it needs — the
// inode — and not the inline key, which an empty file cannot have valid
// bytes in (perf14: a point read of a missing key, ~1.3 % of the server's
// CPU per probe file). It fails when the write looks the key up again,
// and checks the data and a later write's read-modify-write.
func TestSmallFileWriteReads(t *testing.T) {
	v := newEnv(t)
	fs := v.mkfs("fs")
	ctx := context.Background()
	dir := must(fs.Mkdir(ctx, RootCred, RootIno, "d", SetAttr{}))(t).Attr.Ino
	data := bytes.Repeat([]byte("s"), 4096)
	const files = 20
	var gets uint64
	var inos []uint64
	for i := range files {
		ent := must(fs.Create(ctx, RootCred, dir, fmt.Sprint("f", i), CreateGuarded, SetAttr{}, 0))(t)
		g := v.kv.Gets()
		if _, _, err := fs.Write(ctx, RootCred, ent.Attr.Ino, 0, data); err != nil {
			t.Fatal(err)
		}
		gets += v.kv.Gets() - g
		inos = append(inos, ent.Attr.Ino)
	}
	t.Logf("%d first writes of 4 KiB: %d store reads", files, gets)
	if gets > files {
		t.Errorf("%d first writes of 4 KiB to new files: %d store reads, want at most %d (the inode each)", files, gets, files)
	}
	for i, ino := range inos {
		if _, _, err := fs.Write(ctx, RootCred, ino, 4090, []byte("tail")); err != nil {
			t.Fatal(err)
		}
		got, _, _, err := fs.Read(ctx, RootCred, ino, 0, 8192)
		if err != nil {
			t.Fatal(err)
		}
		if want := append(bytes.Repeat([]byte("s"), 4090), "tailss"...); !bytes.Equal(got, want) {
			t.Fatalf("file %d: %d bytes read back, not the data written", i, len(got))
		}
	}
}

// TestSmallFileAllocBytes is a guard of the create probe of issue 16
// (counted, not timed): the bytes the engine allocates for a new small
// file (a create, then a 4 KiB write, its data inline in the metadata), on
// Pebble as the server runs it. A small
// file's write copied its 4 KiB into a new buffer, that buffer again into
// the transaction's overlay, and encoded its journal record (the 4 KiB
// once more) into a buffer of its own that the batch then copied
// (create17): three allocations of the data's size per write, garbage at
// ~2 000 files per second. Measured 2026-12-06: 21 974-22 217 bytes per
// file before, 12 666-12 768 after. It fails when a copy of that size
// comes back. Not checked under the race detector, whose sync.Pool drops
// what Pebble pools (~43 KB per file).
func TestSmallFileAllocBytes(t *testing.T) {
	ctx := context.Background()
	// On the operating system's files: an in-memory one's writes allocate.
	st, err := pebblekv.Open(t.TempDir(), pebblekv.Options{CacheSizeBytes: 4 << 20, OverwriteWAL: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ring := kmstest.Keyring(t, "test-key", "alias/aws/elasticfilesystem")
	e, err := Open(ctx, Options{KV: st, Disk: disk.NewMem(), Keyring: ring, GCInterval: time.Hour, MergeDelay: time.Hour,
		OnFatal: func(err error) { t.Errorf("fatal storage error: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fs := must(e.CreateFS(ctx, "fs", FSOptions{}))(t)
	dir := must(fs.Mkdir(ctx, RootCred, RootIno, "d", SetAttr{}))(t).Attr.Ino
	data := bytes.Repeat([]byte("s"), 4096)
	file := func(i int) {
		ent := must(fs.Create(ctx, RootCred, dir, fmt.Sprint("f", i), CreateGuarded, SetAttr{}, 0))(t)
		if _, _, err := fs.Write(ctx, RootCred, ent.Attr.Ino, 0, data); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 { // the committer's buffers and trees, Pebble's pools
		file(i)
	}
	const files = 400
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range files {
		file(100 + i)
	}
	runtime.ReadMemStats(&after)
	per := float64(after.TotalAlloc-before.TotalAlloc) / files
	t.Logf("%.0f bytes allocated per small file (create + 4 KiB write)", per)
	if limit := 4.0 * 4096; !race.Enabled && per > limit {
		t.Errorf("%.0f bytes allocated per small file (create + 4 KiB write), want at most %.0f", per, limit)
	}
	got, _, _, err := fs.Read(ctx, RootCred, must(fs.Lookup(ctx, RootCred, dir, "f399"))(t).Ino, 0, 8192)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("a file read back %d bytes (%v), not the data written", len(got), err)
	}
}

// TestGenChecked: CreateGen and WriteGen, which let an NFS server skip
// reading the attributes before a create or a stable write (the create
// probe of issue 16), refuse a generation that is not the inode's with
// ErrStale and change nothing; with the inode's, they do what Create and
// Write do, and report the attributes before and after.
func TestGenChecked(t *testing.T) {
	v := newEnv(t)
	fs := v.mkfs("fs")
	ctx := context.Background()
	d := must(fs.Mkdir(ctx, RootCred, RootIno, "d", SetAttr{}))(t).Attr
	if _, err := fs.CreateGen(ctx, RootCred, d.Ino, d.Gen+1, "f", CreateGuarded, SetAttr{}, 0); !errors.Is(err, ErrStale) {
		t.Fatalf("CreateGen with another generation: %v, want ErrStale", err)
	}
	if _, err := fs.Lookup(ctx, RootCred, d.Ino, "f"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused create made its name: %v", err)
	}
	ent := must(fs.CreateGen(ctx, RootCred, d.Ino, d.Gen, "f", CreateGuarded, SetAttr{}, 0))(t)
	if ent.Dir.Before.Ino != d.Ino || ent.Dir.After.Ctime.Before(ent.Dir.Before.Ctime) || !ent.Created {
		t.Fatalf("CreateGen: %+v", ent)
	}
	f := ent.Attr
	if _, _, err := fs.WriteGen(ctx, RootCred, f.Ino, f.Gen+1, 0, []byte("data")); !errors.Is(err, ErrStale) {
		t.Fatalf("WriteGen with another generation: %v, want ErrStale", err)
	}
	if a := must(fs.GetAttr(ctx, f.Ino))(t); a.Size != 0 {
		t.Fatalf("the refused write left a size of %d", a.Size)
	}
	before, after, err := fs.WriteGen(ctx, RootCred, f.Ino, f.Gen, 0, []byte("data"))
	if err != nil || before.Size != 0 || after.Size != 4 || after.Ino != f.Ino {
		t.Fatalf("WriteGen: before %+v after %+v: %v", before, after, err)
	}
	if _, _, err := fs.WriteGen(ctx, RootCred, d.Ino, d.Gen, 0, []byte("data")); !errors.Is(err, ErrIsDir) {
		t.Fatalf("WriteGen to a directory: %v, want ErrIsDir", err)
	}
	if _, err := fs.CreateGen(ctx, RootCred, f.Ino, f.Gen, "g", CreateGuarded, SetAttr{}, 0); !errors.Is(err, ErrNotDir) {
		t.Fatalf("CreateGen in a file: %v, want ErrNotDir", err)
	}
}
