package replconf_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication"
	"github.com/regionfs/regionfs/internal/testkit"
)

// refuseStreams makes r, from its next start, answer every replication
// stream 503 (its calls are answered): a source's stream cannot learn
// what happened to its configuration here, its calls can.
func (r *region) refuseStreams() {
	r.wrap = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if strings.HasSuffix(req.URL.Path, "/stream") {
				http.Error(w, "streams held by the test", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, req)
		})
	}
}

// failoverWithoutSource replicates a new file system of a to b, cuts the
// link, makes lost changes on the source (directories lost0, lost1, …)
// and, with a stopped, deletes the configuration in b's region: b's
// replica is promoted without the source. a is left stopped.
func failoverWithoutSource(t *testing.T, a, b *region, lost int) (srcID string, d replconf.Description, p *replication.Promotion) {
	t.Helper()
	return failoverWithoutSourceMode(t, a, b, lost, replconf.DeleteAll)
}

// failoverWithoutSourceMode is failoverWithoutSource with the deletion
// mode of the delete in b's region.
func failoverWithoutSourceMode(t *testing.T, a, b *region, lost int, mode string) (srcID string, d replconf.Description, p *replication.Promotion) {
	t.Helper()
	ctx := context.Background()
	srcID = a.createFS("src")
	d = replicate(t, a, b, srcID)
	a.n.RemoveOutbound(d.ID) // the link goes
	for i := range lost {
		if _, err := a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, fmt.Sprint("lost", i), engine.SetAttr{}); err != nil {
			t.Fatal(err)
		}
	}
	a.stop()
	p, err := b.m.Delete(ctx, d.DestFileSystemID, mode)
	if err != nil {
		t.Fatal(err)
	}
	return srcID, d, p
}

// fencedAfterDelete checks that the source srcID of a, after its delete of
// a configuration whose destination was promoted without it (p), is
// fenced (no write), shows protection DISABLED and reports the lost
// changes failoverWithoutSource made.
func fencedAfterDelete(t *testing.T, a *region, srcID string, p *replication.Promotion, lost int) {
	t.Helper()
	ctx := context.Background()
	if mode, _ := a.fs(srcID).Mode(); mode != engine.ModeFenced {
		t.Fatalf("the old source is %v after its delete, the destination primary at epoch %d: two writable regions", mode, p.NewEpoch)
	}
	if _, err := a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "x", engine.SetAttr{}); !errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("the fenced source accepted a write: %v", err)
	}
	if pr := a.protection(srcID); pr != control.ProtectionDisabled {
		t.Fatalf("the fenced source's protection is %s", pr)
	}
	tomb, losses, complete, err := a.m.LossReport(ctx, srcID, 100)
	if err != nil {
		t.Fatal(err)
	}
	if tomb.RecoverySeq != p.Seq || !complete || len(losses) != lost || losses[lost-1].Paths[0] != fmt.Sprint("/lost", lost-1) {
		t.Fatalf("loss report: %+v complete=%v %+v", tomb, complete, losses)
	}
}

// TestSourceDeleteAfterUncoordinatedFailover: the destination was promoted
// without the source (a failover in its region while the source region
// was down), and the source's DeleteReplicationConfiguration with
// ALL_CONFIGURATIONS reaches the destination before the source's stream
// learns of the promotion: the source is fenced at the promoted epoch,
// protection DISABLED, with the destination's recovery point in its loss
// report, as when its stream learns it. Before, the destination answered
// the delete with its promotion, the source forgot the configuration and
// stayed writable beside the promoted destination (two writable regions),
// with no record of what it lost.
func TestSourceDeleteAfterUncoordinatedFailover(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID, d, p := failoverWithoutSource(t, a, b, 3)
	b.stop()
	b.refuseStreams()
	b.restart()
	a.restart()
	got, err := a.m.Delete(ctx, srcID, replconf.DeleteAll)
	if err != nil {
		t.Fatalf("the source's delete: %v", err)
	}
	if got.Seq != p.Seq || got.NewEpoch != p.NewEpoch {
		t.Fatalf("the source's delete answered %+v, the failover %+v", *got, *p)
	}
	fencedAfterDelete(t, a, srcID, p, 3)
	if _, err := a.m.Describe(ctx, srcID); !errors.Is(err, control.ErrReplicationNotFound) {
		t.Fatalf("the source still describes the configuration: %v", err)
	}
	if _, err := b.fs(d.DestFileSystemID).Mkdir(ctx, engine.RootCred, engine.RootIno, "after", engine.SetAttr{}); err != nil {
		t.Fatalf("the promoted destination refused a write: %v", err)
	}
}

