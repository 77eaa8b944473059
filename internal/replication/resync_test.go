package replication

import (
	"context"
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
