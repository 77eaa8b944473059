package replication

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// fullDisk is a space guard whose disk is full while full is set: it
// refuses every write that grows what the region stores, as space.Guard
// does below its floor.
type fullDisk struct {
	full    atomic.Bool
	refused atomic.Int64
}

var errFloor = errors.New("free space below the floor (test)")

func (d *fullDisk) Admit(int64) error { return d.Check(0) }

func (d *fullDisk) Check(int64) error {
	if d.full.Load() {
		d.refused.Add(1)
		return errFloor
	}
	return nil
}

// TestReplicaDiskFull (issue 9: a full disk is a condition that passes,
// not an error for the operator): the replica's disk fills up during the
// initial sync and again while it streams; the replication never goes to
// ERROR on either end, the replica stays a consistent prefix, and it
// catches up on its own once space returns. Before, the first refused
// apply ended the replication in ERROR ("the replica cannot apply the
// source's changes") until the operator re-created it.
func TestReplicaDiskFull(t *testing.T) {
	ctx := context.Background()
	a := newRegion(t, "us-east-1")
	b := newRegion(t, "us-west-2")
	disk := &fullDisk{}
	b.space = disk
	b.stop()
	b.openEngine()
	startPair(a, b)
	src := a.mkfs("fs-src")
	w := newWorkload(t, 7, func() *engine.FS { return src })
	w.record(ctx)
	w.run(ctx, 60)

	// The disk fills up once the replica exists: the initial sync is
	// refused.
	if _, err := b.e.CreateReplica(ctx, "fs-dst", ""); err != nil {
		t.Fatal(err)
	}
	disk.full.Store(true)
	if err := b.n.AddInbound(InboundSpec{ID: "r1", SourceRegion: a.name, SourceFS: "fs-src", DestFS: "fs-dst"}); err != nil {
		t.Fatal(err)
	}
	if err := a.n.AddOutbound(OutboundSpec{ID: "r1", SourceFS: "fs-src", DestRegion: b.name, DestFS: "fs-dst"}); err != nil {
		t.Fatal(err)
	}
	dst := b.fs("fs-dst")
	notError := func(phase string, d time.Duration) {
		t.Helper()
		testkit.WaitFor(t, phase+": writes refused on the replica", 10*time.Second, func() bool { return disk.refused.Load() > 0 })
		// Watched for d, not waited for.
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			st, _ := a.n.OutboundStatus("r1")
			ds, _ := b.n.InboundStatus("r1")
			if st.State == StateError || ds.State == StateError {
				t.Fatalf("%s: a full replica disk put the replication in ERROR: source %s %q, destination %s %q",
					phase, st.State, st.Message, ds.State, ds.Message)
			}
		}
		ds, _ := b.n.InboundStatus("r1")
		t.Logf("%s: %d writes refused; destination %s, last error %q", phase, disk.refused.Load(), ds.State, ds.LastError)
		// The destination says why it does not catch up (it was silent:
		// ENABLED with no message while the source said "unreachable").
		if ds.Message != msgReplicaFull {
			t.Errorf("%s: destination's status message %q, want %q", phase, ds.Message, msgReplicaFull)
		}
	}
	notError("initial sync", time.Second)
	disk.full.Store(false)
	converged(t, src, dst)

	// Full again while streaming: the source goes on writing.
	disk.refused.Store(0)
	disk.full.Store(true)
	w.run(ctx, 60)
	notError("streaming", time.Second)
	if ok, err := w.checkPrefix(ctx, dst); err != nil || !ok {
		t.Fatalf("replica on a full disk is not a prefix of the source: %v %v", ok, err)
	}
	disk.full.Store(false)
	converged(t, src, dst)
	testkit.WaitFor(t, "ENABLED on both ends", 10*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		ds, _ := b.n.InboundStatus("r1")
		return st.State == StateEnabled && ds.State == StateEnabled
	})
	if ds, _ := b.n.InboundStatus("r1"); ds.Message != "" {
		t.Errorf("destination's status message %q once space is back, want none", ds.Message)
	}
	if err := dst.Replica().Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
}