// TestTombstoneAnswersOnlyItsSource: a destination answers a delete of a
// configuration it deleted already (from its tombstone: the promotion, and
// whether the source took part) to the configuration's source region
// only; another region gets ReplicationNotFound, as for a configuration
// that never was. Before, any peer region asking for the id learned the
// promotion's recovery point and epoch.
func TestTombstoneAnswersOnlyItsSource(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	d := replicate(t, a, b, srcID)
	p, err := b.m.Delete(ctx, d.DestFileSystemID, replconf.DeleteAll)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct{ Seq, NewEpoch uint64 }
	// b is a peer of itself, but not the configuration's source region.
	err = b.n.Call(ctx, b.name, "delete", map[string]string{"id": d.ID}, &resp)
	if ce := (*replication.CallError)(nil); !errors.As(err, &ce) || ce.Code != "ReplicationNotFound" {
		t.Fatalf("a delete from another region answered %+v, %v; want ReplicationNotFound", resp, err)
	}
	if err := a.n.Call(ctx, b.name, "delete", map[string]string{"id": d.ID}, &resp); err != nil || resp.Seq != p.Seq || resp.NewEpoch != p.NewEpoch {
		t.Fatalf("the source region's repeated delete: %+v, %v; want the promotion %+v", resp, err, *p)
	}
	// A repeated DeleteReplicationConfiguration in the destination region
	// by the source's id (no file system of that region) is
	// ReplicationNotFound, as by the destination's (it was
	// FileSystemNotFound).
	for _, id := range []string{d.DestFileSystemID, srcID} {
		if _, err := b.m.Delete(ctx, id, replconf.DeleteAll); !errors.Is(err, control.ErrReplicationNotFound) {
			t.Fatalf("repeated delete by %s: %v, want ReplicationNotFound", id, err)
		}
	}
}

// TestPromotionLeavesRegionResponsive: a failover whose promotion waits
// (here for the source's hard-fencing lease, an hour) holds no lock the
// region's other calls need: DescribeReplicationConfigurations answers
// meanwhile, showing the configuration DELETING; a second delete waits
// for the first; a failover given up (its caller's context ended) changes
// nothing and the replication carries on. Before, the manager's lock was
// held across the promotion: every API call of the region waited for it.
func TestPromotionLeavesRegionResponsive(t *testing.T) {
	ctx := context.Background()
	a, b := hardFencedPair(t)
	srcID := a.createFS("src")
	d := replicate(t, a, b, srcID)
	dst := d.DestFileSystemID

	entered := make(chan struct{})
	var once sync.Once
	b.m.SetHook(func(step, _ string) {
		if step == "promote" {
			once.Do(func() { close(entered) })
		}
	})
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := make(chan error, 1)
	go func() {
		_, err := b.m.Delete(dctx, dst, replconf.DeleteAll)
		first <- err
	}()
	select {
	case <-entered:
	case err := <-first:
		t.Fatalf("the failover ended before its promotion: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the failover never reached its promotion")
	}
	type described struct {
		d   []replconf.Description
		err error
	}
	desc := make(chan described, 1)
	go func() {
		ds, err := b.m.Describe(ctx, dst)
		desc <- described{ds, err}
	}()
	select {
	case got := <-desc:
		if got.err != nil || len(got.d) != 1 || got.d[0].Status != replication.StateDeleting {
			t.Fatalf("described during the failover: %+v, %v; want it DELETING", got.d, got.err)
		}
	case <-time.After(30 * time.Second):
		// A deadlock detector, not a timing goal: Describe needs no more
		// than the manager's lock.
		t.Fatal("DescribeReplicationConfigurations waited behind a failover's promotion")
	}
	second := make(chan error, 1)
	go func() {
		_, err := b.m.Delete(dctx, dst, replconf.DeleteAll)
		second <- err
	}()
	cancel() // the failover is given up before the lease runs out
	for _, c := range []chan error{first, second} {
		if err := testkit.Recv(t, "a delete given up", time.Minute, c); !errors.Is(err, context.Canceled) {
			t.Fatalf("a delete given up: %v", err)
		}
	}
	if mode, _ := b.fs(dst).Mode(); mode != engine.ModeReplica {
		t.Fatalf("the replica is %v after a failover given up", mode)
	}
	if got := status(t, b.m, dst); got.ID != d.ID || got.Status == replication.StateDeleting {
		t.Fatalf("the configuration after a failover given up: %+v", got)
	}
	fill(t, a.fs(srcID), "after", 3)
	converged(t, a.fs(srcID), b.fs(dst))
}

