package replconf_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication"
	"github.com/regionfs/regionfs/internal/replication/faultproxy"
	"github.com/regionfs/regionfs/internal/testkit"
)

// slowPair is newPair with a slow fault proxy on the way from a to b, so
// that an initial sync from a to b takes seconds.
func slowPair(t *testing.T) (a, b *region, px *faultproxy.Proxy) {
	t.Helper()
	a, b = newRegion(t, "us-east-1"), newRegion(t, "us-west-2")
	px, err := faultproxy.New("127.0.0.1:0", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	px.SetDelay(5 * time.Millisecond)
	px.SetBandwidth(400 << 10)
	px.SetPieceBytes(2 << 10)
	a.peers = map[string]replication.Peer{
		a.name: {URL: "http://" + a.addr, Secret: testSecret},
		b.name: {URL: "http://" + px.Addr(), Secret: testSecret},
	}
	b.peers = map[string]replication.Peer{
		a.name: {URL: "http://" + a.addr, Secret: testSecret},
		b.name: {URL: "http://" + b.addr, Secret: testSecret},
	}
	a.start()
	b.start()
	return a, b, px
}

// startEnabling creates the replication of a new file system of a (with
// some history) to a new destination in b and waits until its initial
// sync is under way past the superblock.
func startEnabling(t *testing.T, a, b *region) (srcID string, d replconf.Description) {
	t.Helper()
	srcID = a.createFS("src")
	fill(t, a.fs(srcID), "before", 50)
	// Blocks (not inline data), so that the sync has reference counts
	// and blocks after the superblock, for seconds through the proxy.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		fs := a.fs(srcID)
		f, err := fs.Create(context.Background(), engine.RootCred, engine.RootIno, fmt.Sprint("big", i), engine.CreateUnchecked, engine.SetAttr{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, 64<<10)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		if _, _, err := fs.Write(context.Background(), engine.RootCred, f.Attr.Ino, 0, data); err != nil {
			t.Fatal(err)
		}
	}
	d, err := a.m.Create(context.Background(), srcID, []replconf.Destination{{Region: b.name}})
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the initial sync to pass the superblock", 30*time.Second, func() bool {
		fs, err := b.e.FS(d.DestFileSystemID)
		if err != nil {
			return false
		}
		ss := fs.Replica().SyncState()
		return ss.Active && len(ss.Cursor) > 0 && ss.Cursor[0] > 'M'
	})
	if s := status(t, b.m, d.DestFileSystemID).Status; s != replication.StateEnabling {
		t.Fatalf("destination status %s during the initial sync", s)
	}
	return srcID, d
}

// emptyWritable fails unless fs is a writable primary whose root is empty
// (nothing of the interrupted initial sync shows) with protection ENABLED.
func emptyWritable(t *testing.T, r *region, id string) {
	t.Helper()
	ctx := context.Background()
	fs := r.fs(id)
	if mode, _ := fs.Mode(); mode != engine.ModePrimary {
		t.Fatalf("%s is %v after the delete", id, mode)
	}
	ents, eof, _, err := fs.ReadDir(ctx, engine.RootCred, engine.RootIno, 0, 100, false)
	if err != nil || !eof || len(ents) != 0 {
		t.Fatalf("%s lists %d entries (%v), want an empty root", id, len(ents), err)
	}
	if p := r.protection(id); p != control.ProtectionEnabled {
		t.Fatalf("%s protection %s, want ENABLED", id, p)
	}
	if _, err := fs.Mkdir(ctx, engine.RootCred, engine.RootIno, "written-after-delete", engine.SetAttr{}); err != nil {
		t.Fatalf("%s refuses writes: %v", id, err)
	}
	if _, err := r.m.Describe(ctx, id); !errors.Is(err, control.ErrReplicationNotFound) {
		t.Fatalf("%s still describes a replication: %v", id, err)
	}
	if err := r.r.DeleteFileSystem(ctx, id); err != nil {
		t.Fatalf("delete %s: %v", id, err)
	}
}

