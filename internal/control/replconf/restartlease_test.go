package replconf_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestRestartedSourceHasNoLease: with hard fencing (a lease) and automatic
// failover, a source restarted while cut off from its destination takes no
// write until the destination answers: the destination may have promoted
// itself meanwhile (it waited 1.5 leases from its last contact). Before,
// the restarted source granted itself a fresh lease and took writes beside
// the promoted destination for up to a lease (found by review16).
func TestRestartedSourceHasNoLease(t *testing.T) {
	ctx := context.Background()
	p := newFencedPair(t, time.Second)
	srcID, d := p.replicated(t)
	p.autoFailover(t, d, time.Second)
	p.partition()
	p.a.stop() // before its lease ran out
	testkit.WaitFor(t, "the automatic failover", 30*time.Second, func() bool { return len(p.failovers()) > 0 })
	p.a.restart() // still cut off
	_, err := p.a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "after-restart", engine.SetAttr{})
	mode, _ := p.b.fs(d.DestFileSystemID).Mode()
	t.Logf("restarted source write: %v; destination %v", err, mode)
	if !errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("a restarted source cut off from its destination took a write with no lease (the destination is %v)", mode)
	}
}

// TestLeaseFenceLiftedAfterRestart: a source whose lease ran out (cut off
// from its destination, read-only) and that the process ended then
// (stopped, or killed: the crash image) takes writes again once the link
// is back and its destination answers. Before, the restarted source could
// not tell its engine's fence (its own epoch) from a planned failover's
// and kept it for good: read-only beside a destination that replicated it
// again.
func TestLeaseFenceLiftedAfterRestart(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "stop", true: "crash"}[crash], func(t *testing.T) {
			ctx := context.Background()
			p := newFencedPair(t, time.Second)
			srcID, d := p.replicated(t)
			p.partition()
			waitReadOnly(t, p.a, srcID, "the lease's fence")
			if crash {
				p.a.reopen(image{kv: p.a.kv.CrashClone(), disk: p.a.disk.CrashClone()})
			} else {
				p.a.stop()
				p.a.restart()
			}
			if _, err := p.a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "cut-off", engine.SetAttr{}); !errors.Is(err, engine.ErrReadOnly) {
				t.Fatalf("a restarted source cut off from its destination: write %v, want read-only", err)
			}
			p.heal()
			waitWritable(t, p.a, srcID, "back", "writes after the destination answered")
			converged(t, p.a.fs(srcID), p.b.fs(d.DestFileSystemID))
		})
	}
}

// TestPlannedFailoverWhileLeaseStopped: a planned failover started while
// the source's lease had run out (cut off, read-only) keeps the source
// read-only when the link comes back: the destination's acknowledgement
// lifts the lease's stop, not the failover's. Before, both were one fence
// of the source's own epoch, and the first acknowledgement during the
// drain made the source writable again: writes acknowledged then came
// after the drain's target and were lost by the promotion.
func TestPlannedFailoverWhileLeaseStopped(t *testing.T) {
	ctx := context.Background()
	p := newFencedPair(t, time.Second)
	srcID, d := p.replicated(t)
	p.partition()
	waitReadOnly(t, p.a, srcID, "the lease's fence")
	var during error
	p.a.m.SetHook(func(step, _ string) {
		if step != "planned-fenced" {
			return
		}
		st, _ := p.a.n.OutboundStatus(d.ID)
		before := st.LastContact
		p.heal()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if st, _ := p.a.n.OutboundStatus(d.ID); st.LastContact.After(before) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		_, during = p.a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "during", engine.SetAttr{})
	})
	pr, err := p.a.m.PlannedFailover(ctx, srcID)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(during, engine.ErrReadOnly) {
		t.Fatalf("a write during the planned failover, after the destination answered: %v, want read-only", during)
	}
	if pr.Seq != p.a.fs(srcID).Replica().DurableSeq() {
		t.Fatalf("planned failover at %d, the source is at %d: changes lost", pr.Seq, p.a.fs(srcID).Replica().DurableSeq())
	}
	if mode, _ := p.a.fs(srcID).Mode(); mode != engine.ModeFenced {
		t.Fatalf("source after the planned failover: %v", mode)
	}
}