// TestJournalRetentionGivesWayOnFullDisk (chaos22): below the data disk's
// floor the journal kept only for the local retention age (RetainAge) is
// truncated; with room it is kept. Before, a replica that filled up under
// churn kept 15 minutes of journal (181 MiB of metadata store beside
// 41 MiB of data on a 64 MiB disk) and could not get below its floor.
func TestJournalRetentionGivesWayOnFullDisk(t *testing.T) {
	ctx := context.Background()
	a := newRegion(t, "us-east-1", func(o *Options) { o.RetainAge = time.Hour })
	disk := &fullDisk{}
	a.space = disk
	a.stop()
	a.openEngine()
	a.startNode(nil)
	src := a.mkfs("fs-src")
	w := newWorkload(t, 3, func() *engine.FS { return src })
	w.run(ctx, 40)
	rep := src.Replica()
	start, err := rep.JournalStart()
	if err != nil {
		t.Fatal(err)
	}
	top := rep.DurableSeq()
	if top <= start {
		t.Fatalf("no journal to keep: start %d, durable %d", start, top)
	}

	a.n.truncateJournals(ctx)
	if got, _ := rep.JournalStart(); got != start {
		t.Fatalf("with room the journal within RetainAge was truncated: starts at %d, was %d", got, start)
	}

	disk.full.Store(true)
	a.n.truncateJournals(ctx)
	// Truncate keeps the newest record (min with the last seq).
	if got, _ := rep.JournalStart(); got < top {
		t.Fatalf("below the floor the journal still starts at %d (durable %d): RetainAge did not give way", got, top)
	}
}

// The source says why a replica on a full disk applies nothing: the
// destination tells it (featureWaitReason) before it ends the stream its
// full disk stops, and in the first ack of each stream while it is full.
// Before, the source's status said the link was lost ("destination
// region us-west-2 unreachable for 1s (connection lost)", link_up 0)
// while the destination, in touch, said its disk was full. With a peer
// of an older version on either side it says what it said before.
func TestSourceToldReplicaFull(t *testing.T) {
	old := func(o *Options) { o.withheld = []string{featureWaitReason} }
	for _, tc := range []struct {
		name     string
		src, dst []func(*Options)
		told     bool
	}{
		{"both", nil, nil, true},
		{"older-source", []func(*Options){old}, nil, false},
		{"older-destination", nil, []func(*Options){old}, false},
	} {
		t.Run(tc.name, func(t *testing.T) { sourceToldReplicaFull(t, tc.src, tc.dst, tc.told) })
	}
}

func sourceToldReplicaFull(t *testing.T, srcMods, dstMods []func(*Options), told bool) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	a := newRegion(t, "us-east-1", append(srcMods, func(o *Options) { o.Registerer = reg })...)
	b := newRegion(t, "us-west-2", dstMods...)
	disk := &fullDisk{}
	b.space = disk
	b.stop()
	b.openEngine()
	startPair(a, b)
	src := a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	w := newWorkload(t, 11, func() *engine.FS { return src })
	w.run(ctx, 20)
	converged(t, src, b.fs("fs-dst"))

	disk.full.Store(true)
	w.run(ctx, 20)
	testkit.WaitFor(t, "writes refused on the replica", 10*time.Second, func() bool { return disk.refused.Load() > 0 })
	waiting := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "regionfs_replication_destination_waiting" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no regionfs_replication_destination_waiting")
		return 0
	}
	if told {
		testkit.WaitFor(t, "the source to say the replica is full", 10*time.Second, func() bool {
			st, _ := a.n.OutboundStatus("r1")
			return strings.Contains(st.Message, msgReplicaFull)
		})
		// Said all along, across the streams the full disk ends.
		for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			st, _ := a.n.OutboundStatus("r1")
			if !strings.Contains(st.Message, msgReplicaFull) || st.PeerWaiting != msgReplicaFull || st.State != StateEnabled {
				t.Fatalf("source status while the replica is full: %s %q (waiting %q)", st.State, st.Message, st.PeerWaiting)
			}
			if v := waiting(); v != 1 {
				t.Fatalf("regionfs_replication_destination_waiting = %v while the replica is full", v)
			}
		}
	} else {
		testkit.WaitFor(t, "a stream the full disk ended", 10*time.Second, func() bool {
			st, _ := a.n.OutboundStatus("r1")
			return st.LastError != ""
		})
		st, _ := a.n.OutboundStatus("r1")
		if strings.Contains(st.Message, msgReplicaFull) || st.PeerWaiting != "" || waiting() != 0 {
			t.Fatalf("a peer of an older version told the source: %q (waiting %q)", st.Message, st.PeerWaiting)
		}
	}
	st, _ := a.n.OutboundStatus("r1")
	t.Logf("source while the replica is full: %s %q", st.State, st.Message)

	disk.full.Store(false)
	converged(t, src, b.fs("fs-dst"))
	testkit.WaitFor(t, "the source's message cleared", 10*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return st.Message == "" && st.PeerWaiting == ""
	})
	if v := waiting(); v != 0 {
		t.Fatalf("regionfs_replication_destination_waiting = %v once space is back", v)
	}
}

