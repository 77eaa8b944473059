package replication

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/kv"
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

// TestRestartedSourceReportsLastReplicated: a source restarted while its
// destination is out of reach reports, before any acknowledgement, the
// point its destination had last confirmed — LastReplicated, ENABLED,
// the applied seq — as a restarted destination does (it showed ENABLING
// without LastReplicated, and every record of its journal as pending,
// until the destination answered).
func TestRestartedSourceReportsLastReplicated(t *testing.T) {
	a, b, src := progressPair(t)
	var before Status
	testkit.WaitFor(t, "the records applied and a heartbeat past them", 20*time.Second, func() bool {
		before, _ = a.n.OutboundStatus("r1")
		return before.State == StateEnabled && before.Applied == src.Replica().DurableSeq() &&
			src.Replica().Pins()[pinName("r1")] == before.Applied+1
	})
	b.stopNode()
	a.stop()
	a.restart()
	if err := a.n.AddOutbound(OutboundSpec{ID: "r1", SourceFS: "fs-src", DestRegion: b.name, DestFS: "fs-dst"}); err != nil {
		t.Fatal(err)
	}
	after, _ := a.n.OutboundStatus("r1")
	if after.LastReplicated.Before(before.LastReplicated) || after.State != StateEnabled || after.Applied != before.Applied ||
		after.PendingRecords != 0 {
		t.Errorf("a restarted source before its destination answers: state %s, last replicated %s, applied %d, pending %d; before the restart: %s, %s, %d",
			after.State, after.LastReplicated, after.Applied, after.PendingRecords, before.State, before.LastReplicated, before.Applied)
	}
}

// TestCrashedSourceClaimsNoMoreThanConfirmed: progress is saved without a
// sync, so a source killed (kill -9: what was not durable is lost) may
// restart with an older LastReplicated, or none, but never one past what
// its destination had confirmed, nor an applied seq past what the
// destination durably holds.
func TestCrashedSourceClaimsNoMoreThanConfirmed(t *testing.T) {
	a, b, src := progressPair(t)
	testkit.WaitFor(t, "the records applied", 20*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return st.State == StateEnabled && st.Applied == src.Replica().DurableSeq()
	})
	b.stopNode()
	before, _ := a.n.OutboundStatus("r1")
	_, held, _ := b.rep("fs-dst").Applied()
	a.crash()
	a.restart()
	if err := a.n.AddOutbound(OutboundSpec{ID: "r1", SourceFS: "fs-src", DestRegion: b.name, DestFS: "fs-dst"}); err != nil {
		t.Fatal(err)
	}
	after, _ := a.n.OutboundStatus("r1")
	if after.LastReplicated.After(before.LastReplicated) || after.Applied > held {
		t.Errorf("a source restarted after a crash claims more than its destination confirmed: last replicated %s (confirmed %s), applied %d (held %d)",
			after.LastReplicated, before.LastReplicated, after.Applied, held)
	}
	if after.State == StateEnabled && after.LastReplicated.IsZero() {
		t.Errorf("ENABLED without a LastReplicated after a crash")
	}
}

// progressPair starts two regions that save their replication progress
// in their stores (KVProgress), replication r1 from fs-src to fs-dst, and
// three records on the source.
func progressPair(t *testing.T) (a, b *region, src *engine.FS) {
	t.Helper()
	ctx := context.Background()
	a, b = newRegion(t, "us-east-1"), newRegion(t, "us-west-2")
	for _, r := range []*region{a, b} {
		r.mods = append(r.mods, func(o *Options) { o.Progress = KVProgress(r.kv) })
	}
	startPair(a, b)
	src = a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	for i := range 3 {
		if _, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, fmt.Sprint("d", i), engine.SetAttr{}); err != nil {
			t.Fatal(err)
		}
	}
	return a, b, src
}

// FuzzProgress: any stored progress value loads without a panic or is
// refused; one that loads saves and loads again to the same value, and
// seeds a status without a panic.
func FuzzProgress(f *testing.F) {
	at := time.Date(2026, 12, 7, 16, 0, 0, 123, time.UTC)
	for _, p := range []Progress{
		{},
		{ShippedRecords: 1 << 40, ShippedBytes: 7, ShippedBlocks: 3, AppliedRecords: 9, LastReplicated: at},
		{Sync: SyncProgress{Done: true, BytesDone: 10, BytesTotal: 10, FilesDone: 2, FilesTotal: 2, KeysDone: 4,
			KeysTotal: 4, Started: at, Finished: at.Add(time.Second), Method: "journal", Stalls: 1}},
		{ShippedRecords: 5, LastReplicated: at, Released: true},
	} {
		b, err := json.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"LastReplicated":"0000-01-01T00:00:00+23:59"}`))
	f.Add([]byte(`{"ShippedRecords":-1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, v []byte) {
		s := kv.NewMemory()
		b := s.NewBatch()
		b.Set(progressKey(RoleDestination, "rc-1"), v)
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
		b.Close()
		ps := KVProgress(s)
		p, ok, err := ps.LoadProgress(RoleDestination, "rc-1")
		if err != nil {
			return
		}
		if !ok {
			t.Fatal("a stored progress was not found")
		}
		var st Status
		p.restore(&st)
		if err := ps.SaveProgress(RoleDestination, "rc-1", p, true); err != nil {
			// Only a time JSON cannot write (a year past 9999) fails.
			return
		}
		again, ok, err := ps.LoadProgress(RoleDestination, "rc-1")
		if err != nil || !ok {
			t.Fatalf("a saved progress did not load again: %v (found %v)", err, ok)
		}
		first, _ := json.Marshal(p)
		second, _ := json.Marshal(again)
		if !bytes.Equal(first, second) {
			t.Fatalf("progress changed through a save: %s, then %s", first, second)
		}
		if !again.LastReplicated.Equal(p.LastReplicated) || again.ShippedBytes != p.ShippedBytes || again.Sync.Method != p.Sync.Method {
			t.Fatalf("progress changed through a save: %+v, then %+v", p, again)
		}
	})
}

// TestProgressReleasedMark: a stored record without Released (an older
// release's) loads as not released; the mark round-trips, and a status
// saved while it is set keeps it (the periodic saves do not clear it).
func TestProgressReleasedMark(t *testing.T) {
	s := kv.NewMemory()
	b := s.NewBatch()
	b.Set(progressKey(RoleSource, "rc-old"), []byte(`{"ShippedRecords":3,"AppliedRecords":0,"LastReplicated":"2026-12-07T16:00:00Z"}`))
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.Close()
	ps := KVProgress(s)
	p, ok, err := ps.LoadProgress(RoleSource, "rc-old")
	if err != nil || !ok || p.Released || p.ShippedRecords != 3 {
		t.Fatalf("older record: %+v %v %v", p, ok, err)
	}
	st := Status{released: true}
	if q := progressOf(st); !q.Released {
		t.Fatalf("a released status saves %+v", q)
	}
	if err := ps.SaveProgress(RoleSource, "rc-old", progressOf(st), true); err != nil {
		t.Fatal(err)
	}
	if p, _, err := ps.LoadProgress(RoleSource, "rc-old"); err != nil || !p.Released {
		t.Fatalf("released mark read back: %+v %v", p, err)
	}
}
