package replication

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestProgressSurvivesRestart: what a replication shipped and its finished
// initial sync are kept across a restart of either region (status showed
// SHIPPED 0 and INITIAL SYNC - after one), and across a suspension.
func TestProgressSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	a, b := newRegion(t, "us-east-1"), newRegion(t, "us-west-2")
	for _, r := range []*region{a, b} {
		r.mods = append(r.mods, func(o *Options) { o.Progress = KVProgress(r.kv) })
	}
	startPair(a, b)
	src := a.mkfs("fs-src")
	for i := range 3 {
		e, err := src.Create(ctx, engine.RootCred, engine.RootIno, fmt.Sprint("f", i), engine.CreateGuarded, engine.SetAttr{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := src.Write(ctx, engine.RootCred, e.Attr.Ino, 0, bytes.Repeat([]byte{byte(i)}, 100<<10)); err != nil {
			t.Fatal(err)
		}
	}
	link(t, a, b, "rc-progress", "fs-src", "fs-dst")
	testkit.WaitFor(t, "initial sync done and records applied", 20*time.Second, func() bool {
		st, ok := a.n.OutboundStatus("rc-progress")
		return ok && st.Sync.Done && st.State == StateEnabled && st.Applied == src.Replica().DurableSeq()
	})
	if _, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, "after", engine.SetAttr{}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the record shipped and applied", 20*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("rc-progress")
		in, _ := b.n.InboundStatus("rc-progress")
		return st.ShippedRecords > 0 && st.Applied == src.Replica().DurableSeq() && in.AppliedRecords > 0
	})
	_, _, appliedAt := b.rep("fs-dst").Applied()
	testkit.WaitFor(t, "a heartbeat past the last record", 20*time.Second, func() bool {
		in, _ := b.n.InboundStatus("rc-progress")
		return in.LastReplicated.After(appliedAt)
	})
	before, _ := a.n.OutboundStatus("rc-progress")
	inBefore, _ := b.n.InboundStatus("rc-progress")

	for _, r := range []*region{a, b} {
		r.stop()
		r.restart()
	}
	if err := b.n.AddInbound(InboundSpec{ID: "rc-progress", SourceRegion: a.name, SourceFS: "fs-src", DestFS: "fs-dst"}); err != nil {
		t.Fatal(err)
	}
	// The destination, its source not heard yet, reports what its replica
	// held (heartbeats after the last record included), not none.
	if in, _ := b.n.InboundStatus("rc-progress"); in.LastReplicated.Before(inBefore.LastReplicated) {
		t.Errorf("last replicated after a restart: %s, before %s", in.LastReplicated, inBefore.LastReplicated)
	}
	if err := a.n.AddOutbound(OutboundSpec{ID: "rc-progress", SourceFS: "fs-src", DestRegion: b.name, DestFS: "fs-dst"}); err != nil {
		t.Fatal(err)
	}
	after, _ := a.n.OutboundStatus("rc-progress")
	if after.ShippedRecords < before.ShippedRecords || after.ShippedBytes < before.ShippedBytes || after.ShippedBlocks < before.ShippedBlocks {
		t.Errorf("shipped after a restart: %d rec %d B %d blocks, before %d rec %d B %d blocks",
			after.ShippedRecords, after.ShippedBytes, after.ShippedBlocks, before.ShippedRecords, before.ShippedBytes, before.ShippedBlocks)
	}
	if !after.Sync.Done || after.Sync.BytesDone != before.Sync.BytesDone || !after.Sync.Finished.Equal(before.Sync.Finished) {
		t.Errorf("initial sync after a restart: %+v, before %+v", after.Sync, before.Sync)
	}
	if in, _ := b.n.InboundStatus("rc-progress"); in.AppliedRecords < inBefore.AppliedRecords {
		t.Errorf("applied records after a restart: %d, before %d", in.AppliedRecords, inBefore.AppliedRecords)
	}

	// A suspension (regionfs dev region stop) keeps them too.
	a.n.Suspend()
	if err := a.n.Resume(); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.n.OutboundStatus("rc-progress"); st.ShippedRecords < before.ShippedRecords || !st.Sync.Done {
		t.Errorf("after a suspension: %d records shipped, sync %+v", st.ShippedRecords, st.Sync)
	}

	// Removing the replication forgets its progress.
	a.n.RemoveOutbound("rc-progress")
	if _, ok, err := KVProgress(a.kv).LoadProgress(RoleSource, "rc-progress"); ok || err != nil {
		t.Errorf("progress kept after the replication was removed (%v)", err)
	}
}
