package replication

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// markSaveFails is a ProgressStore whose durable saves of the retention
// limits' release mark fail while fail is set (a metadata store that
// cannot commit).
type markSaveFails struct {
	ProgressStore
	fail    atomic.Bool
	refused atomic.Int64
}

var errMarkSave = errors.New("metadata store commit failed (test)")

func (s *markSaveFails) SaveProgress(role Role, id string, p Progress, durable bool) error {
	if durable && p.Released && s.fail.Load() {
		s.refused.Add(1)
		return errMarkSave
	}
	return s.ProgressStore.SaveProgress(role, id, p, durable)
}

// TestReleaseKeepsPinUntilMarkSaved: past the retention limits the
// source releases the destination's journal pin only once the release
// mark (Progress.Released) is durable. While its save fails the pin stays
// (a release without the mark would come back at the destination's old
// applied point after a crash) and each retention check tries again; once
// the save succeeds the pin goes, the stored mark says released, and the
// destination, back, is resynchronised.
func TestReleaseKeepsPinUntilMarkSaved(t *testing.T) {
	ctx := context.Background()
	store := &markSaveFails{}
	mod := func(o *Options) {
		o.MaxLagBytes = 32 << 10
		o.RetainAge = time.Millisecond
	}
	a := newRegion(t, "us-east-1", mod, func(o *Options) { o.Progress = store })
	b := newRegion(t, "us-west-2", mod)
	store.ProgressStore = KVProgress(a.kv)
	startPair(a, b)
	src := a.mkfs("fs-src")
	w := newWorkload(t, 23, func() *engine.FS { return src })
	w.run(ctx, 40)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	shipping(t, a, "r1")

	store.fail.Store(true)
	b.stop()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && store.refused.Load() == 0; {
		w.run(ctx, 10)
	}
	if store.refused.Load() == 0 {
		t.Fatal("the source never tried to release the pin of a destination past MaxLagBytes")
	}
	// Three checks (one a second) failed to save the mark: the pin is
	// still there, at the destination's applied point.
	testkit.WaitFor(t, "three failed saves of the release mark", 10*time.Second, func() bool { return store.refused.Load() >= 3 })
	st, _ := a.n.OutboundStatus("r1")
	pin, pinned := src.Replica().Pins()[pinName("r1")]
	if !pinned || pin > st.Applied+1 {
		t.Fatalf("the pin went with the release mark unsaved (pinned %v at %d, applied %d; %s %q)", pinned, pin, st.Applied, st.State, st.Message)
	}
	if p, _, err := store.LoadProgress(RoleSource, "r1"); err != nil || p.Released {
		t.Fatalf("stored mark %v %v", p.Released, err)
	}

	store.fail.Store(false)
	testkit.WaitFor(t, "ERROR and the pin released once the mark is saved", 10*time.Second, func() bool {
		st, _ = a.n.OutboundStatus("r1")
		_, pinned := src.Replica().Pins()[pinName("r1")]
		return st.State == StateError && !pinned
	})
	if p, _, err := store.LoadProgress(RoleSource, "r1"); err != nil || !p.Released {
		t.Fatalf("released, but the stored mark is %v %v", p.Released, err)
	}
	b.restart(inboundR1(a))
	w.run(ctx, 10)
	converged(t, src, b.fs("fs-dst"))
	testkit.WaitFor(t, "ENABLED again", 20*time.Second, func() bool {
		st, _ = a.n.OutboundStatus("r1")
		return st.State == StateEnabled
	})
	if p, _, err := store.LoadProgress(RoleSource, "r1"); err != nil || p.Released {
		t.Fatalf("resynced, but the stored mark is %v %v", p.Released, err)
	}
	if err := b.rep("fs-dst").Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
}

// TestRetentionLimitsHoldDuringSync: an initial sync held up (its
// destination gone mid-sync) pins the source's journal from its base only
// up to the retention limits: past MaxLagBytes the source releases it
// (ERROR, a message naming the limit, the bytes held and the sync, kept
// up to date), the journal is truncated past the sync's base, and once
// the destination is back it is resynchronised and verifies. Before, the
// limits were not checked while a sync was under way, and one that could
// not finish held the journal without bound.
func TestRetentionLimitsHoldDuringSync(t *testing.T) {
	ctx := context.Background()
	a, b, px := proxiedPair(t, func(o *Options) {
		o.ChunkBytes = 512
		o.MaxLagBytes = 32 << 10
		o.RetainAge = time.Millisecond
	})
	px.SetDelay(5 * time.Millisecond)
	px.SetBandwidth(800 << 10)
	px.SetPieceBytes(4 << 10)
	src := a.mkfs("fs-src")
	w := newWorkload(t, 29, func() *engine.FS { return src })
	w.run(ctx, 150)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	testkit.WaitFor(t, "the initial sync under way", 10*time.Second, func() bool {
		st, _ := a.n.OutboundStatus("r1")
		return st.Sync.Active && st.Sync.BytesDone > 0
	})
	b.stop()
	base, pinned := src.Replica().Pins()[pinName("r1")]
	if st, _ := a.n.OutboundStatus("r1"); !pinned || !st.Sync.Active {
		t.Fatalf("the destination went before the sync's pin (pinned %v) or after the sync (%+v)", pinned, st.Sync)
	}

	var st Status
	released := false
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && !released; {
		w.run(ctx, 10)
		st, _ = a.n.OutboundStatus("r1")
		_, pinned := src.Replica().Pins()[pinName("r1")]
		released = st.State == StateError && !pinned
	}
	if !released {
		t.Fatalf("the initial sync held the journal past MaxLagBytes: %s %q, pins %v, journal from %d to %d", st.State, st.Message,
			src.Replica().Pins(), base, src.Replica().DurableSeq())
	}
	t.Logf("source: %s %q", st.State, st.Message)
	for _, want := range []string{"The destination fell too far behind", "over the limit max_lag_bytes (32768 bytes)", "during its initial sync",
		"bytes behind now", "It is resynchronised (differences only)"} {
		if !strings.Contains(st.Message, want) {
			t.Errorf("status message %q lacks %q", st.Message, want)
		}
	}
	// The message follows the source's writes.
	w.run(ctx, 20)
	if st2, _ := a.n.OutboundStatus("r1"); st2.Message == st.Message || st2.State != StateError {
		t.Errorf("status after more writes: %s %q (was %q)", st2.State, st2.Message, st.Message)
	}
	testkit.WaitFor(t, "the journal truncated past the sync's base", 10*time.Second, func() bool {
		a.n.truncateJournals(ctx)
		start, _ := src.Replica().JournalStart()
		return start > base
	})

	b.restart(inboundR1(a))
	w.run(ctx, 10)
	converged(t, src, b.fs("fs-dst"))
	testkit.WaitFor(t, "ENABLED again", 20*time.Second, func() bool {
		st, _ = a.n.OutboundStatus("r1")
		return st.State == StateEnabled
	})
	t.Logf("source once the destination is back: %s %q, by %q", st.State, st.Message, st.Sync.Method)
	if err := b.rep("fs-dst").Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
}

// shipping waits until the source of replication id has seen its initial
// sync end and ships (ENABLED, no sync active): a destination stopped
// before the source took the sync's last acknowledgement leaves the
// sync active, and the retention limits then count the journal from the
// sync's base, not from the destination's applied point.
func shipping(t *testing.T, r *region, id string) {
	t.Helper()
	testkit.WaitFor(t, "ENABLED, the initial sync done", 10*time.Second, func() bool {
		st, _ := r.n.OutboundStatus(id)
		return st.State == StateEnabled && !st.Sync.Active
	})
}
