package pebblekv

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sys/unix"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/engine/kv/kvtest"
	"github.com/regionfs/regionfs/internal/loglimit"
)

func TestConformanceDisk(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Store {
		s, err := Open(filepath.Join(t.TempDir(), "db"), Options{CacheSizeBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConformanceMem(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Store {
		s, err := Open("db", Options{FS: vfs.NewMem(), CacheSizeBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestCrash: synced batches survive a crash of Pebble's crashable VFS,
// every batch is all or nothing.
func TestCrash(t *testing.T) {
	mem := vfs.NewCrashableMem()
	s, err := Open("db", Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	const batches = 50
	for i := range batches {
		b := s.NewBatch()
		for k := range 10 {
			b.Set(fmt.Appendf(nil, "b%03d-k%d", i, k), fmt.Appendf(nil, "%d", i))
		}
		if err := b.Commit(i%5 == 0 || i == 30); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	s.Close()
	r, err := Open("db", Options{FS: clone})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range batches {
		n := 0
		for k := range 10 {
			if _, err := r.Get(fmt.Appendf(nil, "b%03d-k%d", i, k)); err == nil {
				n++
			}
		}
		if n != 0 && n != 10 {
			t.Fatalf("batch %d: %d of 10 keys after the crash", i, n)
		}
		if i <= 30 && n != 10 {
			t.Fatalf("batch %d committed before a synced batch was lost", i)
		}
	}
}

func TestFormatNewest(t *testing.T) {
	s, err := Open("db", Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := s.DB().FormatMajorVersion(); v < 24 {
		t.Fatalf("format major version %d", v)
	}
}

// TestLogLimiter: a repeated error is let through once per interval, with
// the count of what was held back (a flush failing for lack of space
// retries in a loop: issue 9 §2).
func TestLogLimiter(t *testing.T) {
	l := loglimit.New(time.Second)
	t0 := time.Unix(1000, 0)
	msg := "background error: write 000123.sst: no space left on device"
	if ok, n := l.Allow(kindOf(msg), t0); !ok || n != 0 {
		t.Fatal("first occurrence held back")
	}
	for i := range 500 {
		other := "background error: write 000124.sst: no space left on device"
		if ok, _ := l.Allow(kindOf(other), t0.Add(time.Duration(i)*time.Millisecond)); ok {
			t.Fatalf("repeat %d let through within the interval", i)
		}
	}
	if ok, n := l.Allow(kindOf(msg), t0.Add(time.Second)); !ok || n != 500 {
		t.Fatalf("after the interval: %v, %d repeats (want 500)", ok, n)
	}
	if ok, _ := l.Allow(kindOf("another kind of error entirely"), t0.Add(time.Second)); !ok {
		t.Fatal("a different message held back")
	}
}

// TestCrashCommitAsync: pipelined commits (several applied before the
// first is waited for) are all present after a crash once waited, and a
// crash keeps a prefix of them, never one without an earlier one.
func TestCrashCommitAsync(t *testing.T) {
	mem := vfs.NewCrashableMem()
	s, err := Open("db", Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	const batches = 43 // the last 3 are not waited for before the crash
	var waits []func() error
	var bs []kv.Batch
	for i := range batches {
		b := s.NewBatch()
		for k := range 10 {
			b.Set(fmt.Appendf(nil, "b%03d-k%d", i, k), fmt.Appendf(nil, "%d", i))
		}
		if _, ok := b.(kv.AsyncBatch); !ok {
			t.Fatal("pebblekv batches do not pipeline (kv.AsyncBatch)")
		}
		w, err := kv.CommitAsync(b)
		if err != nil {
			t.Fatal(err)
		}
		waits, bs = append(waits, w), append(bs, b)
		if i%8 == 7 {
			for j, w := range waits {
				if err := w(); err != nil {
					t.Fatal(err)
				}
				bs[j].Close()
			}
			waits, bs = nil, nil
		}
	}
	// The last batches are applied but maybe not synced at the crash.
	clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	for j, w := range waits {
		if err := w(); err != nil {
			t.Fatal(err)
		}
		bs[j].Close()
	}
	s.Close()
	r, err := Open("db", Options{FS: clone})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lost := false
	for i := range batches {
		n := 0
		for k := range 10 {
			if _, err := r.Get(fmt.Appendf(nil, "b%03d-k%d", i, k)); err == nil {
				n++
			}
		}
		switch {
		case n != 0 && n != 10:
			t.Fatalf("batch %d: %d of 10 keys after the crash", i, n)
		case i < batches/8*8 && n != 10:
			t.Fatalf("batch %d was waited for and is lost after the crash", i)
		case n == 0:
			lost = true
		case lost:
			t.Fatalf("batch %d survived the crash, an earlier one did not", i)
		}
	}
}

// TestCrashOverwriteWAL: with zeros ahead of the writes in WAL files
// (OverwriteWAL) and memtables small enough that the store goes through
// several WAL files (at 256 KiB recycled ones, at 4 MiB new ones extended
// as they fill), every synced batch is there after a crash at any of
// several points (keeping a random part of what was not synced), batches
// are whole, the store reopens cleanly after a Close, and every write of
// Pebble's landed on zeros or a recycled log's old records.
func TestCrashOverwriteWAL(t *testing.T) {
	for _, memtable := range []uint64{256 << 10, 4 << 20} {
		t.Run(fmt.Sprintf("memtable=%dKiB", memtable>>10), func(t *testing.T) { testCrashOverwriteWAL(t, memtable) })
	}
}

func testCrashOverwriteWAL(t *testing.T, memtable uint64) {
	mem := vfs.NewCrashableMem()
	o := Options{FS: mem, MemTableSizeBytes: memtable, OverwriteWAL: true}
	s, err := Open("db", o)
	if err != nil {
		t.Fatal(err)
	}
	type point struct {
		fs    *vfs.MemFS
		acked int
	}
	var points []point
	rng := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, max(1000, memtable>>10)) // 4 MiB: logs past walAhead
	const batches = 1500
	for i := range batches {
		b := s.NewBatch()
		for k := range 2 {
			b.Set(fmt.Appendf(nil, "b%05d-k%d", i, k), append(fmt.Appendf(nil, "%d:", i), val...))
		}
		if err := b.Commit(i%3 != 2); err != nil {
			t.Fatal(err)
		}
		b.Close()
		if i%250 == 120 {
			acked := i + 1
			if i%3 == 2 {
				acked = i // the last one was not synced
			}
			points = append(points, point{mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(60), RNG: rand.New(rand.NewPCG(rng.Uint64(), 3))}), acked})
		}
	}
	if s.wal.zeroBytes.Load() == 0 {
		t.Fatal("no zeros written ahead of the WAL")
	}
	if n := s.wal.appendedBytes.Load(); n != 0 {
		t.Errorf("%d bytes of WAL records appended past the zeros, want none", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check := func(fs *vfs.MemFS, acked int) {
		t.Helper()
		o.FS = fs
		r, err := Open("db", o)
		if err != nil {
			t.Fatalf("open after %d batches: %v", acked, err)
		}
		defer r.Close()
		for i := range batches {
			n := 0
			for k := range 2 {
				v, err := r.Get(fmt.Appendf(nil, "b%05d-k%d", i, k))
				if err == nil {
					n++
					if !bytes.HasPrefix(v, fmt.Appendf(nil, "%d:", i)) {
						t.Fatalf("batch %d: value %.10q", i, v)
					}
				}
			}
			if n == 1 {
				t.Fatalf("batch %d: 1 of 2 keys (crash after %d batches)", i, acked)
			}
			if i < acked && n != 2 {
				t.Fatalf("batch %d lost (crash after %d synced batches)", i, acked)
			}
		}
	}
	for _, p := range points {
		check(p.fs, p.acked)
	}
	check(mem, batches)
}

// TestCacheHoldsBlocks: a store's own block cache keeps table blocks once
// its memtables have their full size (Pebble charges them to the cache:
// a cache of CacheSizeBytes alone held none, and every read decompressed
// its blocks again). The count of cached blocks is the guard, not a time.
func TestCacheHoldsBlocks(t *testing.T) {
	const mt = 1 << 20
	s, err := Open("db", Options{FS: vfs.NewMem(), CacheSizeBytes: 1 << 20, MemTableSizeBytes: mt})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	val := bytes.Repeat([]byte{'v'}, 100)
	// Several memtables' worth, so that the current and a recycled one
	// are both full size, and tables to read from.
	for i := range 6 {
		b := s.NewBatch()
		for j := range 4 * mt / 128 {
			b.Set(fmt.Appendf(nil, "k%08d", i*mt+j), val)
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		for i := range 200 {
			if _, err := s.Get(fmt.Appendf(nil, "k%08d", i*97)); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := s.Metrics()
	if m.BlockCache.Count == 0 || m.BlockCache.Hits == 0 {
		t.Fatalf("block cache holds %d blocks (%d hits, %d misses) after reading tables: memtables take it all",
			m.BlockCache.Count, m.BlockCache.Hits, m.BlockCache.Misses)
	}
}

// TestOverwriteWALZerosFollowUse: the zeros written ahead of the WAL are
// proportional to what the WAL holds, not 110 % of the full memtable per
// log: Pebble's first memtables are small (256 KiB, doubling at each
// rotation), and filling each of their logs to the full size wrote and
// synced 35 MB per rotation in the commit that rotated. Every synced
// commit still lands on zeros.
func TestOverwriteWALZerosFollowUse(t *testing.T) {
	s, err := Open("db", Options{FS: vfs.NewMem(), OverwriteWAL: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	val := make([]byte, 9000) // a small file's CREATE and FILE_SYNC WRITE
	const commits = 800
	for i := range commits {
		b := s.NewBatch()
		b.Set(fmt.Appendf(nil, "k%06d", i), val)
		if err := b.Commit(true); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	logs := s.wal.logs.Load()
	if logs < 3 {
		t.Fatalf("%d WAL files in %d commits: the test does not cover memtable rotations", logs, commits)
	}
	written := int64(commits * len(val))
	// Each log may hold walAhead (plus a chunk) of zeros past its records.
	limit := 2*written + logs*(walAhead+walZeroChunk)
	if z := s.wal.zeroBytes.Load(); z > limit {
		t.Errorf("%d bytes of zeros written ahead of %d bytes of records in %d logs, want at most %d",
			z, written, logs, limit)
	}
	if n := s.wal.appendedBytes.Load(); n != 0 {
		t.Errorf("%d bytes of WAL records appended past the zeros, want none", n)
	}
	// A rotation writes at most walAhead of zeros: the commit that
	// rotates, and every one queued behind it, waits for them.
	if n := s.wal.mostPrepared.Load(); n > walAhead || n == 0 {
		t.Errorf("a rotation wrote %d bytes of zeros, want 1 to %d", n, walAhead)
	}
	// Each extension changes the file's size, and the next commit's
	// sync writes it out as an append's would: whole chunks at a time,
	// not a little per commit.
	if ext, most := s.wal.extensions.Load(), written/walZeroChunk+logs; ext > most {
		t.Errorf("%d extensions of the WAL files for %d bytes of records in %d logs, want at most %d (whole chunks)", ext, written, logs, most)
	}
}

// TestWALSyncWritesLittle: on the real disk, a synced commit of a small
// batch makes the disk write about its own pages, not the page cache
// folio the zeros ahead of it were written in. With zeros written 1 MiB
// at a time, Linux 6.x (ext4 large folios) wrote back 1 MiB per 9 000-byte
// commit. Counted with /proc/self/io (write_bytes), not timed.
func TestWALSyncWritesLittle(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{OverwriteWAL: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	val := make([]byte, 9000)
	commit := func(i int) {
		b := s.NewBatch()
		b.Set(fmt.Appendf(nil, "k%06d", i), val)
		if err := b.Commit(true); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	commit(-1)
	const commits = 200
	before := writeBytes(t)
	for i := range commits {
		commit(i)
	}
	// The records' pages (~12 KiB a commit), the zeros of the logs of
	// the first memtables and their flushes: well under 128 KiB a commit.
	if per := (writeBytes(t) - before) / commits; per > 128<<10 {
		t.Errorf("%d bytes written to the disk per synced commit of %d bytes, want at most %d", per, len(val), 128<<10)
	}
}

// writeBytes is what the process has had written to storage.
func writeBytes(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(line, []byte("write_bytes: ")); ok {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no write_bytes in /proc/self/io")
	return 0
}

// TestIngest: ingested pairs are read back and survive a crash right
// after Ingest returns (they are durable then); a table left by a crash
// before Pebble took it is removed at Open; pairs out of order are
// refused and nothing of them is stored.
func TestIngest(t *testing.T) {
	for _, overwrite := range []bool{false, true} {
		t.Run(fmt.Sprintf("overwrite-wal=%v", overwrite), func(t *testing.T) { testIngest(t, overwrite) })
	}
}

func testIngest(t *testing.T, overwriteWAL bool) {
	mem := vfs.NewCrashableMem()
	s, err := Open("db", Options{FS: mem, OverwriteWAL: overwriteWAL})
	if err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	b.Set([]byte("k050"), []byte("from a batch"))
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	b.Close()
	pairs := func(lo, hi int) func(yield func(k, v []byte) bool) {
		return func(yield func(k, v []byte) bool) {
			for i := lo; i < hi; i++ {
				if !yield(fmt.Appendf(nil, "k%03d", i), bytes.Repeat([]byte{byte(i)}, 100)) {
					return
				}
			}
		}
	}
	// Over the memtable's key: Pebble flushes it first; the table is newer.
	if err := s.Ingest(pairs(0, 100)); err != nil {
		t.Fatal(err)
	}
	if err := s.Ingest(func(yield func(k, v []byte) bool) {
		_ = yield([]byte("z2"), []byte("v")) && yield([]byte("z1"), []byte("v"))
	}); err == nil {
		t.Fatal("pairs out of order were ingested")
	}
	// A table a crash left behind.
	f, err := mem.Create(mem.PathJoin("db", ingestPrefix+"99.sst"), vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	d, err := mem.OpenDir("db")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	s.Close()
	if names, _ := clone.List("db"); !slices.Contains(names, ingestPrefix+"99.sst") {
		t.Fatalf("the crash image lacks the table left behind: %v", names)
	}
	r, err := Open("db", Options{FS: clone, OverwriteWAL: overwriteWAL})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 100 {
		v, err := r.Get(fmt.Appendf(nil, "k%03d", i))
		if err != nil || !bytes.Equal(v, bytes.Repeat([]byte{byte(i)}, 100)) {
			t.Fatalf("k%03d after the crash: %q, %v", i, v, err)
		}
	}
	for _, k := range []string{"z1", "z2"} {
		if _, err := r.Get([]byte(k)); err == nil {
			t.Fatalf("%s of the refused ingestion is stored", k)
		}
	}
	names, err := clone.List("db")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if len(n) >= len(ingestPrefix) && n[:len(ingestPrefix)] == ingestPrefix {
			t.Fatalf("%s left in the store's directory after Open", n)
		}
	}
}

// TestIngestIncompressible: a table of values its caller says will not
// compress (sealed ones) is written without compression; a plain Ingest
// keeps the store's compression. Both read back.
func TestIngestIncompressible(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{CacheSizeBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	value := func(i int) []byte {
		v := make([]byte, 4096)
		r := rand.New(rand.NewPCG(uint64(i), 7))
		for j := range v {
			v[j] = byte(r.Uint32())
		}
		return v
	}
	pairs := func(prefix string) func(yield func(k, v []byte) bool) {
		return func(yield func(k, v []byte) bool) {
			for i := range 64 {
				if !yield(fmt.Appendf(nil, "%s%03d", prefix, i), value(i)) {
					return
				}
			}
		}
	}
	if err := s.Ingest(pairs("a")); err != nil {
		t.Fatal(err)
	}
	if err := kv.IngestIncompressible(s, pairs("b")); err != nil {
		t.Fatal(err)
	}
	if n := s.UncompressedIngests(); n != 1 {
		t.Fatalf("%d uncompressed ingests, want 1", n)
	}
	levels, err := s.db.SSTables(pebble.WithProperties())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{} // first key's prefix → compression
	for _, l := range levels {
		for _, tb := range l {
			got[string(tb.Smallest.UserKey[:1])] = tb.Properties.CompressionName
		}
	}
	if got["a"] == "" || got["a"] == sstable.NoCompression.Name || got["b"] != sstable.NoCompression.Name {
		t.Fatalf("table compressions %v: want a plain ingest compressed as the store is, an incompressible one %q", got, sstable.NoCompression.Name)
	}
	for _, p := range []string{"a", "b"} {
		for i := range 64 {
			v, err := s.Get(fmt.Appendf(nil, "%s%03d", p, i))
			if err != nil || !bytes.Equal(v, value(i)) {
				t.Fatalf("%s%03d: %d bytes, %v", p, i, len(v), err)
			}
		}
	}
}

// TestIngestDropsTablePages counts the pages of an ingested table left in
// the page cache: a replica's initial sync writes hundreds of MiB of
// tables nothing reads soon, and pages kept grow the cache into fresh
// memory that the next table's write(2) pays for (dropCacheOnClose).
// Only what Pebble reads back to link the table in (footer, properties,
// index, the first and last data blocks) may be there.
func TestIngestDropsTablePages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	s, err := Open(dir, Options{CacheSizeBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 2048 // 8 MiB of 4 KiB values
	ingestRandom(t, s, n)
	names, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil || len(names) != 1 {
		t.Fatalf("tables %v, %v: want the one ingested", names, err)
	}
	pages, resident := residentPages(t, names[0])
	t.Logf("%d of the table's %d pages in the page cache", resident, pages)
	if pages < n || resident > pages/16 {
		t.Fatalf("%d of the table's %d pages in the page cache after the ingest, want at most %d", resident, pages, pages/16)
	}
}

// TestIngestTableWrites is a regression guard that counts write calls,
// not time: an ingested table of 4 KiB values (one per data block, as a
// sync of small files sends them) reaches its file in writes of up to
// tableWriteBytes, not one per block. Pebble's own Writable buffered 4
// KiB, and the 100 000-file sync's destination spent ~1 CPU-s in the
// ~100 000 write(2) of its tables (sync26, bench/replication/README.md).
// The writes are counted at the vfs.File, each one write(2).
func TestIngestTableWrites(t *testing.T) {
	fs := &writeCountingFS{FS: vfs.Default}
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{FS: fs, CacheSizeBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 2048 // 8 MiB of 4 KiB values
	ingestRandom(t, s, n)
	writes, bytes := fs.writes.Load(), fs.bytes.Load()
	t.Logf("the table: %d bytes in %d writes", bytes, writes)
	if bytes < n*4096 {
		t.Fatalf("the table's file took %d bytes, want ≥ %d", bytes, n*4096)
	}
	// 8 MiB in 256 KiB writes: 33; one write per block: ≥ 2 048.
	if max := bytes/tableWriteBytes + 4; writes > max {
		t.Fatalf("the table's %d bytes took %d writes, want at most %d", bytes, writes, max)
	}
}

// writeCountingFS counts the writes to the files Ingest creates.
type writeCountingFS struct {
	vfs.FS
	writes, bytes atomic.Int64
}

func (fs *writeCountingFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	if err != nil || !strings.HasPrefix(filepath.Base(name), ingestPrefix) {
		return f, err
	}
	return writeCountingFile{f, fs}, nil
}

type writeCountingFile struct {
	vfs.File
	fs *writeCountingFS
}

func (f writeCountingFile) Write(p []byte) (int, error) {
	f.fs.writes.Add(1)
	f.fs.bytes.Add(int64(len(p)))
	return f.File.Write(p)
}

// residentPages counts the pages of the file name and those of them in the
// page cache (mincore).
func residentPages(t *testing.T, name string) (pages, resident int) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	ps := os.Getpagesize()
	vec := make([]byte, (len(m)+ps-1)/ps)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	for _, b := range vec {
		if b&1 != 0 {
			resident++
		}
	}
	return len(vec), resident
}

// TestHoldCacheScan is a regression guard that counts bytes, not time: a
// scan of a whole store under HoldCache (an initial sync's snapshot read:
// every block once) leaves a fresh block cache at a quarter of its room
// for blocks, where the same scan unheld grows it to what the store
// holds; each byte of that growth is memory new to the process, which
// cost a 100 000-file sync's source ~0.5 CPU-s of page zeroing (sync25,
// bench/replication/README.md). Holds nest; the cache grows again after
// the last release, and a release after Close does nothing.
func TestHoldCacheScan(t *testing.T) {
	const n = 4096 // 16 MiB of 4 KiB values
	s, err := Open("db", Options{FS: vfs.NewMem(), CacheSizeBytes: 16 << 20, MemTableSizeBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ingestRandom(t, s, n)
	c := s.opts.Cache
	scan := func() int64 {
		t.Helper()
		snap := s.NewSnapshot()
		defer snap.Close()
		got := 0
		if err := kv.Scan(snap, nil, nil, func(k, v []byte) error { got++; return nil }); err != nil {
			t.Fatal(err)
		}
		if got != n {
			t.Fatalf("scan read %d pairs, want %d", got, n)
		}
		return c.Size()
	}
	m := s.Metrics()
	room := c.MaxSize() - int64(m.MemTable.Size+m.MemTable.ZombieSize)
	limit := room/holdFloorDiv + 1<<20 // a block over the target in each shard at most
	start := c.Size()
	release := s.HoldCache()
	inner := s.HoldCache()
	nested := scan()
	inner()
	inner() // a second call of one release does nothing
	held := scan()
	release()
	free := scan()
	t.Logf("block cache of %d bytes for blocks: %d before the scans, %d after a held scan, %d with one of two holds released, %d after an unheld one",
		room, start, nested, held, free)
	if nested > limit || held > limit {
		t.Errorf("a held scan of %d bytes left the cache at %d and %d bytes, want at most %d (a quarter of its room): the scan grows the cache", n*4096, nested, held, limit)
	}
	if free < 3*room/4 {
		t.Errorf("an unheld scan left the cache at %d bytes of %d: the guard measures nothing", free, room)
	}
	release = s.HoldCache()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	release()
}

// ingestRandom ingests n 4 KiB values of random bytes (one value, the
// same for every key) under the keys k00000, k00001, ….
func ingestRandom(t *testing.T, s *Store, n int) {
	t.Helper()
	v := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	for j := range v {
		v[j] = byte(r.Uint32())
	}
	err := kv.IngestIncompressible(s, func(yield func(k, v []byte) bool) {
		for i := range n {
			if !yield(fmt.Appendf(nil, "k%05d", i), v) {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