// TestResumeCompletesOnlyItsFailover: Resume completes a failover whose
// replica it finds promoted without a record (completePromotion) only if
// the configuration is still the one it found: here a delete completed
// that failover meanwhile and a new configuration adopted the same file
// system. Before, Resume completed it unclaimed: its stale completion set
// the new destination's protection ENABLED, cleared its role and wrote its
// tombstone over the delete's.
func TestResumeCompletesOnlyItsFailover(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	fill(t, a.fs(srcID), "src", 5)
	d := replicate(t, a, b, srcID)
	dst := d.DestFileSystemID
	// The replica is not received on this node and was promoted (a
	// failover that ended before its record, on the node that served it).
	b.n.RemoveInbound(d.ID)
	if _, err := b.fs(dst).Replica().Promote(ctx); err != nil {
		t.Fatal(err)
	}
	var again replconf.Description
	b.m.SetHook(func(step, _ string) {
		if step != "resume-promoted" {
			return
		}
		// Between Resume's look and its completion: the failover is
		// completed by a delete, and the file system adopted again.
		if _, err := b.m.Delete(ctx, dst, replconf.DeleteAll); err != nil {
			t.Errorf("delete: %v", err)
			return
		}
		dis := control.ProtectionDisabled
		if _, err := b.r.UpdateFileSystemProtection(ctx, dst, &dis); err != nil {
			t.Errorf("protection: %v", err)
			return
		}
		var err error
		if again, err = a.m.Create(ctx, srcID, []replconf.Destination{{Region: b.name, FileSystemID: dst}}); err != nil {
			t.Errorf("create again: %v", err)
		}
	})
	if _, err := b.m.Resume(); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if t.Failed() {
		return
	}
	if pr := b.protection(dst); pr != control.ProtectionReplicating {
		t.Fatalf("the new destination's protection is %s", pr)
	}
	if got := status(t, b.m, dst); got.ID != again.ID {
		t.Fatalf("the destination's configuration: %s, want %s", got.ID, again.ID)
	}
	if tomb, ok := b.m.Tombstone(replication.RoleDestination, d.ID); !ok || tomb.Unanswered || !tomb.Coordinated {
		t.Fatalf("the first configuration's tombstone: %+v %v; want the delete's (answered, coordinated)", tomb, ok)
	}
	fill(t, a.fs(srcID), "more", 3)
	converged(t, a.fs(srcID), b.fs(dst))
}

// TestFailedAdoptionFinishedByRetry: a creation whose adoption of an
// existing destination failed after the file system became a replica
// keeps its configuration (Adopting); the source's retry of the creation
// finishes it (protection REPLICATING) and starts receiving before it is
// answered, and the replication carries on. Before, the retry was
// answered with the kept configuration as it was: the source shipped to a
// destination that never received (its streams refused as "not received
// here yet") and whose protection stayed DISABLED, until a restart.
func TestFailedAdoptionFinishedByRetry(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	fill(t, a.fs(srcID), "src", 5)
	existing := b.adoptable("existing")
	var failed sync.Once
	b.m.SetFault(func(step, _ string) (err error) {
		if step == "adopt" {
			failed.Do(func() { err = errors.New("injected: the adoption failed after it reset the file system") })
		}
		return err
	})
	dests := []replconf.Destination{{Region: b.name, FileSystemID: existing}}
	if _, err := a.m.Create(ctx, srcID, dests); err == nil {
		t.Fatal("a failed adoption answered success")
	}
	if mode, _ := b.fs(existing).Mode(); mode != engine.ModeReplica {
		t.Fatalf("%s is %v after its failed adoption, want a replica (the fault comes after the reset)", existing, mode)
	}
	d, err := a.m.Create(ctx, srcID, dests)
	if err != nil {
		t.Fatalf("the source's retry: %v", err)
	}
	if pr := b.protection(existing); pr != control.ProtectionReplicating {
		t.Fatalf("the destination's protection after the retry: %s", pr)
	}
	if _, ok := b.n.InboundStatus(d.ID); !ok {
		t.Fatal("the destination does not receive the replication the retry answered for")
	}
	if got := status(t, b.m, existing); got.ID != d.ID || got.Adopting {
		t.Fatalf("the destination's configuration: %+v", got.Config)
	}
	fill(t, a.fs(srcID), "more", 3)
	converged(t, a.fs(srcID), b.fs(existing))
}

// sourceGoneSeen passes the hooks on and closes seen once the node has
// told the manager that a destination refused a stream.
type sourceGoneSeen struct {
	replication.Hooks
	once *sync.Once
	seen chan struct{}
}

func (h sourceGoneSeen) SourceGone(ctx context.Context, id string, g replication.Gone) {
	h.Hooks.SourceGone(ctx, id, g)
	h.once.Do(func() { close(h.seen) })
}

