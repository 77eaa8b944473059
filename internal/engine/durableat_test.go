package engine

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestDurableAt: each record's durable time is the clock when its group
// became durable; a seq not durable yet, or one whose group's start is no
// longer known, has none.
func TestDurableAt(t *testing.T) {
	ctx := context.Background()
	var tick atomic.Int64
	base := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	v := newEnv(t, func(o *Options) {
		o.Clock = func() time.Time { return base.Add(time.Duration(tick.Add(1)) * time.Millisecond) }
	})
	fs := v.mkfs("fs")
	rep := fs.Replica()
	var seqs []uint64
	for i := range 3 {
		if _, err := fs.Mkdir(ctx, RootCred, RootIno, fmt.Sprintf("d%d", i), SetAttr{}); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, rep.DurableSeq())
	}
	// Each mkdir was its own group: its durable time follows its
	// record's commit time (the clock ticks at each read).
	recs, err := rep.ReadJournal(ctx, seqs[1], 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ats := make([]time.Time, len(recs)+1) // and one past the last
	rep.DurableTimes(recs[0].Seq, ats)
	for i, r := range recs {
		at := ats[i]
		if at.IsZero() {
			t.Fatalf("seq %d: no durable time", r.Seq)
		}
		if !at.After(r.Time) {
			t.Fatalf("seq %d: durable at %v, not after its commit time %v", r.Seq, at, r.Time)
		}
	}
	if at, next := durableAt(rep, seqs[1]), durableAt(rep, seqs[2]); !next.After(at) {
		t.Fatalf("seq %d durable at %v, the later seq %d at %v", seqs[1], at, seqs[2], next)
	}
	if at := ats[len(recs)]; !at.IsZero() {
		t.Fatalf("seq %d, not committed, durable at %v", seqs[2]+1, at)
	}
	// More groups than are kept: the oldest is forgotten.
	for i := range durTimesKept {
		if _, err := fs.Mkdir(ctx, RootCred, RootIno, fmt.Sprintf("e%d", i), SetAttr{}); err != nil {
			t.Fatal(err)
		}
	}
	if at := durableAt(rep, seqs[1]); !at.IsZero() {
		t.Fatalf("seq %d, %d groups ago, durable at %v", seqs[1], durTimesKept, at)
	}
	if at := durableAt(rep, rep.DurableSeq()); at.IsZero() {
		t.Fatal("the newest seq has no durable time")
	}
}

func durableAt(rep *Replica, seq uint64) time.Time {
	at := make([]time.Time, 1)
	rep.DurableTimes(seq, at)
	return at[0]
}
