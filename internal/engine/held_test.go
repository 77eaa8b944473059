package engine

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// sparseFile writes data at off of a new file name in fs's root.
func sparseFile(t *testing.T, fs *FS, name string, off uint64, data []byte) uint64 {
	t.Helper()
	ctx := context.Background()
	en, err := fs.Create(ctx, RootCred, RootIno, name, CreateGuarded, SetAttr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 {
		if _, _, err := fs.Write(ctx, RootCred, en.Attr.Ino, off, data); err != nil {
			t.Fatal(err)
		}
	}
	return en.Attr.Ino
}

// wantUsed checks what ino reports it uses and its size, the file
// system's usage counter, and Verify (which recounts both).
func wantUsed(t *testing.T, fs *FS, what string, ino, size, used, total uint64) {
	t.Helper()
	ctx := context.Background()
	a, err := fs.GetAttr(ctx, ino)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if a.Size != size || a.Used != used {
		t.Errorf("%s: size %d used %d, want size %d used %d", what, a.Size, a.Used, size, used)
	}
	st, err := fs.FSStat(ctx)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if st.UsedBytes != total {
		t.Errorf("%s: FSSTAT used %d, want %d", what, st.UsedBytes, total)
	}
	if err := fs.Replica().Verify(ctx, true); err != nil {
		t.Errorf("%s: verify: %v", what, err)
	}
}

func page(b byte) []byte { return bytes.Repeat([]byte{b}, 4096) }

// TestSparseUsedBytes: a file written at 1 GiB uses the 4 KiB written,
// not its size (review25 defect 2b), through every path that stores or
// drops its data, and the file system's usage counter follows.
func TestSparseUsedBytes(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	fs, err := v.e.CreateFS(ctx, "sparse", FSOptions{}) // 1 MiB blocks
	if err != nil {
		t.Fatal(err)
	}
	const gib = 1 << 30
	const mib = 1 << 20
	ino := sparseFile(t, fs, "vm.img", gib, page('a'))
	wantUsed(t, fs, "4 KiB at 1 GiB (a pending extent)", ino, gib+4096, 4096, 4096)
	if err := fs.mergeExtents(ctx); err != nil {
		t.Fatal(err)
	}
	wantUsed(t, fs, "merged into a block", ino, gib+4096, 4096, 4096)

	if _, _, err := fs.Write(ctx, RootCred, ino, gib, page('b')); err != nil {
		t.Fatal(err)
	}
	wantUsed(t, fs, "overwritten (extent over the block)", ino, gib+4096, 4096, 4096)
	if err := fs.mergeExtents(ctx); err != nil {
		t.Fatal(err)
	}
	wantUsed(t, fs, "overwrite merged", ino, gib+4096, 4096, 4096)

	// 4 KiB in the middle of a block: the block stored reaches it.
	if _, _, err := fs.Write(ctx, RootCred, ino, 2*gib+512<<10, page('c')); err != nil {
		t.Fatal(err)
	}
	if err := fs.mergeExtents(ctx); err != nil {
		t.Fatal(err)
	}
	wantUsed(t, fs, "4 KiB at 2 GiB + 512 KiB", ino, 2*gib+516<<10, 4096+516<<10, 4096+516<<10)

	// A whole block of data, then of zeros (a hole again).
	if _, _, err := fs.Write(ctx, RootCred, ino, 3*gib, bytes.Repeat([]byte{'d'}, mib)); err != nil {
		t.Fatal(err)
	}
	wantUsed(t, fs, "a whole block at 3 GiB", ino, 3*gib+mib, 4096+516<<10+mib, 4096+516<<10+mib)
	if _, _, err := fs.Write(ctx, RootCred, ino, 3*gib, make([]byte, mib)); err != nil {
		t.Fatal(err)
	}
	wantUsed(t, fs, "the block zeroed", ino, 3*gib+mib, 4096+516<<10, 4096+516<<10)

	size := func(s uint64) {
		t.Helper()
		if _, _, err := fs.SetAttr(ctx, RootCred, ino, SetAttr{Size: &s}, nil); err != nil {
			t.Fatal(err)
		}
	}
	size(1 << 40)
	wantUsed(t, fs, "truncated up to 1 TiB", ino, 1<<40, 4096+516<<10, 4096+516<<10)
	size(2*gib + 100<<10)
	wantUsed(t, fs, "truncated into the middle block", ino, 2*gib+100<<10, 4096+100<<10, 4096+100<<10)
	size(gib + 100)
	wantUsed(t, fs, "truncated into the first block", ino, gib+100, 4096, 4096)
	size(gib / 2)
	wantUsed(t, fs, "truncated below the data", ino, gib/2, 0, 0)

	// A dense file counts its size rounded up to 4 KiB, and a small one
	// (inline data) 4 KiB, like on EFS.
	dense := sparseFile(t, fs, "dense", 0, bytes.Repeat([]byte{'e'}, 3*mib+10))
	small := sparseFile(t, fs, "small", 0, []byte("hello"))
	wantUsed(t, fs, "dense", dense, 3*mib+10, 3*mib+4096, 3*mib+8192)
	wantUsed(t, fs, "small", small, 5, 4096, 3*mib+8192)
	if _, err := fs.Remove(ctx, RootCred, RootIno, "dense"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Remove(ctx, RootCred, RootIno, "vm.img"); err != nil {
		t.Fatal(err)
	}
	wantUsed(t, fs, "after removals", small, 5, 4096, 4096)
}

// TestSparseUsedHugeTruncate: entries beyond EOF that a huge truncate
// leaves are held until the background releases them, and what the file
// uses (at most its size) is right all along.
func TestSparseUsedHugeTruncate(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t, modelOpts) // BatchEntries 4
	fs := v.mkfs("t")         // 64 KiB blocks
	bs := uint64(MinBlockSize)
	data := bytes.Repeat([]byte{'x'}, int(20*bs))
	ino := sparseFile(t, fs, "f", 10*bs, data)
	wantUsed(t, fs, "20 blocks at block 10", ino, 30*bs, 20*bs, 20*bs)
	s := 12*bs + 1
	if _, _, err := fs.SetAttr(ctx, RootCred, ino, SetAttr{Size: &s}, nil); err != nil {
		t.Fatal(err)
	}
	// 2 blocks and a page remain within EOF; the stale entries beyond
	// it count until the background (kicked by the truncate) releases
	// them, and the file never uses more than its size.
	a := must(fs.GetAttr(ctx, ino))(t)
	if a.Used != 12*bs+4096 && a.Used != 2*bs+4096 {
		t.Errorf("after a huge truncate: used %d, want %d (tail held) or %d", a.Used, 12*bs+4096, 2*bs+4096)
	}
	if err := fs.maint.releaseZombies(ctx); err != nil {
		t.Fatal(err)
	}
	wantUsed(t, fs, "stale tail released", ino, s, 2*bs+4096, 2*bs+4096)
}

// downgrade rewrites inodes as a store written before held existed has
// them: version 1 records, and the usage counter counting their sizes.
func downgrade(t *testing.T, fs *FS, inos ...uint64) {
	t.Helper()
	err := fs.do(context.Background(), opMutate, "downgrade", func(tx *txn) error {
		for _, ino := range inos {
			n, err := tx.inode(ino)
			if err != nil {
				return err
			}
			before := n.counted()
			n.held, n.heldOK = 0, false
			tx.usage(int64(n.counted())-int64(before), 0)
			tx.putInode(ino, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// inodeRecordVersion returns the version byte of ino's stored record.
func inodeRecordVersion(t *testing.T, fs *FS, ino uint64) byte {
	t.Helper()
	v := fs.readView()
	defer v.close()
	b := must(v.r.Get(attrKey(ino)))(t)
	return b[0]
}

// TestHeldUpgrade: a store written before held existed (version 1 inode
// records, a counter of sizes) reads as before, is recounted in the
// background when the new code opens it, a write to an old record
// recounts it first, and a replica gets it all by its journal.
func TestHeldUpgrade(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	src, err := v.e.CreateFS(ctx, "src", FSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Replica().SetPin("dst", 1); err != nil {
		t.Fatal(err)
	}
	const gib = 1 << 30
	sparse := sparseFile(t, src, "sparse", gib, page('a'))
	dense := sparseFile(t, src, "dense", 0, bytes.Repeat([]byte{'b'}, 100<<10))
	small := sparseFile(t, src, "small", 0, []byte("hi"))
	empty := sparseFile(t, src, "empty", 0, nil)
	if _, _, err := src.SetAttr(ctx, RootCred, empty, SetAttr{Size: u64(1 << 40)}, nil); err != nil {
		t.Fatal(err)
	}
	lazy := sparseFile(t, src, "lazy", 4*gib, page('c'))
	all := []uint64{sparse, dense, small, empty, lazy}
	downgrade(t, src, all...)
	for _, ino := range all {
		if got := inodeRecordVersion(t, src, ino); got != inodeVersion1 {
			t.Fatalf("inode %d record version %d after downgrade", ino, got)
		}
	}
	oldTotal := uint64(gib+4096) + 100<<10 + 2 + 1<<40 + 4*gib + 4096
	// The old figures, consistent (Verify counts an old record's size).
	wantUsed(t, src, "old store: sparse", sparse, gib+4096, gib+4096, oldTotal)

	// A write to an old record recounts it first.
	if _, _, err := src.Write(ctx, RootCred, lazy, 4*gib+4096, page('d')); err != nil {
		t.Fatal(err)
	}
	if got := inodeRecordVersion(t, src, lazy); got != inodeVersion {
		t.Errorf("record version %d after a write", got)
	}
	oldTotal = oldTotal - (4*gib + 4096) + 8192
	wantUsed(t, src, "old record written", lazy, 4*gib+8192, 8192, oldTotal)

	dst, err := v.e.CreateReplica(ctx, "dst", "")
	if err != nil {
		t.Fatal(err)
	}
	recs := must(src.Replica().ReadJournal(ctx, 1, 1000, 64<<20))(t)
	applied := ship(t, ctx, src, dst, recs)

	// The new code opens the store: stamped format 4, recounted in the
	// background (its first pass).
	if err := v.e.Close(); err != nil {
		t.Fatal(err)
	}
	b := v.kv.NewBatch()
	b.Set(serverKey(srvFormat), encodeU64(3))
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.Close()
	v.open()
	if got := must(decodeU64(must(v.kv.Get(serverKey(srvFormat)))(t)))(t); got != FormatVersion {
		t.Errorf("format %d after open, want %d", got, FormatVersion)
	}
	src = v.fs("src")
	<-src.maint.passed
	for _, ino := range all {
		if got := inodeRecordVersion(t, src, ino); got != inodeVersion {
			t.Errorf("inode %d record version %d after the sweep", ino, got)
		}
	}
	total := uint64(4096) + 100<<10 + 4096 + 0 + 8192
	wantUsed(t, src, "upgraded: sparse", sparse, gib+4096, 4096, total)
	wantUsed(t, src, "upgraded: dense", dense, 100<<10, 100<<10, total)
	wantUsed(t, src, "upgraded: small", small, 2, 4096, total)
	wantUsed(t, src, "upgraded: empty 1 TiB", empty, 1<<40, 0, total)

	// The replica gets the recount by the journal: the same figures.
	dst = v.fs("dst")
	recs = must(src.Replica().ReadJournal(ctx, applied+1, 1000, 64<<20))(t)
	if len(recs) == 0 {
		t.Fatal("the sweep wrote no journal record")
	}
	ship(t, ctx, src, dst, recs)
	for _, ino := range all {
		sa, da := must(src.GetAttr(ctx, ino))(t), must(dst.GetAttr(ctx, ino))(t)
		if sa.Used != da.Used || sa.Size != da.Size {
			t.Errorf("inode %d: source size %d used %d, replica size %d used %d", ino, sa.Size, sa.Used, da.Size, da.Used)
		}
	}
	su, du := must(src.Usage())(t), must(dst.Usage())(t)
	if su != du || su.Bytes != total {
		t.Errorf("usage: source %+v, replica %+v, want %d bytes", su, du, total)
	}
	if err := dst.Replica().Verify(ctx, true); err != nil {
		t.Errorf("replica verify: %v", err)
	}
}

// TestVerifyCatchesHeld: Verify reports a usage counter or a held count
// that does not match the data.
func TestVerifyCatchesHeld(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		want string
		fn   func(tx *txn, ino uint64) error
	}{
		{"counter", "usage says", func(tx *txn, _ uint64) error { tx.usage(4096, 0); return nil }},
		{"held", "says it holds", func(tx *txn, ino uint64) error {
			n, err := tx.inode(ino)
			if err != nil {
				return err
			}
			n.held += 4096
			tx.putInode(ino, n)
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t)
			fs := v.mkfs("v")
			ino := sparseFile(t, fs, "f", 1<<30, page('a'))
			wantUsed(t, fs, "sparse", ino, 1<<30+4096, 4096, 4096)
			if err := fs.do(ctx, opMutate, "break", func(tx *txn) error { return tc.fn(tx, ino) }); err != nil {
				t.Fatal(err)
			}
			err := fs.Replica().Verify(ctx, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("verify: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestCrashHeldSweep: a crash (kill -9) at any commit of the recount of
// an older store, with writes to its files between, leaves the usage
// counter equal to a recount of the records (Verify) after the restart,
// and the restart finishes the recount.
func TestCrashHeldSweep(t *testing.T) {
	ctx := context.Background()
	memKV, memDisk := kv.NewMemory(), disk.NewMem()
	e := openCrashEngine(t, ctx, memKV, memDisk)
	fs, err := e.CreateFS(ctx, "c", FSOptions{BlockSize: MinBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	const files = 3*heldSweepBatch + 7
	var inos []uint64
	var total uint64
	for i := range files {
		off := uint64(i%5) * 1 << 30
		data := page(byte(i))
		if i%3 == 0 {
			data = []byte("small")
			off = 0
		}
		inos = append(inos, sparseFile(t, fs, fmt.Sprintf("f%03d", i), off, data))
		total += 4096
	}
	downgrade(t, fs, inos...)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	var (
		mu     sync.Mutex
		points []*kv.Memory
	)
	memKV.SetSyncHook(func() {
		mu.Lock()
		defer mu.Unlock()
		points = append(points, memKV.CrashClone())
	})
	e = openCrashEngine(t, ctx, memKV, memDisk)
	fs = must(e.FS("c"))(t)
	// Writes to files the recount may or may not have reached: each
	// recounts its file first when it has not.
	for i := 1; i < files; i += 17 {
		if _, _, err := fs.Write(ctx, RootCred, inos[i], uint64(i%5)*1<<30+4096, page('w')); err != nil {
			t.Fatal(err)
		}
		total += 4096 // a page more held, far below the file's size
	}
	<-fs.maint.passed
	if u := must(fs.Usage())(t); u.Bytes != total {
		t.Errorf("usage %d bytes after the recount, want %d", u.Bytes, total)
	}
	if err := fs.Replica().Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	e.Close()
	memKV.SetSyncHook(nil)
	mu.Lock()
	pts := points
	mu.Unlock()
	if len(pts) < 4 {
		t.Fatalf("%d commits during the recount, want at least 4", len(pts))
	}
	for i, p := range pts {
		e := openCrashEngine(t, ctx, p, memDisk.CrashClone())
		fs := must(e.FS("c"))(t)
		if err := fs.Replica().Verify(ctx, true); err != nil {
			t.Errorf("crash point %d of %d: verify: %v", i, len(pts), err)
		}
		<-fs.maint.passed
		if err := fs.Replica().Verify(ctx, true); err != nil {
			t.Errorf("crash point %d of %d: verify after the recount: %v", i, len(pts), err)
		}
		for _, ino := range inos {
			if v := inodeRecordVersion(t, fs, ino); v != inodeVersion {
				t.Fatalf("crash point %d: inode %d still of version %d after the recount", i, ino, v)
			}
		}
		e.Close()
	}
	t.Logf("%d crash points checked", len(pts))
}
