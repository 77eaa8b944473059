package engine

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestApplyAsyncReadableTime: ApplyAsync says when the records became
// readable — the committer's clock when the store's commit returned, inside
// the call, not when the caller was woken — and gives no time for an apply
// that committed nothing (every record applied already). The replica's
// apply-lag histogram counts to this time (lag22: it counted to the stream's
// wake-up, one goroutine hand-off later).
func TestApplyAsyncReadableTime(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	src := v.mkfs("src")
	for i := range 3 {
		must(src.Mkdir(ctx, RootCred, RootIno, fmt.Sprintf("d%d", i), SetAttr{}))(t)
	}
	recs, err := src.Replica().ReadJournal(ctx, 1, 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := v.e.CreateReplica(ctx, "dst", "")
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	applied, readable, wait, err := dst.Replica().ApplyAsync(ctx, recs)
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if want := recs[len(recs)-1].Seq; applied != want {
		t.Fatalf("applied %d, want %d", applied, want)
	}
	if readable.Before(before) || readable.After(after) {
		t.Fatalf("readable at %v, outside the call (%v … %v)", readable, before, after)
	}
	// Again: nothing left to apply, nothing committed, no time.
	applied, readable, wait, err = dst.Replica().ApplyAsync(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if applied != recs[len(recs)-1].Seq || !readable.IsZero() {
		t.Fatalf("a resend: applied %d, readable %v; want %d and no time", applied, readable, recs[len(recs)-1].Seq)
	}
}
