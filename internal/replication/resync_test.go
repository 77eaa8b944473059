package replication

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
)

// Regression: a key asked for on its own ([k, k‖0)) and a differing range
// starting at k are two requests; answering the first must not mark the
// second answered (the resync then finished early and diverged).
func TestResyncRequestsAreExact(t *testing.T) {
	ctx := context.Background()
	r := newRegion(t, "us-east-1")
	fs, err := r.e.CreateFS(ctx, "fs-a", engine.FSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Replica().BeginResync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	n := New(Options{Region: r.name, Engine: r.e})
	in := &inbound{n: n, fs: fs.Replica()}
	rx := &receiver{in: in, ctx: ctx, log: n.log}
	if err := rx.startResync(); err != nil {
		t.Fatal(err)
	}
	k := []byte("I\x00\x00\x00\x00\x00\x00\x00\x01A")
	rx.rs.differ[rangeKey(k, []byte("J"))] = true
	rx.rs.asked[string(k)] = true
	rx.rs.done = &resyncDone{base: 1, top: 1, epoch: 1, time: time.Now()}
	m := &rangesMsg{seq: 1, epoch: 1, time: time.Now(), ranges: []engine.SyncRange{singleton(k)}}
	if err := rx.handleResync(frame{typ: msgRanges, p: m.encode()}); err != nil {
		t.Fatal(err)
	}
	if len(rx.rs.asked) != 0 || !rx.rs.differ[rangeKey(k, []byte("J"))] {
		t.Fatalf("asked %v, differ %v", rx.rs.asked, rx.rs.differ)
	}
	if err := rx.finishResync(); err != nil || rx.rs == nil {
		t.Fatalf("the resync finished with a range still asked for (%v)", err)
	}
}

// A replica created next to file systems of its lineage (reverse
// replication into a new file system in the original's region, or another
// zone of one region) gets its blocks locally: none crosses the link.
func TestLocalBlocksAreNotShipped(t *testing.T) {
	ctx := context.Background()
	a, _ := newPair(t)
	src := a.mkfs("fs-src")
	w := newWorkload(t, 61, func() *engine.FS { return src })
	w.run(ctx, 120)
	st, _ := src.Usage()
	link(t, a, a, "r1", "fs-src", "fs-zone-b")
	converged(t, src, a.fs("fs-zone-b"))
	w.run(ctx, 30)
	converged(t, src, a.fs("fs-zone-b"))
	os, _ := a.n.OutboundStatus("r1")
	t.Logf("%d bytes of data replicated with %d blocks and %d bytes shipped", st.Bytes, os.ShippedBlocks, os.ShippedBytes)
	if os.ShippedBlocks != 0 {
		t.Fatalf("%d blocks shipped although the region holds them all", os.ShippedBlocks)
	}
	if err := a.rep("fs-zone-b").Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
}

// rootFiles describes the regular files in fs's root: name → size and
// content hash.
func rootFiles(t *testing.T, fs *engine.FS) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, name := range listFiles(t, fs) {
		l, err := fs.Lookup(ctx, engine.RootCred, engine.RootIno, name)
		if err != nil {
			t.Fatal(err)
		}
		if l.Type != engine.TypeRegular {
			out[name] = fmt.Sprintf("type %v", l.Type)
			continue
		}
		data, _, _, err := fs.Read(ctx, engine.RootCred, l.Ino, 0, int(l.Size)+1)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = fmt.Sprintf("%d bytes %x", len(data), sha256.Sum256(data))
	}
	return out
}

// TestPromoteDuringFailback: a failback B→A into the original file system
// whose source is lost in the middle of its resync (a second failure).
// Promoting the destination used to be refused for ever (engine.ErrNotReady:
// a resync replaces the state range by range). Now the resync is abandoned:
// A is back at exactly its own state from before the failback, writable, at
// an epoch above B's, and the Promotion says so.
func TestPromoteDuringFailback(t *testing.T) {
	ctx := context.Background()
	// b reaches a through the proxy: the failback's link.
	b, a, px := proxiedPair(t, func(o *Options) { o.ChunkBytes = 4 << 10 })
	a.mkfs("fs-a")
	wa := newWorkload(t, 41, func() *engine.FS { return a.fs("fs-a") })
	wa.run(ctx, 150)
	link(t, a, b, "r1", "fs-a", "fs-b")
	converged(t, a.fs("fs-a"), b.fs("fs-b"))
	a.n.RemoveOutbound("r1")
	wa.run(ctx, 10) // never shipped: A's own, kept by the rollback
	rp, err := b.n.Promote(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.rep("fs-a").Fence(ctx, rp.NewEpoch); err != nil {
		t.Fatal(err)
	}
	writeRandomFiles(t, ctx, b.fs("fs-b"), rand.New(rand.NewPCG(41, 42)), 24, 8)
	before := rootFiles(t, a.fs("fs-a"))
	hist, err := b.rep("fs-b").EpochHistory()
	if err != nil {
		t.Fatal(err)
	}
	fork, err := PrepareResync(ctx, a.rep("fs-a"), hist, b.rep("fs-b").DurableSeq())
	if err != nil {
		t.Fatal(err)
	}
	// Slow: some 100 KiB/s, for the blocks of 24 new files.
	px.SetDelay(20 * time.Millisecond)
	px.SetBandwidth(100 << 10)
	px.SetPieceBytes(2 << 10)
	if err := a.n.AddInbound(InboundSpec{ID: "r2", SourceRegion: b.name, SourceFS: "fs-b", DestFS: "fs-a", Fork: fork}); err != nil {
		t.Fatal(err)
	}
	if err := b.n.AddOutbound(OutboundSpec{ID: "r2", SourceFS: "fs-b", DestRegion: a.name, DestFS: "fs-a"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _ := b.n.OutboundStatus("r2")
		if st.Sync.Active && st.Sync.KeysDone > 0 && st.ShippedBytes >= 64<<10 {
			break
		}
		if time.Now().After(deadline) || !a.rep("fs-a").SyncState().Resync {
			t.Fatalf("the resync did not get under way (or ended): %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// B's region is lost.
	b.n.RemoveOutbound("r2")
	if !a.rep("fs-a").SyncState().Resync {
		t.Fatal("the resync ended before the source was lost")
	}
	t0 := time.Now()
	p, err := a.n.Promote(ctx, "r2")
	if err != nil {
		t.Fatalf("promote in the middle of the failback: %v", err)
	}
	t.Logf("promotion during the failback took %s: %s", time.Since(t0), p.AbandonedReason())
	if !p.Abandoned || p.Empty || p.NewEpoch <= rp.NewEpoch {
		t.Fatalf("promotion %+v: want the resync abandoned, above epoch %d", p, rp.NewEpoch)
	}
	if got := rootFiles(t, a.fs("fs-a")); !maps.Equal(got, before) {
		t.Fatalf("A after the abandoned failback:\n%v\nwant its state from before:\n%v", got, before)
	}
	if err := a.rep("fs-a").Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.fs("fs-a").Mkdir(ctx, engine.RootCred, engine.RootIno, "writable-again", engine.SetAttr{}); err != nil {
		t.Fatal(err)
	}
}