// A replica on a full disk pins its source's journal only up to the
// retention limits: past MaxLagBytes the source drops the pin (ERROR,
// "fell too far behind": the journal it needs is no longer kept), its
// own writes never wait or fail for it, and once the replica has space
// again it is resynchronised and ENABLED.
func TestFullReplicaPinBounded(t *testing.T) {
	ctx := context.Background()
	mod := func(o *Options) {
		o.MaxLagBytes = 32 << 10
		o.RetainAge = time.Millisecond
	}
	a := newRegion(t, "us-east-1", mod)
	b := newRegion(t, "us-west-2", mod)
	disk := &fullDisk{}
	b.space = disk
	b.stop()
	b.openEngine()
	startPair(a, b)
	src := a.mkfs("fs-src")
	w := newWorkload(t, 13, func() *engine.FS { return src })
	w.run(ctx, 40)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))

	disk.full.Store(true)
	// The source's writes go on (w.run fails on the first error) until
	// it has dropped the pin.
	// Released: the journal is no longer held from the replica's
	// applied point. Either no pin (ERROR, "fell too far behind"), or,
	// as soon as the replica's next stream comes (~30 ms later), a
	// resync's own pin from its snapshot on: ERROR alone is too brief
	// to be seen reliably between two of the source's write batches.
	// The pins are read before the status: a pin is never past the
	// applied point acknowledged before it.
	released := false
	var st Status
	var pin uint64
	var pinned bool
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && !released; {
		w.run(ctx, 10)
		pin, pinned = src.Replica().Pins()[pinName("r1")]
		st, _ = a.n.OutboundStatus("r1")
		released = !pinned || pin > st.Applied+1
	}
	t.Logf("source: %s %q, %d pending records (%d bytes), pinned %v at %d, applied %d", st.State, st.Message, st.PendingRecords, st.PendingBytes, pinned, pin, st.Applied)
	if !released {
		t.Fatalf("the source kept the full replica's pin past MaxLagBytes: %s %q, pinned at %d, applied %d", st.State, st.Message, pin, st.Applied)
	}
	if st.State == StateError && !strings.Contains(st.Message, "fell too far behind") {
		t.Errorf("source status message %q", st.Message)
	}
	if st.State != StateError && !st.Sync.Active {
		t.Errorf("the pin moved past the replica's applied point with no resync under way: %s %q", st.State, st.Message)
	}
	// The pin stays dropped while the replica is full (its streams come
	// and go, each acknowledging its old applied point): a resync may
	// pin the journal from its own snapshot on (each attempt takes a new
	// one), never again from the old applied point, and the journal the
	// replica needed goes. Before, each new stream's first
	// acknowledgement pinned it there again (in 110-167 of ~200 looks
	// over 2 s), until the next retention check released it.
	old := st.Applied + 1
	repins := 0
	for i, end := 0, time.Now().Add(2*time.Second); time.Now().Before(end); i++ {
		if pin, pinned := src.Replica().Pins()[pinName("r1")]; pinned && pin <= old {
			repins++
		}
		if i%10 == 0 {
			w.run(ctx, 1) // the source's writes go on meanwhile
		}
		time.Sleep(10 * time.Millisecond)
	}
	if repins > 0 {
		t.Errorf("the released pin came back at the full replica's applied point %d (in %d of ~200 looks over 2 s)", old, repins)
	}
	testkit.WaitFor(t, "the journal truncated past the replica's applied point", 10*time.Second, func() bool {
		a.n.truncateJournals(ctx)
		start, _ := src.Replica().JournalStart()
		return start > old
	})

	disk.full.Store(false)
	w.run(ctx, 10)
	converged(t, src, b.fs("fs-dst"))
	testkit.WaitFor(t, "ENABLED again", 20*time.Second, func() bool {
		st, _ = a.n.OutboundStatus("r1")
		return st.State == StateEnabled
	})
	t.Logf("source after space came back: %s %q, resync by %q", st.State, st.Message, st.Sync.Method)
	if err := b.rep("fs-dst").Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
}

