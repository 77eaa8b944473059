package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// blockFiles lists the block files of the env's disk.
func blockFiles(t *testing.T, d disk.FS) []string {
	t.Helper()
	var out []string
	var walk func(dir string)
	walk = func(dir string) {
		ents, err := d.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			p := dir + "/" + e.Name()
			if e.IsDir() {
				walk(p)
			} else if !strings.HasPrefix(e.Name(), "tmp-") {
				out = append(out, p)
			}
		}
	}
	walk("blocks")
	return out
}

func rewriteFile(t *testing.T, d disk.FS, name string, mutate func([]byte)) {
	t.Helper()
	f, err := d.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	size, _ := f.Size()
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	f.Close()
	mutate(b)
	if err := d.Remove(name); err != nil {
		t.Fatal(err)
	}
	w, err := d.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Sync()
	w.Close()
}

// withAndWithoutKMS runs f as a subtest on a new file system "f" of the
// smallest blocks, plain and encrypted with key test-key.
func withAndWithoutKMS(t *testing.T, f func(t *testing.T, ctx context.Context, v *env, fs *FS, key string)) {
	for _, key := range []string{"", "test-key"} {
		t.Run("kms="+key, func(t *testing.T) {
			ctx := context.Background()
			v := newEnv(t)
			fs, err := v.e.CreateFS(ctx, "f", FSOptions{BlockSize: MinBlockSize, KMSKeyID: key})
			if err != nil {
				t.Fatal(err)
			}
			f(t, ctx, v, fs, key)
		})
	}
}

func TestFlippedBitInBlock(t *testing.T) {
	withAndWithoutKMS(t, func(t *testing.T, ctx context.Context, v *env, fs *FS, _ string) {
		ino := must(fs.Create(ctx, RootCred, RootIno, "x", CreateGuarded, SetAttr{}, 0))(t).Attr.Ino
		data := bytes.Repeat([]byte("regionfs"), MinBlockSize/8)
		if _, _, err := fs.Write(ctx, RootCred, ino, 0, data); err != nil {
			t.Fatal(err)
		}
		files := blockFiles(t, v.disk)
		if len(files) != 1 {
			t.Fatalf("%d block files", len(files))
		}
		rewriteFile(t, v.disk, files[0], func(b []byte) { b[len(b)/2] ^= 0x08 })
		for i := 1; i <= 2; i++ {
			_, _, _, err := fs.Read(ctx, RootCred, ino, 0, 100)
			wantErr(t, err, ErrCorrupt)
			st := fs.Stats()
			if st.Corruption != uint64(i) || st.Blocks.CorruptReads != uint64(i) {
				t.Fatalf("after %d reads: corruption %d, corrupt reads %d", i, st.Corruption, st.Blocks.CorruptReads)
			}
		}
		rep, err := v.e.Scrub(ctx)
		if err != nil || len(rep.Corrupt) != 1 {
			t.Fatalf("scrub: %+v %v", rep, err)
		}
		if err := fs.Replica().Verify(ctx, true); err == nil {
			t.Fatal("verify did not notice the corrupt block")
		}
	})
}

func TestCorruptKVValue(t *testing.T) {
	withAndWithoutKMS(t, func(t *testing.T, ctx context.Context, v *env, fs *FS, key string) {
		d := must(fs.Mkdir(ctx, RootCred, RootIno, "d", SetAttr{}))(t).Attr.Ino
		k := absKey(fs.id, attrKey(d))
		raw, err := v.kv.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		if key != "" && bytes.Contains(raw, []byte{byte(TypeDir), 0, 0, 0o1, 0xed}) {
			t.Fatal("sealed inode value looks like plaintext")
		}
		raw[len(raw)-1] ^= 0xff
		b := v.kv.NewBatch()
		b.Set(k, raw)
		if key == "" {
			b.Set(k, []byte{1, 2, 3}) // truncated record
		}
		if err := b.Commit(true); err != nil {
			t.Fatal(err)
		}
		b.Close()
		_, err = fs.GetAttr(ctx, d)
		wantErr(t, err, ErrCorrupt)
		_, err = fs.Lookup(ctx, RootCred, RootIno, "d")
		wantErr(t, err, ErrCorrupt)
		_, err = fs.Mkdir(ctx, RootCred, d, "x", SetAttr{})
		wantErr(t, err, ErrCorrupt)
		if fs.Stats().Corruption == 0 {
			t.Fatal("corruption not counted")
		}
		// A corrupt journal record is refused, not shipped.
		jk := journalKey(fs.id, 2)
		jb := v.kv.NewBatch()
		jb.Set(jk, []byte("garbage"))
		jb.Commit(true)
		jb.Close()
		_, err = fs.Replica().ReadJournal(ctx, 1, 10, 1<<20)
		wantErr(t, err, ErrCorrupt)
		if errors.Is(err, kv.ErrNotFound) {
			t.Fatal("wrong error")
		}
	})
}

