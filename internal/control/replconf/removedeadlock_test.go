package replconf_test

import (
	"context"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication"
	"github.com/regionfs/regionfs/internal/testkit"
)

// A coordinated delete in the source region: the destination forgets the
// configuration first, so the source's stream, reconnecting, is refused
// (Gone) and its loop tells the manager (SourceGone, which takes the
// manager's lock) while the delete, holding that lock, removes the
// outbound (RemoveOutbound waits for that loop). Here the refusal is
// made to come exactly then: the delete returns, the outbound is gone,
// and the source is writable (a coordinated delete fences nothing).
// Before, RemoveOutbound was called under the lock and both waited for
// each other for good.
func TestDeleteAtSourceWhileStreamRefused(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	d := replicate(t, a, b, srcID)
	refused := make(chan bool, 1)
	a.m.SetHook(func(step, id string) {
		if step != "deleted-at-source" || id != d.ID {
			return
		}
		// The manager's lock is held here. Wait until the source's
		// loop has been refused and is telling the manager.
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if st, ok := a.n.OutboundStatus(d.ID); ok && st.State == replication.StateError {
				refused <- true
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		refused <- false
	})
	done := make(chan error, 1)
	go func() {
		_, err := a.m.Delete(ctx, srcID, replconf.DeleteAll)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the delete at the source never returned: RemoveOutbound under the manager's lock waits for a loop waiting for that lock")
	}
	if !<-refused {
		t.Fatal("the source's stream was not refused while the delete held the lock: the test did not test the race")
	}
	if _, ok := a.n.OutboundStatus(d.ID); ok {
		t.Fatal("the outbound is still there after the delete")
	}
	testkit.WaitFor(t, "the source writable", 10*time.Second, func() bool {
		mode, _ := a.fs(srcID).Mode()
		return mode == engine.ModePrimary && a.protection(srcID) != control.ProtectionDisabled
	})
}
