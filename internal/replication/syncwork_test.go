package replication

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestInitialSyncIngestsTables is a regression guard that counts work, not
// time: an initial sync of small files into a replica on Pebble ingests
// the chunks' pairs as tables (kv.Ingester) instead of writing them into
// the WAL and the memtable (from which a flush and compactions wrote them
// again). It fails when the destination's WAL takes more than a tenth of
// the files' bytes, or when the sync makes more than one ingestion per
// chunk of data.
func TestInitialSyncIngestsTables(t *testing.T) {
	const files = 2000
	ctx := t.Context()
	a, d, src := diskPairFS(t, ctx)
	data := make([]byte, 4096)
	for i := range data {
		data[i] = byte(i * 7)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < files; i += 8 {
				c, err := src.Create(ctx, engine.RootCred, engine.RootIno, fmt.Sprintf("f%05d", i), engine.CreateGuarded, engine.SetAttr{}, 0)
				if err == nil {
					_, _, err = src.Write(ctx, engine.RootCred, c.Attr.Ino, 0, data)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if _, err := d.e.CreateReplica(ctx, "dst", "alias/aws/elasticfilesystem"); err != nil {
		t.Fatal(err)
	}
	before, uncBefore := d.st.Metrics(), d.st.UncompressedIngests()
	if err := d.n.AddInbound(InboundSpec{ID: "r", SourceRegion: a.name, DestFS: "dst"}); err != nil {
		t.Fatal(err)
	}
	if err := a.n.AddOutbound(OutboundSpec{ID: "r", SourceFS: "src", DestRegion: d.name, DestFS: "dst"}); err != nil {
		t.Fatal(err)
	}
	dst := func() *engine.FS { fs, _ := d.e.FS("dst"); return fs }
	testkit.WaitFor(t, "initial sync", time.Minute, func() bool {
		_, applied, _ := dst().Replica().Applied()
		return dst().Replica().Consistent() && applied == src.Replica().DurableSeq()
	})
	after := d.st.Metrics()
	wal := after.WAL.BytesIn - before.WAL.BytesIn
	ingests := after.Ingest.Count - before.Ingest.Count
	total := uint64(files * len(data))
	t.Logf("%d files (%d bytes of data): destination WAL %d bytes, %d tables ingested", files, total, wal, ingests)
	if wal > total/10 {
		t.Errorf("the destination's WAL took %d bytes for %d bytes of files, want at most a tenth: the sync's pairs go through the WAL again", wal, total)
	}
	// Chunks are 1 MiB (DefaultChunkBytes); a table holds one or more.
	if chunks := total/DefaultChunkBytes + 1; ingests == 0 || ingests > chunks+1 {
		t.Errorf("%d tables ingested for about %d chunks, want between 1 and one per chunk", ingests, chunks)
	}
	// The replica is encrypted: its tables hold sealed values, written
	// without a compression attempt (each one was tried with snappy).
	if unc := d.st.UncompressedIngests() - uncBefore; unc != ingests {
		t.Errorf("%d of %d ingested tables of sealed values were written without compression, want all", unc, ingests)
	}
	sseq, ssum, err := src.Replica().Checksum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dseq, dsum, err := dst().Replica().Checksum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sseq != dseq || ssum != dsum {
		t.Fatalf("replica at %d differs from the source at %d", dseq, sseq)
	}
}

// TestInitialSyncReadsRanges is a regression guard that counts work: the
// source reads an initial sync's snapshot in ranges of inodes, one
// iterator per range held across its chunks (it opened an iterator per
// chunk, and one reader read everything), and the replica ends equal to
// the source.
func TestInitialSyncReadsRanges(t *testing.T) {
	const files = 2500 // inodes 2..2501: ranges cut at 1024, 2048 and after the inodes
	ctx := t.Context()
	a, b := newPair(t, func(o *Options) { o.SyncReaders = 2 })
	src := smallFilesSource(t, ctx, a, files)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	a.n.mu.Lock()
	o := a.n.outbound["r1"]
	a.n.mu.Unlock()
	st, _ := a.n.OutboundStatus("r1")
	iters, bufs := o.syncIters.Load(), o.syncBufs.Load()
	// 4096-byte chunks (newPair): the sync sent hundreds of them.
	chunks := st.ShippedBytes / 4096
	t.Logf("%d files: about %d chunks, %d iterators, %d chunk buffers", files, chunks, iters, bufs)
	const ranges = 4
	if iters == 0 || iters > 2*ranges || chunks < 10*ranges {
		t.Errorf("the sync opened %d iterators for about %d chunks in %d ranges, want one per range (at most %d with a fresh snapshot or a rewind)", iters, chunks, ranges, 2*ranges)
	}
	// Buffers are reused once sent: at most what two readers hold ahead
	// (twice over for a fresh snapshot or a rewind, whose reader starts
	// with new buffers).
	if limit := uint64(2 * (2*(syncRangeAhead+1) + 4)); bufs == 0 || bufs > limit {
		t.Errorf("the sync allocated %d chunk buffers for about %d chunks, want at most %d (one per chunk: buffers are not reused)", bufs, chunks, limit)
	}
}

// TestInitialSyncReusesChunkFrames: the destination reads the chunks of an
// initial sync into buffers that ingested chunks gave back, so it takes
// about as many as the source's window holds in flight, not one per chunk
// (each was a fresh ~1.1 MiB buffer for a 1 MiB chunk: zeroing and page
// faults, 0.5–0.85 CPU-s per 100 000 small files).
func TestInitialSyncReusesChunkFrames(t *testing.T) {
	const files = 2500
	ctx := t.Context()
	// 4096-byte chunks (newPair), at most ~8 of them in flight.
	a, b := newPair(t, func(o *Options) { o.WindowBytes = 32 << 10 })
	src := smallFilesSource(t, ctx, a, files)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	b.n.mu.Lock()
	in := b.n.inbound["r1"]
	b.n.mu.Unlock()
	st, _ := a.n.OutboundStatus("r1")
	chunks := st.ShippedBytes / 4096
	made := in.chunkFrameBufs.Load()
	t.Logf("%d files: about %d chunks, %d chunk-frame buffers", files, chunks, made)
	if chunks < 100 {
		t.Fatalf("about %d chunks: too few to tell reuse from none", chunks)
	}
	// The window's ~8 chunks, what the frame reader holds ahead of the
	// receiver (one more each), and as many again for a stream that
	// starts over.
	if limit := uint64(2 * (32<<10/4096 + 4)); made == 0 || made > limit {
		t.Errorf("the destination allocated %d buffers for about %d chunk frames, want at most %d (one per chunk: buffers are not reused)", made, chunks, limit)
	}
}

// smallFilesSource creates fs-src in a with files files of 300 bytes.
func smallFilesSource(t *testing.T, ctx context.Context, a *region, files int) *engine.FS {
	t.Helper()
	src, err := a.e.CreateFS(ctx, "fs-src", engine.FSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 300)
	for i := range files {
		c, err := src.Create(ctx, engine.RootCred, engine.RootIno, fmt.Sprintf("f%05d", i), engine.CreateGuarded, engine.SetAttr{}, 0)
		if err == nil {
			_, _, err = src.Write(ctx, engine.RootCred, c.Attr.Ino, 0, data)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return src
}
