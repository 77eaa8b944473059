package replconf_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/replication"
	"github.com/regionfs/regionfs/internal/testkit"
)

// image is what a crash (kill -9) of a region leaves: its synced store
// and disk.
type image struct {
	kv   *kv.Memory
	disk *disk.Mem
}

// crashAt makes r keep the image a crash would leave at the step of its
// manager's operations (the first time it is reached).
func (r *region) crashAt(step string) func() image {
	var (
		mu  sync.Mutex
		img *image
	)
	r.m.SetHook(func(s, _ string) {
		mu.Lock()
		defer mu.Unlock()
		if s == step && img == nil {
			img = &image{kv: r.kv.CrashClone(), disk: r.disk.CrashClone()}
		}
	})
	return func() image {
		r.t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if img == nil {
			r.t.Fatalf("%s: step %q never reached", r.name, step)
		}
		return *img
	}
}

// reopen stops r and starts it over img, as the restart after a crash.
func (r *region) reopen(img image) {
	r.t.Helper()
	r.stop()
	r.kv, r.disk = img.kv, img.disk
	r.start()
}

// TestFailoverCrashWindows: a failover (DeleteReplicationConfiguration in
// the destination region, the source region down) that the process ends
// in the middle of ends, at the next start, either as if it had not
// begun (a crash before the replica's promotion: the configuration and
// the replica as they were, the replication carrying on) or completed
// (a crash after it: configuration gone, tombstone written with the
// recovery point the live failover answered, protection ENABLED, nothing
// received into the promoted file system, a repeated delete answered
// with that recovery point, the old source fenced at its next contact
// with the same recovery point in its loss report). Before, a crash
// after the promotion left the configuration of a promoted file system
// resumed (ENABLED in the API, every later delete refused by the engine:
// the file system is not a replica), no tombstone, and a source fenced
// by the stream's refusal with recovery point 0.
func TestFailoverCrashWindows(t *testing.T) {
	for _, step := range []string{"promote", "promoted", "recorded", "protected", "told"} {
		t.Run(step, func(t *testing.T) {
			ctx := context.Background()
			a, b := newPair(t)
			srcID := a.createFS("src")
			fill(t, a.fs(srcID), "before", 10)
			d := replicate(t, a, b, srcID)
			dst := d.DestFileSystemID
			a.stop()
			crashed := b.crashAt(step)
			p, err := b.m.Delete(ctx, dst, replconf.DeleteAll)
			if err != nil {
				t.Fatal(err)
			}
			b.reopen(crashed())

			if step == "promote" {
				// Not begun: still a replica, still replicating.
				if mode, _ := b.fs(dst).Mode(); mode != engine.ModeReplica {
					t.Fatalf("the destination is %v after a crash before its promotion", mode)
				}
				if got := status(t, b.m, dst); got.ID != d.ID {
					t.Fatalf("the destination's configuration after a crash before its promotion: %+v", got)
				}
				if pr := b.protection(dst); pr != control.ProtectionReplicating {
					t.Fatalf("destination protection %s", pr)
				}
				a.restart()
				fill(t, a.fs(srcID), "after", 5)
				converged(t, a.fs(srcID), b.fs(dst))
				return
			}

			if mode, _ := b.fs(dst).Mode(); mode != engine.ModePrimary {
				t.Fatalf("the destination is %v after a crash after its promotion", mode)
			}
			if ds, err := b.m.Describe(ctx, dst); !errors.Is(err, control.ErrReplicationNotFound) {
				for _, x := range ds {
					t.Errorf("configuration %s: %s (%s)", x.ID, x.Status, x.StatusMessage)
				}
				t.Fatalf("the promoted destination still describes its configuration (%v)", err)
			}
			if _, ok := b.n.InboundStatus(d.ID); ok {
				t.Fatal("the promoted destination still receives the replication")
			}
			if pr := b.protection(dst); pr != control.ProtectionEnabled {
				t.Fatalf("promoted destination protection %s, want %s", pr, control.ProtectionEnabled)
			}
			if got := b.describe(dst).ReplicationRole; got != "" {
				t.Fatalf("promoted destination's replication role %q", got)
			}
			tomb, ok := b.m.Tombstone(replication.RoleDestination, d.ID)
			if !ok || !tomb.Promoted || tomb.RecoverySeq != p.Seq || tomb.Epoch != p.NewEpoch {
				t.Fatalf("tombstone %+v (found %v), want the promotion at seq %d epoch %d", tomb, ok, p.Seq, p.NewEpoch)
			}
			// The user's delete had no answer: asked again, by the id of
			// either end, the same one (by the source's, which names no
			// file system here, it was FileSystemNotFound).
			for _, id := range []string{dst, dst, srcID} {
				again, err := b.m.Delete(ctx, id, replconf.DeleteAll)
				if err != nil || again == nil || again.Seq != p.Seq || again.NewEpoch != p.NewEpoch {
					t.Fatalf("repeated delete by %s: %+v %v, want recovery point %d at epoch %d", id, again, err, p.Seq, p.NewEpoch)
				}
			}
			if _, err := b.fs(dst).Mkdir(ctx, engine.RootCred, engine.RootIno, "written-after-failover", engine.SetAttr{}); err != nil {
				t.Fatal(err)
			}

			// The old source comes back: fenced, its loss report from the
			// recovery point.
			a.restart()
			testkit.WaitFor(t, "old source fenced", 10*time.Second, func() bool {
				mode, _ := a.fs(srcID).Mode()
				return mode == engine.ModeFenced && a.protection(srcID) == control.ProtectionDisabled
			})
			rep, _, _, err := a.m.LossReport(ctx, srcID, 100)
			if err != nil || rep.RecoverySeq != p.Seq {
				t.Fatalf("loss report from %d (%v), want from the recovery point %d", rep.RecoverySeq, err, p.Seq)
			}
			if _, err := b.fs(dst).Lookup(ctx, engine.RootCred, engine.RootIno, "written-after-failover"); err != nil {
				t.Fatalf("the promoted destination lost its own write: %v", err)
			}
		})
	}
}