func (h sourceGoneSeen) Known(id string) bool {
	k, ok := h.Hooks.(replication.KnownHooks)
	return ok && k.Known(id)
}

// streamLearnsDuringDelete stops b (the promoted destination) and restarts
// both regions so that the source's stream learns of the promotion while
// the source's delete call is at b: b holds the stream until the call
// arrives, and the call until a has handled the stream's answer. With
// loseAnswer, b handles the call but its answer never arrives. After the
// delete, learned fails the test unless the stream learned of the
// promotion by then.
func streamLearnsDuringDelete(a, b *region, loseAnswer bool) (learned func(t *testing.T)) {
	b.stop()
	called, seen := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b.wrap = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			switch {
			case strings.HasSuffix(req.URL.Path, "/stream"):
				select {
				case <-called:
				case <-time.After(10 * time.Second):
				}
			case strings.HasSuffix(req.URL.Path, "/call/delete"):
				once.Do(func() { close(called) })
				select {
				case <-seen:
				case <-time.After(10 * time.Second):
				}
				if loseAnswer {
					h.ServeHTTP(httptest.NewRecorder(), req) // handled; its answer lost
					http.Error(w, "the answer was lost", http.StatusBadGateway)
					return
				}
			}
			h.ServeHTTP(w, req)
		})
	}
	b.restart()
	a.restart()
	a.n.SetHooks(sourceGoneSeen{Hooks: a.m.Hooks(), once: new(sync.Once), seen: seen})
	return func(t *testing.T) {
		t.Helper()
		select {
		case <-seen:
		default:
			t.Fatal("the source's stream did not learn of the promotion during the delete")
		}
	}
}

// TestSourceDeleteRacesItsStreamAfterUncoordinatedFailover: as
// TestSourceDeleteAfterUncoordinatedFailover, but the source's stream
// learns of the promotion (Gone, not coordinated) while the source's
// delete is in flight. The stream's answer cannot say whether the
// promotion is the delete's own; the delete's answer, which says it was
// made without the source, must fence the source. Before, the stream's
// answer was taken for the delete's promotion (the configuration ended
// unfenced) and the delete, finding the configuration ended meanwhile,
// returned: the source stayed writable beside the promoted destination.
func TestSourceDeleteRacesItsStreamAfterUncoordinatedFailover(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID, _, p := failoverWithoutSource(t, a, b, 1)
	learned := streamLearnsDuringDelete(a, b, false)
	got, err := a.m.Delete(ctx, srcID, replconf.DeleteAll)
	if err != nil {
		t.Fatalf("the source's delete: %v", err)
	}
	learned(t)
	if got.Seq != p.Seq || got.NewEpoch != p.NewEpoch {
		t.Fatalf("the source's delete answered %+v, the failover %+v", *got, *p)
	}
	fencedAfterDelete(t, a, srcID, p, 1)
}

// TestSourceDeleteWaitsForFailover: a source's DeleteReplicationConfiguration
// that reaches the destination while a failover of the configuration is
// under way there (DeleteReplicationConfiguration in the destination
// region) waits for it and is answered with that failover's promotion,
// from the tombstone it wrote, as a delete repeated after it would be.
// Without ce159ec it was answered ReplicationNotFound once the failover
// had removed the configuration: the source took the destination for one
// that had forgotten it and returned an empty promotion.
func TestSourceDeleteWaitsForFailover(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	d := replicate(t, a, b, srcID)
	entered, waiting := make(chan struct{}), make(chan struct{})
	var onceEntered, onceWaiting sync.Once
	b.m.SetHook(func(step, _ string) {
		switch step {
		case "promote": // held until the source's delete waits for it
			onceEntered.Do(func() { close(entered) })
			select {
			case <-waiting:
			case <-time.After(30 * time.Second):
			}
		case "claim-wait":
			onceWaiting.Do(func() { close(waiting) })
		}
	})
	type result struct {
		p   *replication.Promotion
		err error
	}
	failover := make(chan result, 1)
	go func() {
		p, err := b.m.Delete(ctx, d.DestFileSystemID, replconf.DeleteAll)
		failover <- result{p, err}
	}()
	select {
	case <-entered:
	case f := <-failover:
		t.Fatalf("the failover ended before its promotion: %+v", f)
	case <-time.After(time.Minute):
		t.Fatal("the failover never reached its promotion")
	}
	got, err := a.m.Delete(ctx, srcID, replconf.DeleteAll)
	f := testkit.Recv(t, "the failover", time.Minute, failover)
	if f.err != nil {
		t.Fatalf("the failover: %v", f.err)
	}
	select {
	case <-waiting:
	default:
		t.Fatal("the source's delete did not wait for the failover")
	}
	if err != nil {
		t.Fatalf("the source's delete: %v", err)
	}
	if got == nil || got.Seq != f.p.Seq || got.NewEpoch != f.p.NewEpoch {
		t.Fatalf("the source's delete answered %+v, the failover %+v", got, *f.p)
	}
	if mode, _ := a.fs(srcID).Mode(); mode != engine.ModePrimary {
		t.Fatalf("the source is %v after a failover it took part in", mode)
	}
}