// fileOn opens an engine with o (closed when the test ends) and creates
// file system "f" of the smallest blocks holding the empty file "x".
func fileOn(t *testing.T, ctx context.Context, o Options) (*FS, uint64) {
	t.Helper()
	e, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	fs, err := e.CreateFS(ctx, "f", FSOptions{BlockSize: MinBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	return fs, must(fs.Create(ctx, RootCred, RootIno, "x", CreateGuarded, SetAttr{}, 0))(t).Attr.Ino
}

func TestNoSpace(t *testing.T) {
	ctx := context.Background()
	mem := disk.NewMem()
	faulty := disk.NewFaulty(mem)
	v := &env{t: t, kv: kv.NewMemory(), disk: mem}
	fs, ino := fileOn(t, ctx, Options{KV: v.kv, Disk: faulty, OnFatal: func(err error) { t.Errorf("fatal: %v", err) }})
	first := bytes.Repeat([]byte{7}, 2*MinBlockSize)
	if _, _, err := fs.Write(ctx, RootCred, ino, 0, first); err != nil {
		t.Fatal(err)
	}
	seq := fs.Replica().DurableSeq()
	var err error
	for _, n := range []int{1, 2} {
		faulty.Inject(disk.Fault{Op: disk.OpWrite, Nth: n, Err: syscall.ENOSPC})
		var data []byte
		for b := range 3 {
			data = append(data, bytes.Repeat([]byte{byte(10*n + b)}, MinBlockSize)...)
		}
		_, _, err = fs.Write(ctx, RootCred, ino, 0, data)
		wantErr(t, err, ErrNoSpace)
		faulty.Clear()
	}
	// Unaligned write: the block is written inside the transaction.
	faulty.Inject(disk.Fault{Op: disk.OpWrite, Nth: 1, Err: syscall.ENOSPC})
	_, _, err = fs.Write(ctx, RootCred, ino, 100, bytes.Repeat([]byte{9}, MinBlockSize))
	wantErr(t, err, ErrNoSpace)
	faulty.Clear()
	if fs.Replica().DurableSeq() != seq {
		t.Fatalf("failed writes advanced the journal from %d to %d", seq, fs.Replica().DurableSeq())
	}
	// After a crash, nothing of the failed writes is left.
	k2, d2 := v.kv.CrashClone(), mem.CrashClone()
	e2, err := Open(ctx, Options{KV: k2, Disk: d2})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	fs2, _ := e2.FS("f")
	got, _, _, err := fs2.Read(ctx, RootCred, ino, 0, 4*MinBlockSize)
	if err != nil || !bytes.Equal(got, first) {
		t.Fatalf("content after crash: %d bytes, %v", len(got), err)
	}
	if err := fs2.Replica().Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	if n := len(blockFiles(t, d2)); n != 1 {
		t.Fatalf("%d block files after the orphan sweep, want 1 (dedup of two equal blocks)", n)
	}
}

func TestFsyncFailureStopsEngine(t *testing.T) {
	ctx := context.Background()
	mem := disk.NewMem()
	faulty := disk.NewFaulty(mem)
	var fatal error
	fs, ino := fileOn(t, ctx, Options{KV: kv.NewMemory(), Disk: faulty, OnFatal: func(err error) { fatal = err }})
	faulty.Inject(disk.Fault{Op: disk.OpSyncDir, Nth: 1, Err: syscall.EIO, Sticky: true})
	_, _, err := fs.Write(ctx, RootCred, ino, 0, bytes.Repeat([]byte{1}, MinBlockSize))
	wantErr(t, err, ErrFatal)
	if fatal == nil {
		t.Fatal("OnFatal not called")
	}
	faulty.Clear()
	_, err = fs.Mkdir(ctx, RootCred, RootIno, "d", SetAttr{})
	wantErr(t, err, ErrFatal)
}

func TestMaxRecordSize(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t, func(o *Options) { o.MaxRecordBytes = 16 << 10 })
	fs, err := v.e.CreateFS(ctx, "f", FSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ino := must(fs.Create(ctx, RootCred, RootIno, "x", CreateGuarded, SetAttr{}, 0))(t).Attr.Ino
	if _, _, err := fs.Write(ctx, RootCred, ino, 0, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	seq := fs.Replica().DurableSeq()
	// A 20 KiB sub-block write is staged as an extent inside the record.
	_, _, err = fs.Write(ctx, RootCred, ino, 10, bytes.Repeat([]byte{3}, 20<<10))
	wantErr(t, err, ErrTooLarge)
	if fs.Replica().DurableSeq() != seq {
		t.Fatal("oversized transaction was committed")
	}
	a := must(fs.GetAttr(ctx, ino))(t)
	if a.Size != 10 {
		t.Fatalf("size %d after refused write", a.Size)
	}
}
