package replication

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
)

// countingDisk counts what a region's engine asks of its disk: file and
// directory syncs, files created and bytes written.
type countingDisk struct {
	disk.FS
	fileSyncs, dirSyncs, creates, written atomic.Int64
}

func (c *countingDisk) Create(name string) (disk.File, error) {
	f, err := c.FS.Create(name)
	if err != nil {
		return nil, err
	}
	c.creates.Add(1)
	return &countingFile{File: f, c: c}, nil
}

func (c *countingDisk) SyncDir(name string) error {
	c.dirSyncs.Add(1)
	return c.FS.SyncDir(name)
}

type countingFile struct {
	disk.File
	c *countingDisk
}

func (f *countingFile) Write(p []byte) (int, error) {
	f.c.written.Add(int64(len(p)))
	return f.File.Write(p)
}

func (f *countingFile) Sync() error {
	f.c.fileSyncs.Add(1)
	return f.File.Sync()
}

type replicaWork struct {
	fileSyncs, dirSyncs, storeSyncs, creates, written, hashes, puts int64
	applied                                                         int64 // records applied
	// on the source: blocks read back from its store to be pushed, and
	// bytes shipped
	srcReads, shipped int64
}

func (w replicaWork) sub(o replicaWork) replicaWork {
	return replicaWork{fileSyncs: w.fileSyncs - o.fileSyncs, dirSyncs: w.dirSyncs - o.dirSyncs, storeSyncs: w.storeSyncs - o.storeSyncs,
		creates: w.creates - o.creates, written: w.written - o.written, hashes: w.hashes - o.hashes, puts: w.puts - o.puts, applied: w.applied - o.applied,
		srcReads: w.srcReads - o.srcReads, shipped: w.shipped - o.shipped}
}

func (w replicaWork) String() string {
	return fmt.Sprintf("destination: %d blocks stored, %d file syncs, %d directory syncs, %d store syncs, %d files created, %d bytes written, %d keyed hashes, %d records applied; source: %d blocks read back, %d bytes shipped",
		w.puts, w.fileSyncs, w.dirSyncs, w.storeSyncs, w.creates, w.written, w.hashes, w.applied, w.srcReads, w.shipped)
}

// TestReplicaWorkPerMiB is the guard on the work a replicated MiB costs
// (issue 16), counted, not timed. 32 MiB written in 1 MiB writes to a file
// system of 1 MiB blocks are 32 pushed blocks, each of which the
// destination must store once: one file created, written once (its
// sealed form: the data and at most 64 bytes of header, nonce and tag),
// one file sync, at most one directory sync (its name, at the commit of
// the records that need it; a commit covering several blocks of one
// fan-out directory syncs it once), no keyed hash (the authenticated
// channel and the frame's checksums prove it, see putBlock); and its
// records' commits at most one store sync per record. The source reads no
// block back from its store (the shipper takes them from the cache the
// write filled) and ships each block once. It fails when a change adds a
// sync, a write, a hash or a read per block.
func TestReplicaWorkPerMiB(t *testing.T) {
	ctx := context.Background()
	a := newRegion(t, "us-east-1")
	b := newRegion(t, "us-west-2")
	cd := &countingDisk{}
	b.wrapDisk = func(d disk.FS) disk.FS { cd.FS = d; return cd }
	b.stop()
	b.openEngine()
	var storeSyncs atomic.Int64
	b.kv.SetSyncHook(func() { storeSyncs.Add(1) })
	startPair(a, b)
	src, err := a.e.CreateFS(ctx, "fs-src", engine.FSOptions{BlockSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	snap := func() replicaWork {
		st := b.fs("fs-dst").Stats()
		out, _ := a.n.OutboundStatus("r1")
		in, _ := b.n.InboundStatus("r1")
		return replicaWork{fileSyncs: cd.fileSyncs.Load(), dirSyncs: cd.dirSyncs.Load(), storeSyncs: storeSyncs.Load(),
			creates: cd.creates.Load(), written: cd.written.Load(), hashes: int64(st.KeyedHashes), puts: int64(st.Blocks.Puts), applied: int64(in.AppliedRecords),
			srcReads: int64(src.Stats().Blocks.Gets), shipped: int64(out.ShippedBytes)}
	}
	before := snap()
	const files, mib = 2, 16
	rng := rand.New(rand.NewPCG(11, 16))
	buf := make([]byte, 1<<20)
	for i := range files {
		c, err := src.Create(ctx, engine.RootCred, engine.RootIno, fmt.Sprintf("big%d", i), engine.CreateGuarded, engine.SetAttr{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for j := range mib {
			for k := range buf {
				buf[k] = byte(rng.Uint32())
			}
			if _, _, err := src.Write(ctx, engine.RootCred, c.Attr.Ino, uint64(j)<<20, buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	converged(t, src, b.fs("fs-dst"))
	d := snap().sub(before)
	const blocks = files * mib
	t.Logf("replicating %d MiB: %v", blocks, d)
	if d.puts != blocks {
		t.Fatalf("the destination stored %d blocks, want %d", d.puts, blocks)
	}
	checks := []struct {
		what      string
		got, most int64
	}{
		{"files created", d.creates, blocks},
		{"file syncs", d.fileSyncs, blocks},
		{"directory syncs", d.dirSyncs, blocks},
		{"store syncs", d.storeSyncs, d.applied},
		{"bytes written", d.written, blocks * (1<<20 + 64)},
		{"keyed hashes", d.hashes, 0},
		{"blocks read back on the source", d.srcReads, 0},
		{"bytes shipped", d.shipped, blocks * (1<<20 + 1<<10)},
	}
	for _, c := range checks {
		if c.got > c.most {
			t.Errorf("%s: %d for %d MiB replicated, want at most %d", c.what, c.got, blocks, c.most)
		}
	}
	// The stream's bytes go straight between the frames and the
	// connection (upgradeProto): through HTTP/2 they were copied into and
	// out of net/http's buffers and an io.Pipe on the way (two copies
	// per byte on each side, and its flow control).
	if up, h2 := a.n.upgrades.Load(), a.n.fallbacks.Load(); up == 0 || h2 != 0 {
		t.Errorf("streams opened: %d upgraded, %d over HTTP/2; want every one upgraded", up, h2)
	}
}