// TestSourceDeleteFailsAfterItsStreamLearnsOfFailover: as
// TestSourceDeleteRacesItsStreamAfterUncoordinatedFailover, but the
// answer to the source's delete is lost (the destination handles the
// call; its reply never arrives). The source learned from its stream
// that the destination was promoted, and nothing says that the promotion
// was this delete's own: it fences itself at that promotion (read-only,
// protection DISABLED, its loss report exact) and the delete fails.
// Before, a failed delete took the stream's promotion for its own
// (coordinated): the source stayed writable beside the promoted
// destination, with no record of what it lost.
func TestSourceDeleteFailsAfterItsStreamLearnsOfFailover(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID, _, p := failoverWithoutSource(t, a, b, 2)
	learned := streamLearnsDuringDelete(a, b, true)
	if _, err := a.m.Delete(ctx, srcID, replconf.DeleteAll); err == nil {
		t.Fatal("the source's delete succeeded without an answer")
	}
	learned(t)
	fencedAfterDelete(t, a, srcID, p, 2)
	if _, err := a.m.Describe(ctx, srcID); !errors.Is(err, control.ErrReplicationNotFound) {
		t.Fatalf("the fenced source still describes the configuration: %v", err)
	}
}

// TestDeletedAnswersOnlyItsDestination: the "deleted" call (a destination
// telling its source that the configuration ended there) is taken only
// from the configuration's destination region; another peer region
// saying so is refused (ReplicationNotFound) and changes nothing: the
// source stays writable and keeps replicating. Before, any peer region
// that named the configuration's id ended it at the source and, with a
// promotion that was not coordinated, fenced the source.
func TestDeletedAnswersOnlyItsDestination(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	d := replicate(t, a, b, srcID)
	// a is a peer of itself, but not the configuration's destination
	// region.
	req := map[string]any{"id": d.ID, "gone": replication.Gone{Promoted: true, Epoch: 99, Reason: "not from the destination"}}
	err := a.n.Call(ctx, a.name, "deleted", req, nil)
	if ce := (*replication.CallError)(nil); !errors.As(err, &ce) || ce.Code != "ReplicationNotFound" {
		t.Fatalf("a deleted call from another region answered %v; want ReplicationNotFound", err)
	}
	if mode, _ := a.fs(srcID).Mode(); mode != engine.ModePrimary {
		t.Fatalf("the source is %v after another region's deleted call", mode)
	}
	if got := status(t, a.m, srcID); got.ID != d.ID {
		t.Fatalf("the source's configuration after another region's deleted call: %+v", got)
	}
	fill(t, a.fs(srcID), "after", 2)
	converged(t, a.fs(srcID), b.fs(d.DestFileSystemID))
}