// TestDeleteDuringInitialSync: DeleteReplicationConfiguration while the
// initial sync runs (AWS allows it during ENABLING) succeeds from either
// region, with the source reachable or gone: the destination becomes a
// new, empty, writable file system (protection ENABLED, deletable), the
// promotion says nothing was recovered; a source that took part stays
// writable and replicates again to a new destination, one left out fences
// itself when it is back and its loss report says so.
func TestDeleteDuringInitialSync(t *testing.T) {
	ctx := context.Background()
	t.Run("from-source", func(t *testing.T) {
		a, b, px := slowPair(t)
		srcID, d := startEnabling(t, a, b)
		p, err := a.m.Delete(ctx, srcID, replconf.DeleteAll)
		if err != nil {
			t.Fatalf("delete during the initial sync: %v", err)
		}
		if p == nil || !p.Empty || p.Seq != 0 {
			t.Fatalf("promotion %+v, want an empty one", p)
		}
		if pr := a.protection(srcID); pr != control.ProtectionEnabled {
			t.Fatalf("source protection %s after a coordinated delete", pr)
		}
		if _, err := a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "source-still-writable", engine.SetAttr{}); err != nil {
			t.Fatal(err)
		}
		emptyWritable(t, b, d.DestFileSystemID)
		// The same source replicates again, to a new destination.
		px.SetDelay(0)
		px.SetBandwidth(0)
		px.SetPieceBytes(0)
		again := replicate(t, a, b, srcID)
		if again.DestFileSystemID == d.DestFileSystemID {
			t.Fatal("the new replication reused the deleted destination")
		}
	})
	t.Run("from-destination-source-gone", func(t *testing.T) {
		a, b, _ := slowPair(t)
		srcID, d := startEnabling(t, a, b)
		a.stop()
		if b.fs(d.DestFileSystemID).Replica().Consistent() {
			t.Fatal("the initial sync finished before the source stopped")
		}
		t0 := time.Now()
		p, err := b.m.Delete(ctx, d.DestFileSystemID, replconf.DeleteAll)
		if err != nil {
			t.Fatalf("delete during the initial sync, source gone: %v", err)
		}
		t.Logf("delete with the source gone took %s", time.Since(t0))
		if p == nil || !p.Empty || p.NewEpoch < 2 {
			t.Fatalf("promotion %+v, want an empty one", p)
		}
		emptyWritable(t, b, d.DestFileSystemID)
		// The source comes back and learns it was left out.
		a.restart()
		testkit.WaitFor(t, "the old source to learn of the failover", 10*time.Second, func() bool {
			mode, _ := a.fs(srcID).Mode()
			return mode == engine.ModeFenced && a.protection(srcID) == control.ProtectionDisabled
		})
		var tomb replconf.Tombstone
		testkit.WaitFor(t, "the loss report", 10*time.Second, func() bool {
			var err error
			tomb, _, _, err = a.m.LossReport(ctx, srcID, 10)
			return err == nil
		})
		if !tomb.Empty || tomb.RecoverySeq != 0 {
			t.Fatalf("tombstone %+v, want an empty promotion", tomb)
		}
		if _, ok := a.fs(srcID).Replica().Pins()[replication.ForkPin]; ok {
			t.Fatal("the source keeps a fork pin for a destination that holds none of it")
		}
	})
	t.Run("from-destination-local-only", func(t *testing.T) {
		a, b, _ := slowPair(t)
		srcID, d := startEnabling(t, a, b)
		p, err := b.m.Delete(ctx, d.DestFileSystemID, replconf.DeleteLocalOnly)
		if err != nil {
			t.Fatalf("local delete during the initial sync: %v", err)
		}
		if !p.Empty {
			t.Fatalf("promotion %+v, want an empty one", p)
		}
		emptyWritable(t, b, d.DestFileSystemID)
		// The source stops sending at its next contact.
		testkit.WaitFor(t, "the source to forget the replication", 15*time.Second, func() bool {
			_, ok := a.n.OutboundStatus(d.ID)
			return !ok
		})
		if _, err := a.m.Describe(ctx, srcID); !errors.Is(err, control.ErrReplicationNotFound) {
			t.Fatalf("source still describes the replication: %v", err)
		}
	})
}
