package fuse

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestGoneAttrBurstBoundsGoroutines: a burst of GETATTRs of a file
// renamed over by another client (goneAttr) while the kernel does not
// take the entry notifications (it waits for the directory's lock: the
// send blocks) holds a bounded number of goroutines, not one per call,
// and still tells the kernel; once the kernel takes them, the
// notifications end and so do their goroutines. Before notifier, each
// call started a goroutine of its own that waited there.
func TestGoneAttrBurstBoundsGoroutines(t *testing.T) {
	m := newMountSpace(t, nil, func(m *testMount) { m.noFUSE = true })
	ctx := context.Background()
	c := m.sess.Client(client.Unix("t", 0, 0))
	root := m.f.o.Root
	mode := uint32(0o644)
	a, err := c.Create(ctx, root, "a", proto.Unchecked, proto.Sattr{Mode: &mode})
	if err != nil {
		t.Fatal(err)
	}
	ga, err := c.GetAttr(ctx, a.FH)
	if err != nil {
		t.Fatal(err)
	}
	dir := &node{f: m.f, fh: root}
	n := &node{f: m.f, fh: a.FH, fa: ga.Attr, faAt: time.Now(), dir: dir, name: "a"}
	if _, err := c.Create(ctx, root, "b", proto.Unchecked, proto.Sattr{Mode: &mode}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rename(ctx, root, "b", root, "a"); err != nil {
		t.Fatal(err)
	}

	var sent, sending, most atomic.Int64
	unblock := make(chan struct{})
	m.f.notify.send = func(d *node, name string) {
		if d != dir || name != "a" {
			t.Errorf("notification of %q in another directory", name)
		}
		sent.Add(1)
		now := sending.Add(1)
		for {
			if m := most.Load(); now <= m || most.CompareAndSwap(m, now) {
				break
			}
		}
		<-unblock
		sending.Add(-1)
	}
	base := runtime.NumGoroutine()
	const burst = 200
	var wg sync.WaitGroup
	var answered atomic.Int64
	for range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out gofuse.AttrOut
			if n.goneAttr(ctx, &out) {
				answered.Add(1)
			}
		}()
	}
	wg.Wait()
	if answered.Load() != burst {
		t.Fatalf("%d of %d GETATTRs of the renamed-over file answered", answered.Load(), burst)
	}
	// Every notification started by now waits (the kernel takes none).
	testkit.Eventually(t, 10*time.Second, func() error {
		if sent.Load() == 0 {
			return errors.New("no notification sent")
		}
		return nil
	})
	// The client's connections may have started a few goroutines of
	// their own; one per call is the burst.
	if extra := runtime.NumGoroutine() - base; extra >= burst/4 {
		t.Errorf("%d goroutines more after a burst of %d GETATTRs while the kernel takes no notification", extra, burst)
	}
	if w := most.Load(); w > 1 {
		t.Errorf("%d goroutines waiting to notify the kernel after a burst of %d, want 1", w, burst)
	}
	close(unblock)
	testkit.Eventually(t, 10*time.Second, func() error {
		m.f.notify.mu.Lock()
		defer m.f.notify.mu.Unlock()
		if m.f.notify.running || sending.Load() > 0 {
			return errors.New("still notifying")
		}
		return nil
	})
	// The name queued again while its notification waited is sent once
	// more, not once per call.
	if s := sent.Load(); s > 2 {
		t.Errorf("%d notifications for one name, want at most 2", s)
	}
}