// TestPlannedFailoverAnswerLost: a planned failover whose request to the
// destination to promote itself is handled there but whose answer is lost
// (and whose stream cannot learn of the promotion meanwhile) leaves the
// source fenced: the destination may be promoted, so the source must not
// take writes. It completes once the destination answers (the source
// asks again): fenced, protection DISABLED, the configuration gone, no
// loss report. Before, the failed call undid the failover: the source was
// writable again beside the promoted destination, and the writes it
// acknowledged until its stream learned of the promotion were lost.
func TestPlannedFailoverAnswerLost(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	fill(t, a.fs(srcID), "before", 5)
	d := replicate(t, a, b, srcID)
	b.stop()
	var (
		mu             sync.Mutex
		deletes        int
		streamsRefused bool
	)
	b.wrap = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			mu.Lock()
			refuse := streamsRefused
			mu.Unlock()
			switch {
			case strings.HasSuffix(req.URL.Path, "/stream") && refuse:
				http.Error(w, "streams held by the test", http.StatusServiceUnavailable)
				return
			case strings.HasSuffix(req.URL.Path, "/call/delete"):
				mu.Lock()
				deletes++
				first := deletes == 1
				streamsRefused = true
				mu.Unlock()
				if first {
					h.ServeHTTP(httptest.NewRecorder(), req) // handled; its answer lost
					http.Error(w, "the answer was lost", http.StatusBadGateway)
					return
				}
			}
			h.ServeHTTP(w, req)
		})
	}
	b.restart()
	if _, err := a.m.PlannedFailover(ctx, srcID); err == nil {
		t.Fatal("the planned failover succeeded without an answer")
	}
	if mode, _ := b.fs(d.DestFileSystemID).Mode(); mode != engine.ModePrimary {
		t.Fatalf("the destination is %v after the delete it handled", mode)
	}
	if mode, _ := a.fs(srcID).Mode(); mode == engine.ModePrimary {
		t.Fatal("the source is writable after a planned failover whose answer was lost, beside its promoted destination: two writable regions")
	}
	if _, err := a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "x", engine.SetAttr{}); !errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("the source accepted a write beside its promoted destination: %v", err)
	}
	testkit.WaitFor(t, "the planned failover to complete", 30*time.Second, func() bool {
		_, err := a.m.Describe(ctx, srcID)
		mode, _ := a.fs(srcID).Mode()
		return errors.Is(err, control.ErrReplicationNotFound) && mode == engine.ModeFenced && a.protection(srcID) == control.ProtectionDisabled
	})
	if _, _, _, err := a.m.LossReport(ctx, srcID, 100); !errors.Is(err, control.ErrReplicationNotFound) {
		t.Fatalf("loss report after a planned failover: %v", err)
	}
	for i := range 5 {
		if _, err := b.fs(d.DestFileSystemID).Lookup(ctx, engine.RootCred, engine.RootIno, fmt.Sprint("before", i)); err != nil {
			t.Fatalf("before%d missing on the promoted destination: %v", i, err)
		}
	}
}

// TestPlannedFailoverUndoKeepsNewerFence: a planned failover that fails
// before its point of no return makes the source writable again only
// from its own fence: one the source took meanwhile because its
// destination was promoted without it (a newer epoch) stays. Before, the
// undo lifted any fence, and the source took writes beside the promoted
// destination.
func TestPlannedFailoverUndoKeepsNewerFence(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	d := replicate(t, a, b, srcID)
	_, epoch := a.fs(srcID).Mode()
	a.m.SetHook(func(step, _ string) {
		if step != "planned-fenced" {
			return
		}
		// The destination region tells the source that it was promoted
		// without it, while the planned failover runs.
		g := replication.Gone{Promoted: true, Epoch: epoch + 1, RecoverySeq: a.fs(srcID).Replica().DurableSeq(), Reason: "promoted without the source"}
		if err := b.n.Call(ctx, a.name, "deleted", map[string]any{"id": d.ID, "gone": g}, nil); err != nil {
			t.Errorf("deleted call: %v", err)
		}
	})
	if _, err := a.m.PlannedFailover(ctx, srcID); err == nil {
		t.Fatal("the planned failover succeeded after its configuration ended")
	}
	if mode, _ := a.fs(srcID).Mode(); mode != engine.ModeFenced {
		t.Fatalf("the source is %v after it learned of a newer epoch and its planned failover was undone", mode)
	}
	if _, err := a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "x", engine.SetAttr{}); !errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("the source accepted a write after it learned of a newer epoch: %v", err)
	}
}

// TestLocalDeleteAtDestinationFencesSource: DeleteReplicationConfiguration
// with LOCAL_CONFIGURATION_ONLY in the destination region (what an
// operator uses when the source region cannot be reached) promotes the
// destination without the source taking part: a source that learns of it
// fences itself (read-only, protection DISABLED) and its loss report
// lists what it committed after the recovery point, as after a delete
// with ALL_CONFIGURATIONS that could not reach it. Before, the promotion
// was recorded as coordinated: the source stayed writable beside the
// promoted destination, and what it took after the recovery point was in
// no loss report.
func TestLocalDeleteAtDestinationFencesSource(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID, _, p := failoverWithoutSourceMode(t, a, b, 1, replconf.DeleteLocalOnly)
	a.restart() // the source's stream learns of the promotion
	testkit.WaitFor(t, "the source to learn of the promotion", 20*time.Second, func() bool {
		_, err := a.m.Describe(ctx, srcID)
		return errors.Is(err, control.ErrReplicationNotFound)
	})
	fencedAfterDelete(t, a, srcID, p, 1)
}