// stopAt makes r keep the image a crash would leave at the step of its
// manager's operations and hold the operation there (it goes on, against
// a closed region, once the test ends): what follows the step never
// happens, in this region or the other.
func (r *region) stopAt(step string) (img func() image) {
	reached := make(chan image, 1)
	release := make(chan struct{})
	r.t.Cleanup(func() { close(release) })
	r.m.SetHook(func(s, _ string) {
		if s != step {
			return
		}
		select {
		case reached <- image{kv: r.kv.CrashClone(), disk: r.disk.CrashClone()}:
			<-release
		default:
		}
	})
	return func() image {
		r.t.Helper()
		select {
		case i := <-reached:
			return i
		case <-time.After(30 * time.Second):
			r.t.Fatalf("%s: step %q never reached", r.name, step)
			return image{}
		}
	}
}

// TestPlannedFailoverCrashWindows: a planned failover (in the source
// region) that the process ends in the middle of ends, at the next start,
// either undone (before the destination was asked to promote itself: the
// source writable again, the replication carrying on) or completed (after:
// the destination promoted with everything the source acknowledged, the
// source fenced with protection DISABLED, no loss report), whether or not
// the destination had the request. Before, a crash after the fence left
// the source fenced for good under a running replication (nothing lifted
// a planned failover's fence but its own undo, in memory), and a crash
// after the destination's promotion left the source's protection ENABLED
// on a fenced file system, with no record for a start to put it right.
func TestPlannedFailoverCrashWindows(t *testing.T) {
	for _, tc := range []struct {
		step     string
		hold     bool // the operation goes no further (else it completes, the image is older)
		complete bool
	}{
		{"planned", true, false},
		{"planned-fenced", true, false},
		{"planned-sent", true, true},
		{"planned-sent", false, true},
		{"planned-deleted", true, true},
	} {
		name := tc.step
		if !tc.hold {
			name += "-delivered"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a, b := newPair(t)
			srcID := a.createFS("src")
			fill(t, a.fs(srcID), "before", 10)
			d := replicate(t, a, b, srcID)
			dst := d.DestFileSystemID
			var img func() image
			if tc.hold {
				img = a.stopAt(tc.step)
			} else {
				img = a.crashAt(tc.step)
			}
			done := make(chan error, 1)
			go func() {
				_, err := a.m.PlannedFailover(ctx, srcID)
				done <- err
			}()
			if !tc.hold {
				if err := testkit.Recv(t, "the planned failover", time.Minute, done); err != nil {
					t.Fatal(err)
				}
			}
			crashed := img()
			acked := a.fs(srcID).Replica().DurableSeq()
			a.reopen(crashed)

			if !tc.complete {
				if mode, _ := a.fs(srcID).Mode(); mode != engine.ModePrimary {
					t.Fatalf("the source is %v after a crash before the destination was asked to promote itself", mode)
				}
				if got := status(t, a.m, srcID); got.ID != d.ID {
					t.Fatalf("the source's configuration: %+v", got.ID)
				}
				if pr := a.protection(srcID); pr != control.ProtectionEnabled {
					t.Fatalf("source protection %s", pr)
				}
				fill(t, a.fs(srcID), "after", 5)
				converged(t, a.fs(srcID), b.fs(dst))
				if mode, _ := b.fs(dst).Mode(); mode != engine.ModeReplica {
					t.Fatalf("the destination is %v", mode)
				}
				return
			}

			testkit.WaitFor(t, "the planned failover to complete", 20*time.Second, func() bool {
				_, err := a.m.Describe(ctx, srcID)
				mode, _ := b.fs(dst).Mode()
				return errors.Is(err, control.ErrReplicationNotFound) && mode == engine.ModePrimary
			})
			testkit.WaitFor(t, "the source fenced, DISABLED", 10*time.Second, func() bool {
				mode, _ := a.fs(srcID).Mode()
				return mode == engine.ModeFenced && a.protection(srcID) == control.ProtectionDisabled
			})
			if _, err := a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "x", engine.SetAttr{}); !errors.Is(err, engine.ErrReadOnly) {
				t.Fatalf("the old source accepted a write: %v", err)
			}
			if _, applied, _ := b.fs(dst).Replica().Applied(); applied < acked {
				t.Fatalf("the promoted destination applied up to %d, the source had %d durable", applied, acked)
			}
			if _, _, _, err := a.m.LossReport(ctx, srcID, 100); !errors.Is(err, control.ErrReplicationNotFound) {
				t.Fatalf("loss report after a planned failover: %v", err)
			}
			if _, err := b.m.Describe(ctx, dst); !errors.Is(err, control.ErrReplicationNotFound) {
				t.Fatalf("the destination still describes the configuration: %v", err)
			}
			if pr := b.protection(dst); pr != control.ProtectionEnabled {
				t.Fatalf("promoted destination protection %s", pr)
			}
			// Restarted again: still fenced, DISABLED.
			a.stop()
			a.restart()
			if mode, _ := a.fs(srcID).Mode(); mode != engine.ModeFenced || a.protection(srcID) != control.ProtectionDisabled {
				t.Fatalf("after another restart the old source is %v, %s", mode, a.protection(srcID))
			}
		})
	}
}