// TestLeaseStopLiftedAfterEndedReplication: a failover in the destination
// region (DeleteReplicationConfiguration ALL_CONFIGURATIONS there) waits
// for the source's lease, which stops the source's writes; the source,
// told, keeps writing beside the promoted destination (coordinated, as on
// AWS): its configuration is deleted, then its outbound removed, which
// lifts the lease's stop. A source killed between the two started with no
// configuration and the lease's stop recorded, read-only for good (only
// UpdateFileSystemProtection cleared it) and its journal pinned: the start
// now lifts the lease's stop (only it) and releases the pin. Killed before
// the configuration was deleted, the restarted source asks its
// destination, which says the replication is gone (coordinated), and ends
// it as the live source does.
func TestLeaseStopLiftedAfterEndedReplication(t *testing.T) {
	for _, step := range []string{"source-gone-removed", "source-gone"} {
		t.Run(step, func(t *testing.T) {
			ctx := context.Background()
			p := newFencedPair(t, time.Second)
			srcID, d := p.replicated(t)
			var (
				mu    sync.Mutex
				img   *image
				stops engine.Stop
			)
			p.a.m.SetHook(func(s, _ string) {
				mu.Lock()
				defer mu.Unlock()
				if s == step && img == nil {
					img = &image{kv: p.a.kv.CrashClone(), disk: p.a.disk.CrashClone()}
					stops = p.a.fs(srcID).Replica().Stops()
				}
			})
			// The source's stream cannot reach the destination (the calls
			// between the regions still do): its lease runs out first.
			p.pb.Partition()
			waitReadOnly(t, p.a, srcID, "the lease's stop")
			if _, err := p.b.m.Delete(ctx, d.DestFileSystemID, replconf.DeleteAll); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			crashed, stopped := img, stops
			mu.Unlock()
			if crashed == nil {
				t.Fatalf("the source never reached step %s", step)
			}
			if stopped&engine.StopLease == 0 {
				t.Fatalf("the source's stops at %s: %v, want the lease's", step, stopped)
			}
			p.pb.Heal()
			p.a.reopen(*crashed)
			waitWritable(t, p.a, srcID, "after", "the restarted source to take writes")
			if got := p.a.protection(srcID); got != control.ProtectionEnabled {
				t.Fatalf("source protection %s, want %s (a coordinated failover)", got, control.ProtectionEnabled)
			}
			testkit.WaitFor(t, "the configuration to end at the source", 30*time.Second, func() bool {
				ds, err := p.a.m.Describe(ctx, srcID)
				return err != nil || len(ds) == 0
			})
			testkit.WaitFor(t, "the source's journal pin to be released", 30*time.Second, func() bool {
				for pin := range p.a.fs(srcID).Replica().Pins() {
					if _, ok := replication.OutboundPinID(pin); ok {
						return false
					}
				}
				return true
			})
		})
	}
}

// TestDeleteAtSourceCrashKeepsNoLeaseWithoutAnswer: a deletion in the
// source region (LOCAL_CONFIGURATION_ONLY, the destination out of reach)
// that the process ends in the middle of leaves the source either with its
// configuration, taking no write until its destination answers, or
// without it (ended: it takes writes, as the deletion asked). Before, the
// outbound was removed first (its journal pin cleared, the lease's stop
// lifted) and the configuration deleted after: killed in between, the
// restarted source had its configuration and neither, and granted itself
// a lease, taking writes beside a destination that had promoted itself
// (automatic failover) with no answer from it.
func TestDeleteAtSourceCrashKeepsNoLeaseWithoutAnswer(t *testing.T) {
	ctx := context.Background()
	p := newFencedPair(t, time.Second)
	srcID, d := p.replicated(t)
	p.autoFailover(t, d, time.Second)
	img := p.a.crashAt("deleted-at-source")
	p.partition()
	waitReadOnly(t, p.a, srcID, "the lease's stop")
	if _, err := p.a.m.Delete(ctx, srcID, replconf.DeleteLocalOnly); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the automatic failover", 30*time.Second, func() bool { return len(p.failovers()) > 0 })
	p.a.reopen(img()) // still cut off
	_, werr := p.a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "after-restart", engine.SetAttr{})
	ds, err := p.a.m.Describe(ctx, srcID)
	if err != nil && !errors.Is(err, control.ErrReplicationNotFound) {
		t.Fatal(err)
	}
	mode, _ := p.b.fs(d.DestFileSystemID).Mode()
	t.Logf("restarted source: %d configurations, write %v; destination %v", len(ds), werr, mode)
	if len(ds) > 0 && werr == nil {
		t.Fatalf("a restarted source with its configuration took a write with no answer from its destination (which is %v)", mode)
	}
	if len(ds) == 0 && werr != nil {
		t.Fatalf("a source whose configuration was deleted refuses writes: %v", werr)
	}
}

// TestCreateReturnsWritable: with hard fencing a new configuration's
// source takes writes only under a lease its destination's answer
// granted; CreateReplicationConfiguration waits for the first one (a
// round trip or two), so the writes right after it are taken, not
// refused as on a read-only file system.
func TestCreateReturnsWritable(t *testing.T) {
	ctx := context.Background()
	p := newFencedPair(t, time.Second)
	srcID := p.a.createFS("src")
	d, err := p.a.m.Create(ctx, srcID, []replconf.Destination{{Region: p.b.name}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "right-after", engine.SetAttr{}); err != nil {
		t.Fatalf("a write right after the creation returned: %v", err)
	}
	if d.Status != replication.StateEnabling {
		t.Fatalf("creation answered %s, want %s", d.Status, replication.StateEnabling)
	}
	converged(t, p.a.fs(srcID), p.b.fs(d.DestFileSystemID))
}