// TestRepeatedFailoverAfterLostAnswer: a failover (DeleteReplicationConfiguration
// in the destination region) completed and answered, but its answer lost
// (the process killed before the reply, here restarted; or the caller
// timed out), is repeated by a caller that must tell whether it happened
// and what it lost. The AWS delete keeps AWS's answer for a file system
// without a configuration (ReplicationNotFound), by either end's id, its
// message naming the failover and its recovery point; regionfs's failover
// call answers with the same recovery point, as for a failover completed
// at a start. Before, both said ReplicationNotFound and nothing more.
// Once the promoted file system is in another configuration, the old
// failover is no longer its answer.
func TestRepeatedFailoverAfterLostAnswer(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID, d, p := failoverWithoutSource(t, a, b, 2)
	dst := d.DestFileSystemID
	b.stop()
	b.restart()
	for _, id := range []string{dst, srcID} {
		_, err := b.m.Delete(ctx, id, replconf.DeleteAll)
		var ce *control.Error
		if !errors.Is(err, control.ErrReplicationNotFound) || !errors.As(err, &ce) {
			t.Fatalf("repeated delete by %s: %v, want ReplicationNotFound", id, err)
		}
		for _, want := range []string{"failover", d.ID, fmt.Sprintf("recovery point seq %d ", p.Seq), fmt.Sprintf("epoch %d", p.NewEpoch)} {
			if !strings.Contains(ce.Message, want) {
				t.Fatalf("repeated delete by %s: %q does not say %q", id, ce.Message, want)
			}
		}
	}
	got, err := b.m.Failover(ctx, dst, false)
	if err != nil || got == nil || got.Seq != p.Seq || got.NewEpoch != p.NewEpoch || got.SourceDurable != p.SourceDurable {
		t.Fatalf("repeated failover: %+v, %v; want the recovery point %+v", got, err, *p)
	}
	// The promoted file system becomes a source: a failover of it is
	// not the old one's repeat.
	a.restart()
	if _, err := b.m.Create(ctx, dst, []replconf.Destination{{Region: a.name}}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.m.Failover(ctx, dst, false); !errors.Is(err, control.ErrReplicationNotFound) {
		t.Fatalf("a failover of a source answered %+v, %v; want ReplicationNotFound", got, err)
	}
}

// TestRetriedCreateMakesWhatItAsks: a creation whose answer was lost (the
// destination region made the configuration; the source never heard) is
// retried: the same request is answered with that configuration; one
// asking for another destination (an existing file system instead of a
// new replica, another availability zone, another key) is refused with
// ReplicationAlreadyExists naming what exists, never answered with it.
// Before, the destination answered any retry from the same source file
// system with the configuration it had: the source replicated into a
// destination it had not asked for.
func TestRetriedCreateMakesWhatItAsks(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	fill(t, a.fs(srcID), "src", 3)
	existing := b.adoptable("existing")
	b.stop()
	var lost sync.Once
	b.wrap = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if strings.HasSuffix(req.URL.Path, "/call/create-destination") {
				drop := false
				lost.Do(func() { drop = true })
				if drop {
					h.ServeHTTP(httptest.NewRecorder(), req) // made; its answer lost
					http.Error(w, "the answer was lost", http.StatusBadGateway)
					return
				}
			}
			h.ServeHTTP(w, req)
		})
	}
	b.restart()
	asked := replconf.Destination{Region: b.name, AvailabilityZoneName: b.name + "a"}
	if _, err := a.m.Create(ctx, srcID, []replconf.Destination{asked}); err == nil {
		t.Fatal("a creation without an answer succeeded")
	}
	made := status(t, b.m, srcID)
	for _, other := range []replconf.Destination{
		{Region: b.name, FileSystemID: existing},
		{Region: b.name, AvailabilityZoneName: b.name + "b"},
		{Region: b.name},
		{Region: b.name, AvailabilityZoneName: b.name + "a", KMSKeyID: "alias/other"},
	} {
		d, err := a.m.Create(ctx, srcID, []replconf.Destination{other})
		if !errors.Is(err, control.ErrReplicationAlreadyExists) {
			t.Fatalf("a retry asking for %+v answered %+v, %v; want ReplicationAlreadyExists (%s exists)", other, d.Config, err, made.DestFileSystemID)
		}
		if !strings.Contains(err.Error(), made.DestFileSystemID) {
			t.Fatalf("the refusal does not name what exists (%s): %v", made.DestFileSystemID, err)
		}
	}
	if pr := b.protection(existing); pr != control.ProtectionDisabled {
		t.Fatalf("the file system a refused retry named is %s", pr)
	}
	d, err := a.m.Create(ctx, srcID, []replconf.Destination{asked})
	if err != nil {
		t.Fatalf("the same retry: %v", err)
	}
	if d.ID != made.ID || d.DestFileSystemID != made.DestFileSystemID {
		t.Fatalf("the same retry answered %s (%s), want %s (%s)", d.ID, d.DestFileSystemID, made.ID, made.DestFileSystemID)
	}
	if az := b.describe(d.DestFileSystemID).AvailabilityZoneName; az != asked.AvailabilityZoneName {
		t.Fatalf("the replica is in %q, asked %q", az, asked.AvailabilityZoneName)
	}
	// The source has the configuration now: it answers retries itself,
	// as exactly (a regional destination is not the one-zone one; it
	// was answered with it).
	if got, err := a.m.Create(ctx, srcID, []replconf.Destination{{Region: b.name}}); !errors.Is(err, control.ErrReplicationAlreadyExists) {
		t.Fatalf("the source answered a retry asking for a regional destination with %+v, %v", got.Config, err)
	}
	fill(t, a.fs(srcID), "more", 2)
	converged(t, a.fs(srcID), b.fs(d.DestFileSystemID))
}

