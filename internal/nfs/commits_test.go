package nfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// TestSmallFileCreateSyncs is the fsyncs-per-create regression guard of
// issue 16 (a count, not a timing): a small file made the way the create
// probe and nfs-cp make it costs exactly two durable commits (one synced
// journal write each), for CREATE and for its data, and no fsync of a
// block file or directory (its data is inline, up to 16 KiB: cp -a's
// WRITE of a small file is then one journal commit, not a block file
// written, fsynced and renamed before it); a COMMIT with nothing
// buffered costs none. It fails when a change adds a sync to this path,
// and also when one drops a durable commit that a reply claims.
func TestSmallFileCreateSyncs(t *testing.T) {
	for _, size := range []int{4 << 10, 16 << 10} {
		t.Run(fmt.Sprintf("%dKiB", size>>10), func(t *testing.T) { testSmallFileCreateSyncs(t, size) })
	}
}

func testSmallFileCreateSyncs(t *testing.T, size int) {
	var faulty *disk.Faulty
	f := newFixture(t, envOpt{wrapDisk: func(d disk.FS) disk.FS { faulty = disk.NewFaulty(d); return faulty }})
	dir := f.mkdir(t, f.root, "d", 0o755)
	data := make([]byte, size)
	const files = 20
	for _, stable := range []proto.StableHow{proto.FileSync, proto.Unstable} {
		commits := f.fs.Stats().Commits
		syncs, dirSyncs := faulty.Count(disk.OpSync), faulty.Count(disk.OpSyncDir)
		for i := range files {
			binary.LittleEndian.PutUint64(data, uint64(i)+uint64(stable)<<32)
			r, err := f.c.Create(f.ctx, dir, fmt.Sprintf("%v-%d", stable, i), proto.Guarded, proto.Sattr{})
			if err != nil {
				t.Fatal(err)
			}
			w, err := f.c.Write(f.ctx, r.FH, 0, data, stable)
			if err != nil {
				t.Fatal(err)
			}
			if stable == proto.FileSync && w.Committed != proto.FileSync {
				t.Fatalf("a FILE_SYNC write answered %v", w.Committed)
			}
			if _, err := f.c.Commit(f.ctx, r.FH, 0, 0); err != nil {
				t.Fatal(err)
			}
		}
		if got := f.fs.Stats().Commits - commits; got != 2*files {
			t.Errorf("%d files (CREATE, %d-byte %v WRITE, COMMIT) took %d durable commits, want %d (two per file)", files, size, stable, got, 2*files)
		}
		if s, d := faulty.Count(disk.OpSync)-syncs, faulty.Count(disk.OpSyncDir)-dirSyncs; s != 0 || d != 0 {
			t.Errorf("%d small files (%v) fsynced %d block files and %d directories, want none (inline data)", files, stable, s, d)
		}
	}
	// Reading them back: the guard counts what a correct path does.
	for i := range files {
		lk, err := f.c.Lookup(f.ctx, dir, fmt.Sprintf("%v-%d", proto.FileSync, i))
		if err != nil {
			t.Fatal(err)
		}
		rd, err := f.c.Read(f.ctx, lk.FH, 0, uint32(2*size))
		if err != nil || len(rd.Data) != size || binary.LittleEndian.Uint64(rd.Data) != uint64(i)+uint64(proto.FileSync)<<32 {
			t.Fatalf("file %d reads %d bytes, %v", i, len(rd.Data), err)
		}
	}
}