// TestAdoptCrashWindows: a creation that adopts an existing file system
// as the destination, ended by a crash of the destination region in the
// middle, ends at the next start either as if it had not begun (before
// the file system was touched: no configuration, the file system
// writable with its data, the source forgetting the configuration at its
// next contact) or finished (after: the configuration kept, the
// replication carrying on). Before, a crash after the adoption (a copy
// kept, the file system reset to an empty replica) and before the
// configuration was written left a replica that no configuration names:
// unreadable, fed by nothing, the source's configuration ended by the
// destination's answer that it has none.
func TestAdoptCrashWindows(t *testing.T) {
	for _, tc := range []struct {
		step   string
		adopts bool
	}{{"adopting", false}, {"adopted", true}} {
		t.Run(tc.step, func(t *testing.T) {
			ctx := context.Background()
			a, b := newPair(t)
			srcID := a.createFS("src")
			fill(t, a.fs(srcID), "src", 10)
			existing := b.adoptable("existing")
			crashed := b.crashAt(tc.step)
			d, err := a.m.Create(ctx, srcID, []replconf.Destination{{Region: b.name, FileSystemID: existing}})
			if err != nil {
				t.Fatal(err)
			}
			b.reopen(crashed())
			if !tc.adopts {
				if _, err := b.m.Describe(ctx, existing); !errors.Is(err, control.ErrReplicationNotFound) {
					t.Fatalf("a configuration for %s after a crash before its adoption: %v", existing, err)
				}
				if mode, _ := b.fs(existing).Mode(); mode != engine.ModePrimary {
					t.Fatalf("%s is %v", existing, mode)
				}
				if _, err := b.fs(existing).Lookup(ctx, engine.RootCred, engine.RootIno, "own0"); err != nil {
					t.Fatalf("%s lost its data: %v", existing, err)
				}
				testkit.WaitFor(t, "the source to forget the configuration", 10*time.Second, func() bool {
					_, err := a.m.Describe(ctx, srcID)
					return errors.Is(err, control.ErrReplicationNotFound)
				})
				return
			}
			if got := status(t, b.m, existing); got.ID != d.ID {
				t.Fatalf("the destination's configuration after a crash after its adoption: %s, want %s", got.ID, d.ID)
			}
			if pr := b.protection(existing); pr != control.ProtectionReplicating {
				t.Fatalf("destination protection %s", pr)
			}
			fill(t, a.fs(srcID), "more", 3)
			converged(t, a.fs(srcID), b.fs(existing))
			if got := status(t, a.m, srcID); got.ID != d.ID {
				t.Fatalf("the source's configuration: %s", got.ID)
			}
		})
	}
}