// TestRetriedCreateSameKeyOtherName: a retried creation that names the
// destination's KMS key otherwise (its id for the alias it was created
// with, or nothing: the region's default key, the same one) is answered
// with the existing configuration, at the source and in the destination
// region; a key that is not the same is still refused. Before, the keys
// were compared as strings: the retry got ReplicationAlreadyExists.
func TestRetriedCreateSameKeyOtherName(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	d, err := a.m.Create(ctx, srcID, []replconf.Destination{{Region: b.name, KMSKeyID: control.DefaultKMSKey}})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"key-" + b.name, ""} {
		got, err := a.m.Create(ctx, srcID, []replconf.Destination{{Region: b.name, KMSKeyID: key}})
		if err != nil || got.ID != d.ID || got.DestFileSystemID != d.DestFileSystemID {
			t.Fatalf("retry with the key named %q: %v, %s/%s, want %s/%s", key, err, got.ID, got.DestFileSystemID, d.ID, d.DestFileSystemID)
		}
	}
	if _, err := a.m.Create(ctx, srcID, []replconf.Destination{{Region: b.name, KMSKeyID: "alias/another"}}); !errors.Is(err, control.ErrReplicationAlreadyExists) {
		t.Fatalf("retry with another key: %v, want ReplicationAlreadyExists", err)
	}
	if ds, err := b.m.Describe(ctx, d.DestFileSystemID); err != nil || len(ds) != 1 || ds[0].ID != d.ID {
		t.Fatalf("destination's configurations: %v %v", ds, err)
	}
}

// TestRetriedCreateSameKeyOlderDestination: a retried creation that names
// the destination's KMS key otherwise asks the destination region whether
// it is the same key with a call of its own (existing-destination), which
// a region of an earlier release refuses as unknown: the retry is then
// answered ReplicationAlreadyExists (the keys compared as strings, as that
// release does). Before, the question was create-destination with
// Existing set, which such a region ignores: it compared the keys as
// strings, and where it had no configuration of the source (deleted there
// meanwhile) it made a new configuration and replica.
func TestRetriedCreateSameKeyOlderDestination(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	d, err := a.m.Create(ctx, srcID, []replconf.Destination{{Region: b.name, KMSKeyID: control.DefaultKMSKey}})
	if err != nil {
		t.Fatal(err)
	}
	// b as a region of an earlier release: it does not know the question.
	var mu sync.Mutex
	var calls []string
	b.stop()
	b.wrap = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if method, ok := strings.CutPrefix(req.URL.Path, "/replication/v1/call/"); ok {
				mu.Lock()
				calls = append(calls, method)
				mu.Unlock()
				if method == "existing-destination" {
					body, _ := json.Marshal(replication.CallError{Status: http.StatusNotFound, Code: "UnknownOperation", Message: "unknown call " + method})
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusNotFound)
					w.Write(body)
					return
				}
			}
			h.ServeHTTP(w, req)
		})
	}
	b.restart()
	_, err = a.m.Create(ctx, srcID, []replconf.Destination{{Region: b.name, KMSKeyID: "key-" + b.name}})
	if !errors.Is(err, control.ErrReplicationAlreadyExists) {
		t.Fatalf("a retry naming the key otherwise, to an earlier release: %v, want ReplicationAlreadyExists", err)
	}
	mu.Lock()
	got := append([]string(nil), calls...)
	mu.Unlock()
	if slices.Contains(got, "create-destination") || !slices.Contains(got, "existing-destination") {
		t.Fatalf("the retry called %v: want the question (existing-destination), never create-destination", got)
	}
	if ds, err := b.m.Describe(ctx, d.DestFileSystemID); err != nil || len(ds) != 1 || ds[0].ID != d.ID {
		t.Fatalf("destination's configurations: %v %v", ds, err)
	}
	fill(t, a.fs(srcID), "more", 2)
	converged(t, a.fs(srcID), b.fs(d.DestFileSystemID))
}