// TestSmallFileCreatesShareSyncs is the connections side of the
// fsyncs-per-create guard of issue 16 (a count, not a timing): four
// connections making small files in one directory the probe's way
// (CREATE GUARDED, a 4 KiB FILE_SYNC WRITE, COMMIT) share the journal's
// syncs. Each CREATE and each WRITE is still durable before its reply
// (two durable commits per file, TestSmallFileCreateSyncs), but the
// four connections' CREATEs, then their WRITEs, are grouped: every sync
// of the store is held until the four requests of the step are handed
// to the committer (a slow disk, made deterministic), so a step needs at
// most two syncs (the group that was syncing and the one that gathered
// the rest, whatever the scheduling): at most one sync per file, where
// one durable commit per request costs two. It fails when a change
// serialises these requests anywhere between the connections and the
// committer (a lock held across a CREATE's durable wait, one request at
// a time per directory or per server) or commits them one by one.
func TestSmallFileCreatesShareSyncs(t *testing.T) {
	f := newFixture(t, envOpt{})
	dir := f.mkdir(t, f.root, "d", 0o755)
	const conns, rounds = 4, 6
	clients := make([]*client.Client, conns)
	for i := range clients {
		clients[i] = f.dial()
	}
	var (
		target atomic.Uint64 // syncs are held until Stats().Queued reaches it
		syncs  atomic.Int64
		stuck  atomic.Bool // a step never reached its target: hold no more
	)
	f.mem.SetSyncHook(func() {
		syncs.Add(1)
		deadline := time.Now().Add(5 * time.Second)
		for !stuck.Load() && f.fs.Stats().Queued < target.Load() {
			if time.Now().After(deadline) {
				stuck.Store(true)
				t.Errorf("the committer holds %d operations, want %d within 5 s: the connections' requests do not reach it together",
					f.fs.Stats().Queued, target.Load())
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	})
	defer f.mem.SetSyncHook(nil)
	const size = 4 << 10
	// step runs one request on every connection at once and returns the
	// syncs and durable commits they took.
	step := func(name string, req func(c int) error) {
		t.Helper()
		target.Store(f.fs.Stats().Queued + conns)
		s0, c0 := syncs.Load(), f.fs.Stats().Commits
		var wg sync.WaitGroup
		for c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := req(c); err != nil {
					t.Errorf("%s on connection %d: %v", name, c, err)
				}
			}()
		}
		wg.Wait()
		if s, n := syncs.Load()-s0, f.fs.Stats().Commits-c0; s > 2 || n > 2 {
			t.Errorf("%d connections' %s took %d syncs and %d durable commits, want at most 2", conns, name, s, n)
		}
	}
	fhs := make([]proto.FH, conns)
	for r := range rounds {
		step("CREATEs", func(c int) error {
			res, err := clients[c].Create(f.ctx, dir, fmt.Sprintf("r%d-c%d", r, c), proto.Guarded, proto.Sattr{})
			if err == nil {
				fhs[c] = res.FH
			}
			return err
		})
		step("FILE_SYNC WRITEs", func(c int) error {
			data := make([]byte, size)
			binary.LittleEndian.PutUint64(data, uint64(r)<<32|uint64(c))
			w, err := clients[c].Write(f.ctx, fhs[c], 0, data, proto.FileSync)
			if err == nil && w.Committed != proto.FileSync {
				err = fmt.Errorf("answered %v", w.Committed)
			}
			return err
		})
		for c := range conns {
			if _, err := clients[c].Commit(f.ctx, fhs[c], 0, 0); err != nil {
				t.Fatal(err)
			}
		}
		if t.Failed() {
			return
		}
	}
	// Everything is there, with its data.
	for r := range rounds {
		for c := range conns {
			lk, err := f.c.Lookup(f.ctx, dir, fmt.Sprintf("r%d-c%d", r, c))
			if err != nil {
				t.Fatal(err)
			}
			rd, err := f.c.Read(f.ctx, lk.FH, 0, 2*size)
			if err != nil || len(rd.Data) != size || binary.LittleEndian.Uint64(rd.Data) != uint64(r)<<32|uint64(c) {
				t.Fatalf("file r%d-c%d reads %d bytes, %v", r, c, len(rd.Data), err)
			}
		}
	}
}