// TestPlannedFailoverFinishedAfterDestinationStarts: a source that resumes
// a planned failover past its point of no return (the destination asked
// to promote itself, and it did) while the destination region is still
// starting (its calls answered 503, configurations not loaded) asks
// again until the destination answers, and ends fenced by the planned
// failover. Before, finishPlanned took the 503 (a control error of kind
// engine.ErrClosed) for a refusal and undid the failover: the old source
// writable again while the destination was promoted, both taking writes
// until the source's stream learned of the promotion and fenced it with
// a loss report.
func TestPlannedFailoverFinishedAfterDestinationStarts(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	fill(t, a.fs(srcID), "before", 10)
	d := replicate(t, a, b, srcID)
	dst := d.DestFileSystemID
	img := a.crashAt("planned-sent")
	if _, err := a.m.PlannedFailover(ctx, srcID); err != nil {
		t.Fatal(err)
	}
	crashed := img()

	// The destination (promoted) restarts and answers its calls 503
	// until it is told its configurations are loaded.
	var (
		mu       sync.Mutex
		statuses []int
	)
	b.stop()
	b.unloaded = true
	b.wrap = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			h.ServeHTTP(rec, r)
			if r.URL.Path == "/replication/v1/call/delete" {
				mu.Lock()
				statuses = append(statuses, rec.status)
				mu.Unlock()
			}
		})
	}
	b.restart()
	a.reopen(crashed)
	answered := func(n int) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(statuses) >= n
		}
	}
	testkit.WaitFor(t, "the source's delete call answered", 20*time.Second, answered(1))
	// Asked again: the answer was no refusal.
	testkit.WaitFor(t, "the source's delete call asked again", 20*time.Second, answered(2))
	mu.Lock()
	if statuses[0] != http.StatusServiceUnavailable {
		t.Errorf("the starting destination answered %d, want %d", statuses[0], http.StatusServiceUnavailable)
	}
	mu.Unlock()
	if mode, _ := a.fs(srcID).Mode(); mode != engine.ModeFenced {
		t.Fatalf("the old source is %v while its planned failover waits for the destination", mode)
	}
	b.n.Loaded()
	testkit.WaitFor(t, "the planned failover to complete", 20*time.Second, func() bool {
		_, err := a.m.Describe(ctx, srcID)
		mode, _ := a.fs(srcID).Mode()
		return errors.Is(err, control.ErrReplicationNotFound) && mode == engine.ModeFenced && a.protection(srcID) == control.ProtectionDisabled
	})
	if _, _, _, err := a.m.LossReport(ctx, srcID, 100); !errors.Is(err, control.ErrReplicationNotFound) {
		t.Fatalf("loss report after a planned failover: %v", err)
	}
	if mode, _ := b.fs(dst).Mode(); mode != engine.ModePrimary {
		t.Fatalf("the destination is %v", mode)
	}
}

