package engine

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/race"
)

// TestApplyAsyncReadableTime: ApplyAsync says when the records became
// readable — the committer's clock when the store's commit returned, inside
// the call, not when the caller was woken — and gives no time for an apply
// that committed nothing (every record applied already). The replica's
// apply-lag histogram counts to this time (lag22: it counted to the stream's
// wake-up, one goroutine hand-off later).
func TestApplyAsyncReadableTime(t *testing.T) {
	ctx := context.Background()
	_, dst, recs := mkdirsToApply(t, 3)
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

// TestApplyCallerRunsBeforeFinisher counts, on one P, the applies whose
// caller ran again only after the finisher had answered the apply's group
// (its applied point published): the finisher must get the group before
// the caller is woken, so that the caller, woken last, takes the runtime's
// run-next slot and its records' readers do not wait for the finisher and
// the store's WAL writer (whose sync holds the thread). Before lag22 the
// caller was woken first and queued behind them: 100 of 100 applies.
func TestApplyCallerRunsBeforeFinisher(t *testing.T) {
	if race.Enabled {
		// The race detector puts a woken goroutine in the run-next slot
		// only every other time, at random, whatever the order.
		t.Log("the run-next order is not checked under the race detector (it randomises that slot)")
	}
	ctx := context.Background()
	_, dst, recs := mkdirsToApply(t, 100)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	late := 0
	for _, r := range recs {
		_, _, wait, err := dst.Replica().ApplyAsync(ctx, []*Record{r})
		if err != nil {
			t.Fatal(err)
		}
		if _, seq, _ := dst.Replica().Applied(); seq >= r.Seq {
			late++ // the finisher answered before the caller ran
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d of %d applies: the caller ran after the finisher", late, len(recs))
	if !race.Enabled && late > len(recs)/10 {
		t.Fatalf("%d of %d applies: the caller ran after the finisher answered its group, want (almost) none", late, len(recs))
	}
}

// TestApplyRunsOnCallerWhenIdle counts the goroutine hand-offs of a
// replica's applies: with the committer idle, an apply runs on its
// caller's goroutine (no hand-off to the committer, none back when its
// records are readable), and an apply that arrives while the committer
// runs something else is queued to it as before. Before lag23 every
// apply was handed to the committer: 100 of 100.
func TestApplyRunsOnCallerWhenIdle(t *testing.T) {
	ctx := context.Background()
	src, dst, recs := mkdirsToApply(t, 100)
	queued, inline := dst.stats.queued.Load(), dst.stats.inline.Load()
	for _, r := range recs {
		applied, readable, wait, err := dst.Replica().ApplyAsync(ctx, []*Record{r})
		if err != nil {
			t.Fatal(err)
		}
		if applied != r.Seq || readable.IsZero() {
			t.Fatalf("apply of %d: applied %d, readable %v", r.Seq, applied, readable)
		}
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		if _, seq, _ := dst.Replica().Applied(); seq != r.Seq {
			t.Fatalf("durable applied point %d after the apply of %d", seq, r.Seq)
		}
	}
	handed := dst.stats.queued.Load() - queued - (dst.stats.inline.Load() - inline)
	t.Logf("%d applies: %d run on the caller, %d handed to the committer", len(recs), dst.stats.inline.Load()-inline, handed)
	// A few may find the committer not yet back to its wait (it answers
	// an operation before it releases runMu: the first apply, right after
	// CreateReplica's), or something else queued: with GOMAXPROCS 4 or 8,
	// 1 or 2 of 101 in about 1 of 300 runs. Before lag23: all of them.
	if race.Enabled {
		t.Log("not counted under the race detector (7f6ad4d: scheduling counts are checked without it)")
	} else if handed > uint64(len(recs)/10) {
		t.Fatalf("%d of %d applies to an idle committer were handed to it, want (almost) none", handed, len(recs))
	}

	// With the committer busy (a group of its own under way), the apply
	// is queued behind it and runs after it.
	release := make(chan struct{})
	started := make(chan struct{})
	busy := make(chan error, 1)
	go func() {
		busy <- dst.do(ctx, opAdmin, "busy", func(tx *txn) error {
			tx.noJournal = true
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	must(src.Mkdir(ctx, RootCred, RootIno, "later", SetAttr{}))(t)
	more, err := src.Replica().ReadJournal(ctx, recs[len(recs)-1].Seq+1, 10, 1<<20)
	if err != nil || len(more) != 1 {
		t.Fatalf("read the later record: %d records, %v", len(more), err)
	}
	inline = dst.stats.inline.Load()
	applied := make(chan error, 1)
	go func() {
		_, _, wait, err := dst.Replica().ApplyAsync(ctx, more)
		if err == nil {
			err = wait()
		}
		applied <- err
	}()
	pollUntil(t, "the apply queued", func() bool { return len(dst.queue) == 1 })
	close(release)
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	if got := dst.stats.inline.Load() - inline; got != 0 {
		t.Fatalf("an apply while the committer was busy ran on its caller (%d)", got)
	}
	if _, seq, _ := dst.Replica().Applied(); seq != more[0].Seq {
		t.Fatalf("applied %d, want %d", seq, more[0].Seq)
	}
}

// mkdirsToApply makes n directories in a new file system src (in a new
// engine) and returns it, a new empty replica dst beside it, and the
// journal records of those changes to apply to dst.
func mkdirsToApply(t *testing.T, n int) (src, dst *FS, recs []*Record) {
	t.Helper()
	ctx := context.Background()
	v := newEnv(t)
	src = v.mkfs("src")
	for i := range n {
		must(src.Mkdir(ctx, RootCred, RootIno, fmt.Sprintf("d%03d", i), SetAttr{}))(t)
	}
	recs, err := src.Replica().ReadJournal(ctx, 1, n+10, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	if dst, err = v.e.CreateReplica(ctx, "dst", ""); err != nil {
		t.Fatal(err)
	}
	return src, dst, recs
}