// TestReleasedPinKeptAcrossRestart: the mark that the retention limits
// released a destination's pin is durable (Progress.Released): after a
// crash of the source the pin does not come back at the replica's old
// applied point (before, the restarted source's first acknowledgement
// pinned the journal there again, past MaxLagBytes), the source says
// ERROR (or resyncing), and once the replica has space it is
// resynchronised and ENABLED.
//
// The destination is down while the limits release its pin (no stream
// resyncs it before the crash), and its disk is full after the restart
// (it cannot catch up from a pin set again at its old point). The
// journal is kept an hour (RetainAge): truncated, the first stream
// resynced the replica whatever the mark, and a pin set again at the old
// point lasted only until that resync's own (rel24's version of this
// test passed without the mark read).
func TestReleasedPinKeptAcrossRestart(t *testing.T) {
	ctx := context.Background()
	var a, b *region
	mod := func(o *Options) {
		o.MaxLagBytes = 32 << 10
		o.RetainAge = time.Hour
	}
	a = newRegion(t, "us-east-1", mod)
	b = newRegion(t, "us-west-2", mod)
	for _, r := range []*region{a, b} {
		r.mods = append(r.mods, func(o *Options) { o.Progress = KVProgress(r.kv) })
	}
	disk := &fullDisk{}
	b.space = disk
	b.stop()
	b.openEngine()
	startPair(a, b)
	src := a.mkfs("fs-src")
	w := newWorkload(t, 19, func() *engine.FS { return a.fs("fs-src") })
	w.run(ctx, 40)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	shipping(t, a, "r1")

	b.stop()
	released := false
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && !released; {
		w.run(ctx, 10)
		st, _ := a.n.OutboundStatus("r1")
		_, pinned := a.rep("fs-src").Pins()[pinName("r1")]
		released = st.State == StateError && !pinned
	}
	if !released {
		t.Fatal("the source kept the pin of a destination past MaxLagBytes")
	}
	if p, _, err := KVProgress(a.kv).LoadProgress(RoleSource, "r1"); err != nil || !p.Released {
		t.Fatalf("released, but the stored mark is %v %v", p.Released, err)
	}
	st, _ := a.n.OutboundStatus("r1")
	old := st.Applied + 1
	if start, _ := a.rep("fs-src").JournalStart(); start > old {
		t.Fatalf("the journal starts at %d, past the replica's applied point %d: the test needs it kept", start, old)
	}

	a.crash()
	disk.full.Store(true)
	a.restart(outboundR1(b))
	b.restart(inboundR1(a))
	repins := 0
	for i, end := 0, time.Now().Add(2*time.Second); time.Now().Before(end); i++ {
		if pin, pinned := a.rep("fs-src").Pins()[pinName("r1")]; pinned && pin <= old {
			repins++
		}
		if i%10 == 0 {
			w.run(ctx, 1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if repins > 0 {
		t.Errorf("after the restart the released pin came back at the replica's applied point %d (in %d of ~200 looks over 2 s)", old, repins)
	}
	// ERROR, or ENABLING once a stream began the resync (which the full
	// replica cannot finish yet): not ENABLED from the old applied point.
	if st, _ = a.n.OutboundStatus("r1"); st.State != StateError && !(st.State == StateEnabling && st.Sync.Active) {
		t.Errorf("restarted source: %s %q (sync %+v), want ERROR or a resync", st.State, st.Message, st.Sync)
	} else if st.State == StateError && !strings.Contains(st.Message, "before the source restarted") {
		t.Errorf("restarted source's message %q", st.Message)
	}

	disk.full.Store(false)
	w.run(ctx, 10)
	converged(t, a.fs("fs-src"), b.fs("fs-dst"))
	testkit.WaitFor(t, "ENABLED again", 20*time.Second, func() bool {
		st, _ = a.n.OutboundStatus("r1")
		return st.State == StateEnabled
	})
	if p, _, err := KVProgress(a.kv).LoadProgress(RoleSource, "r1"); err != nil || p.Released {
		t.Errorf("after the resync the stored mark is %+v %v", p.Released, err)
	}
	if err := b.rep("fs-dst").Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
}