// statusWriter records the status a handler answers with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// TestCreateCrashWindows: a creation of a new replica that the process
// ends in the middle of leaves, at the next start, either nothing (a crash
// before the replica was made: no configuration, no file system, the
// source forgets its configuration) or the finished configuration (a
// crash after: the replication carries on into the replica). Before, a
// crash after the replica was made left a read-only file system that no
// configuration named (an orphan; the source's retry made another).
func TestCreateCrashWindows(t *testing.T) {
	for _, tc := range []struct {
		step    string
		created bool
	}{{"creating", false}, {"created", true}} {
		t.Run(tc.step, func(t *testing.T) {
			ctx := context.Background()
			a, b := newPair(t)
			srcID := a.createFS("src")
			fill(t, a.fs(srcID), "src", 10)
			before := fileSystems(t, b)
			crashed := b.crashAt(tc.step)
			d, err := a.m.Create(ctx, srcID, []replconf.Destination{{Region: b.name}})
			if err != nil {
				t.Fatal(err)
			}
			b.reopen(crashed())
			after := fileSystems(t, b)
			if !tc.created {
				if len(after) != len(before) {
					t.Fatalf("file systems after a crash before the replica was made: %v, before %v", after, before)
				}
				if _, err := b.m.Describe(ctx, d.DestFileSystemID); !errors.Is(err, control.ErrReplicationNotFound) && !errors.Is(err, control.ErrFileSystemNotFound) {
					t.Fatalf("a configuration after a crash before the replica was made: %v", err)
				}
				testkit.WaitFor(t, "the source to forget the configuration", 10*time.Second, func() bool {
					_, err := a.m.Describe(ctx, srcID)
					return errors.Is(err, control.ErrReplicationNotFound)
				})
				return
			}
			if len(after) != len(before)+1 {
				t.Fatalf("file systems after a crash after the replica was made: %v, before %v", after, before)
			}
			got, err := b.m.Describe(ctx, d.DestFileSystemID)
			if err != nil || len(got) != 1 || got[0].ID != d.ID {
				t.Fatalf("the replica's configuration after a crash after it was made: %+v %v, want %s", got, err, d.ID)
			}
			if pr := b.protection(d.DestFileSystemID); pr != control.ProtectionReplicating {
				t.Fatalf("destination protection %s", pr)
			}
			if role := b.describe(d.DestFileSystemID).ReplicationRole; role != "destination" {
				t.Fatalf("destination's replication role %q", role)
			}
			fill(t, a.fs(srcID), "more", 3)
			converged(t, a.fs(srcID), b.fs(d.DestFileSystemID))
		})
	}
}

// fileSystems returns the ids of r's file systems.
func fileSystems(t *testing.T, r *region) []string {
	t.Helper()
	fss, _, err := r.r.DescribeFileSystems(context.Background(), control.FileSystemQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range fss {
		ids = append(ids, f.ID)
	}
	return ids
}

// TestSourceDeleteCrashWindow (chaos24): both regions' processes end
// (one process of a dev or same-host setup, or the destination's alone
// with the source's own delete ending with it) while the source's
// DeleteReplicationConfiguration is between the replica's promotion and
// the destination's record of it. At the restart the promotion is
// completed, and it is the one the source asked for (coordinated): the
// source, which restarts with its configuration, stays writable and
// forgets it. Before, the destination's start completed it as a failover
// made without the source, and the source's next stream fenced it
// (DISABLED beside a writable replica).
func TestSourceDeleteCrashWindow(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	fill(t, a.fs(srcID), "before", 10)
	d := replicate(t, a, b, srcID)
	dst := d.DestFileSystemID
	var (
		mu         sync.Mutex
		aImg, bImg *image
	)
	b.m.SetHook(func(s, _ string) {
		mu.Lock()
		defer mu.Unlock()
		if s == "promoted" && bImg == nil {
			aImg = &image{kv: a.kv.CrashClone(), disk: a.disk.CrashClone()}
			bImg = &image{kv: b.kv.CrashClone(), disk: b.disk.CrashClone()}
		}
	})
	if _, err := a.m.Delete(ctx, srcID, replconf.DeleteAll); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if bImg == nil {
		mu.Unlock()
		t.Fatal("the destination's promotion step was never reached")
	}
	ai, bi := *aImg, *bImg
	mu.Unlock()
	a.stop()
	b.reopen(bi)
	a.kv, a.disk = ai.kv, ai.disk
	a.start()

	testkit.WaitFor(t, "the source's configuration gone", 10*time.Second, func() bool {
		_, err := a.m.Describe(ctx, srcID)
		return errors.Is(err, control.ErrReplicationNotFound)
	})
	if mode, _ := b.fs(dst).Mode(); mode != engine.ModePrimary {
		t.Fatalf("the destination is %v", mode)
	}
	if mode, _ := a.fs(srcID).Mode(); mode != engine.ModePrimary || a.protection(srcID) == control.ProtectionDisabled {
		t.Fatalf("the source that asked for the deletion is %v, protection %s: fenced as if the destination had been promoted without it",
			mode, a.protection(srcID))
	}
	if _, err := a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "written-after-delete", engine.SetAttr{}); err != nil {
		t.Fatalf("the source refuses writes after its own deletion: %v", err)
	}
}