// TestSmallFileCreateDiskSyncs is TestSmallFileCreateSyncs on the
// server's store (Pebble on the disk, zeros ahead of its WAL), counting
// what reaches the operating system: every fsync and fdatasync of Pebble's
// files (WAL, tables, manifest, directories) and of block files and
// directories. One small file (CREATE, a 4 KiB FILE_SYNC WRITE, COMMIT; or
// the WRITE UNSTABLE and the COMMIT) costs two WAL syncs and nothing else,
// besides the few syncs of a memtable rotation (closing the old log,
// preparing the new one, the flush's table, manifest and directory),
// allowed per new log. It fails when a change adds a sync per file, and
// when a reply claims a durability that no sync gave.
func TestSmallFileCreateDiskSyncs(t *testing.T) {
	var faulty *disk.Faulty
	var syncs, logs atomic.Int64
	f := newFixture(t, envOpt{
		dir: t.TempDir(), overwriteWAL: true,
		wrapKVFS: func(fs vfs.FS) vfs.FS { return syncCountFS{FS: fs, syncs: &syncs, logs: &logs} },
		wrapDisk: func(d disk.FS) disk.FS { faulty = disk.NewFaulty(d); return faulty },
	})
	dir := f.mkdir(t, f.root, "d", 0o755)
	data := make([]byte, 4<<10)
	const files = 20
	for _, stable := range []proto.StableHow{proto.FileSync, proto.Unstable} {
		s0, l0 := syncs.Load(), logs.Load()
		b0 := faulty.Count(disk.OpSync) + faulty.Count(disk.OpSyncDir)
		for i := range files {
			binary.LittleEndian.PutUint64(data, uint64(i)+uint64(stable)<<32)
			r, err := f.c.Create(f.ctx, dir, fmt.Sprintf("%v-%d", stable, i), proto.Guarded, proto.Sattr{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.c.Write(f.ctx, r.FH, 0, data, stable); err != nil {
				t.Fatal(err)
			}
			if _, err := f.c.Commit(f.ctx, r.FH, 0, 0); err != nil {
				t.Fatal(err)
			}
		}
		s, l := syncs.Load()-s0, logs.Load()-l0
		// A rotation: the old log's closing sync, the new one's, the
		// WAL directory's; the flush: its table, the manifest, the
		// directory, and a margin.
		const perLog = 8
		t.Logf("%v: %d files, %d metadata store syncs, %d new logs", stable, files, s, l)
		if s < 2*files || s > 2*files+perLog*l {
			t.Errorf("%d small files (%v) made %d fsyncs of the metadata store with %d new logs, want %d to %d (two WAL syncs per file)",
				files, stable, s, l, 2*files, 2*files+perLog*l)
		}
		if b := faulty.Count(disk.OpSync) + faulty.Count(disk.OpSyncDir) - b0; b != 0 {
			t.Errorf("%d small files (%v) fsynced %d block files and directories, want none (inline data)", files, stable, b)
		}
	}
}

// syncCountFS counts the syncs of every file opened through it (full
// syncs only: a SyncTo that only starts writeback is not one) and the
// WAL files it creates or recycles.
type syncCountFS struct {
	vfs.FS
	syncs, logs *atomic.Int64
}

func (c syncCountFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return f, err
	}
	return syncCountFile{File: f, syncs: c.syncs}, nil
}

func (c syncCountFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	if strings.HasSuffix(name, ".log") {
		c.logs.Add(1)
	}
	f, err := c.FS.Create(name, cat)
	return c.wrap(f, err)
}

func (c syncCountFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	c.logs.Add(1)
	f, err := c.FS.ReuseForWrite(oldname, newname, cat)
	return c.wrap(f, err)
}

func (c syncCountFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := c.FS.Open(name, opts...)
	return c.wrap(f, err)
}

func (c syncCountFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := c.FS.OpenReadWrite(name, cat, opts...)
	return c.wrap(f, err)
}

func (c syncCountFS) OpenDir(name string) (vfs.File, error) {
	f, err := c.FS.OpenDir(name)
	return c.wrap(f, err)
}

type syncCountFile struct {
	vfs.File
	syncs *atomic.Int64
}

func (f syncCountFile) Sync() error {
	f.syncs.Add(1)
	return f.File.Sync()
}

func (f syncCountFile) SyncData() error {
	f.syncs.Add(1)
	return f.File.SyncData()
}

func (f syncCountFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	if full {
		f.syncs.Add(1)
	}
	return full, err
}

// TestCommitSyncs is the syncs-per-COMMIT regression guard of issue 16 for
// large files (a count, not a timing): a COMMIT of 4 MiB written UNSTABLE
// costs one fsync per block file, at most one directory fsync per block
// (the fan-out directories exist from the start; a new file system used to
// make and sync two of them, and their parent, for nearly every block) and
// at most one durable commit per block (group commit may merge them).
func TestCommitSyncs(t *testing.T) {
	var faulty *disk.Faulty
	f := newFixture(t, envOpt{wrapDisk: func(d disk.FS) disk.FS { faulty = disk.NewFaulty(d); return faulty }})
	bs := int(f.fs.Geometry().BlockSize)
	const blocks = 4
	data := make([]byte, blocks*bs)
	for i := range data {
		data[i] = byte(i*7 + i>>16)
	}
	for round := range 3 {
		r, err := f.c.Create(f.ctx, f.root, fmt.Sprintf("big-%d", round), proto.Guarded, proto.Sattr{})
		if err != nil {
			t.Fatal(err)
		}
		for b := range blocks {
			data[b*bs] = byte(round) // new blocks each round
		}
		commits := f.fs.Stats().Commits
		syncs, dirSyncs := faulty.Count(disk.OpSync), faulty.Count(disk.OpSyncDir)
		const wsize = 256 << 10
		for off := 0; off < len(data); off += wsize {
			if _, err := f.c.Write(f.ctx, r.FH, uint64(off), data[off:off+wsize], proto.Unstable); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.c.Commit(f.ctx, r.FH, 0, 0); err != nil {
			t.Fatal(err)
		}
		s, d, c := faulty.Count(disk.OpSync)-syncs, faulty.Count(disk.OpSyncDir)-dirSyncs, f.fs.Stats().Commits-commits
		if s != blocks || d > blocks || c < 1 || c > blocks {
			t.Errorf("round %d: COMMIT of %d blocks took %d block file fsyncs (want %d), %d directory fsyncs (want at most %d), %d durable commits (want 1 to %d)",
				round, blocks, s, blocks, d, blocks, c, blocks)
		}
		rd, err := f.c.Read(f.ctx, r.FH, 0, uint32(bs))
		if err != nil || !bytes.Equal(rd.Data, data[:bs]) {
			t.Fatalf("round %d: read back %d bytes, %v", round, len(rd.Data), err)
		}
	}
}

// TestSetAttrAfterUnstableWriteCommits guards the durable commits of a
// small file copied the way `regionfs mount` copies it for `cp -a`
// (CREATE, WRITE UNSTABLE, SETATTR of times and mode, COMMIT): two, for
// CREATE and for the data and the change together (the SETATTR writes the
// buffered data and makes the change in one transaction), and none for
// the COMMIT, also when the COMMIT is sent right behind the SETATTR
// without waiting for its reply (attrGate: it waits for the SETATTR, and
// its reply shows the change). The change lands after the data (the
// mtime set stays), and a change the caller may not make fails alone:
// the data is still written and its COMMIT succeeds.
func TestSetAttrAfterUnstableWriteCommits(t *testing.T) {
	f := newFixture(t, envOpt{})
	dir := f.mkdir(t, f.root, "d", 0o777)
	const files = 20
	mtime := proto.TimeOf(time.Unix(1_600_000_000, 5000))
	mode := uint32(0o600)
	for _, pipelined := range []bool{false, true} {
		commits := f.fs.Stats().Commits
		for i := range files {
			r, err := f.c.Create(f.ctx, dir, fmt.Sprintf("f%d-%v", i, pipelined), proto.Guarded, proto.Sattr{Mode: ptr(uint32(0o644))})
			if err != nil {
				t.Fatal(err)
			}
			data := bytes.Repeat([]byte{byte(i)}, 100+i*400)
			if w, err := f.c.Write(f.ctx, r.FH, 0, data, proto.Unstable); err != nil || w.Committed != proto.Unstable {
				t.Fatalf("write: %v, %+v", err, w)
			}
			sattr := proto.Sattr{Mode: &mode, Atime: proto.SetTime{How: proto.SetToClientTime, Time: mtime}, Mtime: proto.SetTime{How: proto.SetToClientTime, Time: mtime}}
			type result struct {
				res *proto.SetAttrRes
				err error
			}
			sent, done := make(chan struct{}, 1), make(chan result, 1)
			go func() {
				ctx := client.WithSent(f.ctx, func() {
					select {
					case sent <- struct{}{}:
					default:
					}
				})
				res, err := f.c.SetAttr(ctx, r.FH, sattr, nil)
				done <- result{res, err}
			}()
			var sa result
			if pipelined {
				<-sent
			} else {
				sa = <-done
			}
			cr, err := f.c.Commit(f.ctx, r.FH, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if pipelined {
				sa = <-done
				if a := cr.Wcc.After; a == nil || a.Mtime != mtime || a.Mode&0o7777 != mode {
					t.Fatalf("file %d: the COMMIT sent behind the SETATTR answered %+v; want mtime %v, mode %o (run after the SETATTR)", i, a, mtime, mode)
				}
			}
			if sa.err != nil {
				t.Fatal(sa.err)
			}
			if a := sa.res.Wcc.After; a == nil || a.Size != uint64(len(data)) || a.Mtime != mtime || a.Mode&0o7777 != mode {
				t.Fatalf("file %d after SETATTR: %+v; want size %d, mtime %v, mode %o", i, a, len(data), mtime, mode)
			}
		}
		if got := f.fs.Stats().Commits - commits; got != 2*files {
			t.Errorf("%d small files (CREATE, WRITE UNSTABLE, SETATTR, COMMIT, pipelined %v) took %d durable commits, want %d (two per file)", files, pipelined, got, 2*files)
		}
	}

	// Another user may write the file (0666) but not change its mode.
	r, err := f.c.Create(f.ctx, dir, "shared", proto.Guarded, proto.Sattr{Mode: ptr(uint32(0o666))})
	if err != nil {
		t.Fatal(err)
	}
	other := f.dialAs(1000, 1000)
	data := []byte("written by another user")
	if _, err := other.Write(f.ctx, r.FH, 0, data, proto.Unstable); err != nil {
		t.Fatal(err)
	}
	if _, err := other.SetAttr(f.ctx, r.FH, proto.Sattr{Mode: &mode}, nil); !errors.Is(err, proto.ErrPerm) {
		t.Fatalf("SETATTR of the mode by a non-owner: %v, want NFS3ERR_PERM", err)
	}
	if _, err := other.Commit(f.ctx, r.FH, 0, 0); err != nil {
		t.Fatal(err)
	}
	rd, err := f.c.Read(f.ctx, r.FH, 0, 100)
	if err != nil || !bytes.Equal(rd.Data, data) {
		t.Fatalf("the file reads %q, %v; want %q", rd.Data, err, data)
	}
}

// TestWriteSetAttrCommitOrdered guards the order the server promises by
// answering proto.ProgRegionFS (orderGate): a small file's WRITE UNSTABLE,
// a SETATTR of its times and mode and a COMMIT, sent back to back without
// waiting for a reply (how `regionfs mount` closes a file cp -a copied),
// run in the order read — the SETATTR after the WRITE (which the test
// makes slow), so the mtime it sets stays, and the COMMIT after both —
// and cost two durable commits per file with CREATE's (the data and the
// change in one). Without the gate the SETATTR runs during the slow WRITE,
// and the data then moves mtime on.
func TestWriteSetAttrCommitOrdered(t *testing.T) {
	f := newFixture(t, envOpt{})
	if !f.c.Ordered(f.ctx) {
		t.Fatal("the server does not answer proto.ProgRegionFS")
	}
	f.srv.testHook = func(r *request) {
		if r.h.Prog == proto.ProgNFS && r.h.Proc == proto.ProcWrite {
			time.Sleep(20 * time.Millisecond) // the delay this hook exists to add
		}
	}
	dir := f.mkdir(t, f.root, "d", 0o777)
	const files = 10
	mtime := proto.TimeOf(time.Unix(1_600_000_000, 5000))
	mode := uint32(0o600)
	sattr := proto.Sattr{Mode: &mode, Atime: proto.SetTime{How: proto.SetToClientTime, Time: mtime}, Mtime: proto.SetTime{How: proto.SetToClientTime, Time: mtime}}
	// send runs call and returns once its request is written, with the
	// channel its error comes on.
	send := func(call func(ctx context.Context) error) <-chan error {
		sent, done := make(chan struct{}), make(chan error, 1)
		var once sync.Once
		go func() {
			done <- call(client.WithSent(f.ctx, func() { once.Do(func() { close(sent) }) }))
		}()
		select {
		case <-sent:
		case err := <-done:
			done <- err
		}
		return done
	}
	commits := f.fs.Stats().Commits
	for i := range files {
		r, err := f.c.Create(f.ctx, dir, fmt.Sprintf("f%d", i), proto.Guarded, proto.Sattr{Mode: ptr(uint32(0o644))})
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte{byte(i)}, 100+i*700)
		var sa *proto.SetAttrRes
		wdone := send(func(ctx context.Context) error {
			_, err := f.c.Write(ctx, r.FH, 0, data, proto.Unstable)
			return err
		})
		adone := send(func(ctx context.Context) (err error) {
			sa, err = f.c.SetAttr(ctx, r.FH, sattr, nil)
			return err
		})
		cr, err := f.c.Commit(f.ctx, r.FH, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-wdone; err != nil {
			t.Fatal(err)
		}
		if err := <-adone; err != nil {
			t.Fatal(err)
		}
		if a := sa.Wcc.After; a == nil || a.Size != uint64(len(data)) || a.Mtime != mtime || a.Mode&0o7777 != mode {
			t.Fatalf("file %d: the SETATTR sent behind the WRITE answered %+v; want size %d, mtime %v, mode %o (run after the WRITE)", i, a, len(data), mtime, mode)
		}
		if a := cr.Wcc.After; a == nil || a.Size != uint64(len(data)) || a.Mtime != mtime {
			t.Fatalf("file %d: the COMMIT answered %+v; want size %d, mtime %v (run after the WRITE and the SETATTR)", i, a, len(data), mtime)
		}
	}
	if got := f.fs.Stats().Commits - commits; got != 2*files {
		t.Errorf("%d small files (CREATE, then WRITE UNSTABLE, SETATTR and COMMIT back to back) took %d durable commits, want %d", files, got, 2*files)
	}
}
