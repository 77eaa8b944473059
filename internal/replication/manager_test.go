package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// catalog is a minimal file-system catalog over an engine, standing in for
// the control plane in these tests (the real one is internal/control).
type catalog struct {
	r      *region
	mu     sync.Mutex
	fss    map[string]*FileSystem
	nextID int
}

func newCatalog(r *region) *catalog { return &catalog{r: r, fss: map[string]*FileSystem{}} }

func (c *catalog) add(ctx context.Context, t *testing.T, id string) *engine.FS {
	t.Helper()
	fs, err := c.r.e.CreateFS(ctx, id, engine.FSOptions{BlockSize: engine.MinBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.fss[id] = &FileSystem{ID: id, ARN: c.arn(id), OwnerID: "123456789012", Engine: id, LifeCycleState: "available", Protection: ProtectionEnabled}
	c.mu.Unlock()
	return fs
}

func (c *catalog) arn(id string) string {
	return fmt.Sprintf("arn:aws:elasticfilesystem:%s:123456789012:file-system/%s", c.r.name, id)
}

func (c *catalog) Lookup(_ context.Context, idOrARN string) (FileSystem, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.fss {
		if f.ID == idOrARN || f.ARN == idOrARN {
			return *f, nil
		}
	}
	return FileSystem{}, fmt.Errorf("%w: %s", ErrFileSystemNotFound, idOrARN)
}

func (c *catalog) CreateReplica(ctx context.Context, r ReplicaRequest) (FileSystem, error) {
	c.mu.Lock()
	c.nextID++
	id := fmt.Sprintf("fs-%s-%d", c.r.name[3:7], c.nextID)
	c.mu.Unlock()
	if _, err := c.r.e.CreateReplica(ctx, id, r.KMSKeyID); err != nil {
		return FileSystem{}, err
	}
	f := &FileSystem{ID: id, ARN: c.arn(id), OwnerID: "123456789012", Engine: id, LifeCycleState: "available", Protection: ProtectionReplicating, Encrypted: true}
	c.mu.Lock()
	c.fss[id] = f
	c.mu.Unlock()
	return *f, nil
}

func (c *catalog) ResetToReplica(ctx context.Context, fsID, kms string) error {
	if err := c.r.e.DeleteFS(ctx, fsID); err != nil {
		return err
	}
	_, err := c.r.e.CreateReplica(ctx, fsID, kms)
	return err
}

func (c *catalog) KeepCopy(ctx context.Context, fsID, reason string) (string, error) {
	id := fsID + "-kept"
	fs, err := c.r.e.Clone(ctx, fsID, id)
	if err != nil {
		return "", err
	}
	if err := fs.Replica().Fence(ctx, 0); err != nil {
		return "", err
	}
	c.mu.Lock()
	c.fss[id] = &FileSystem{ID: id, ARN: c.arn(id), Engine: id, LifeCycleState: "available", Protection: ProtectionDisabled}
	c.mu.Unlock()
	return id, nil
}

func (c *catalog) SetProtection(_ context.Context, fsID, p string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.fss[fsID]
	if !ok {
		return ErrFileSystemNotFound
	}
	f.Protection = p
	return nil
}

func (c *catalog) SetRole(_ context.Context, fsID string, role Role) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.fss[fsID]; !ok {
		return ErrFileSystemNotFound
	}
	return nil
}

func (c *catalog) protection(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fss[id].Protection
}

// managed is a region with a replication manager.
type managed struct {
	*region
	cat *catalog
	m   *Manager
}

func newManagedPair(t *testing.T) (*managed, *managed) {
	t.Helper()
	a := &managed{region: newRegion(t, "us-east-1")}
	b := &managed{region: newRegion(t, "us-west-2")}
	a.cat, b.cat = newCatalog(a.region), newCatalog(b.region)
	peers := map[string]Peer{
		a.name: {URL: "http://" + a.addr, Secret: testSecret},
		b.name: {URL: "http://" + b.addr, Secret: testSecret},
	}
	a.startNode(peers)
	b.startNode(peers)
	a.manage(t)
	b.manage(t)
	return a, b
}

func (r *managed) manage(t *testing.T) {
	t.Helper()
	r.m = NewManager(ManagerOptions{Region: r.name, Node: r.n, Engine: r.e, KV: r.kv, Catalog: r.cat})
	r.n.SetHooks(r.m.Hooks())
	if err := r.m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// restartManaged brings a stopped region back with its configurations.
func (r *managed) restart(t *testing.T) {
	t.Helper()
	r.region.restart()
	r.manage(t)
}

func status(t *testing.T, m *Manager, fsID string) Description {
	t.Helper()
	ds, err := m.Describe(context.Background(), fsID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("%d configurations for %s", len(ds), fsID)
	}
	return ds[0]
}

func TestManagerLifecycle(t *testing.T) {
	ctx := context.Background()
	a, b := newManagedPair(t)
	src := a.cat.add(ctx, t, "fs-a1")
	w := newWorkload(t, 31, func() *engine.FS { return a.fs("fs-a1") })
	w.run(ctx, 60)

	// Rules.
	for _, tc := range []struct {
		name  string
		dests []DestinationSpec
		want  error
	}{
		{"two destinations", []DestinationSpec{{Region: b.name}, {Region: b.name}}, ErrValidation},
		{"unknown region", []DestinationSpec{{Region: "eu-north-9"}}, ErrValidation},
		{"self", []DestinationSpec{{Region: a.name, FileSystemID: "fs-a1"}}, ErrBadRequest},
	} {
		if _, err := a.m.Create(ctx, "fs-a1", tc.dests); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := a.m.Create(ctx, "fs-nope", []DestinationSpec{{Region: b.name}}); !errors.Is(err, ErrFileSystemNotFound) {
		t.Fatalf("missing source: %v", err)
	}
	// A protected existing destination is refused by the destination region.
	b.cat.add(ctx, t, "fs-b9")
	var ce *CallError
	if _, err := a.m.Create(ctx, "fs-a1", []DestinationSpec{{Region: b.name, FileSystemID: "fs-b9"}}); !errors.As(err, &ce) || ce.Code != "ConflictException" {
		t.Fatalf("protected destination: %v", err)
	}

	d, err := a.m.Create(ctx, "fs-a1", []DestinationSpec{{Region: b.name}})
	if err != nil {
		t.Fatal(err)
	}
	dst := d.DestFileSystemID
	if dst == "" || d.Status != StateEnabling && d.Status != StateEnabled {
		t.Fatalf("created: %+v", d)
	}
	// A retry returns the same configuration; another destination is refused.
	again, err := a.m.Create(ctx, "fs-a1", []DestinationSpec{{Region: b.name}})
	if err != nil || again.ID != d.ID || again.DestFileSystemID != dst {
		t.Fatalf("retry: %+v %v", again, err)
	}
	if _, err := a.m.Create(ctx, "fs-a1", []DestinationSpec{{Region: b.name, FileSystemID: "fs-b9"}}); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("second configuration: %v", err)
	}
	if b.cat.protection(dst) != ProtectionReplicating {
		t.Fatalf("destination protection %s", b.cat.protection(dst))
	}
	converged(t, src, b.fs(dst))
	testkit.WaitFor(t, "ENABLED in both regions", 5*time.Second, func() bool {
		return status(t, a.m, "fs-a1").Status == StateEnabled && status(t, b.m, dst).Status == StateEnabled
	})
	// Both regions describe it by either id.
	for _, m := range []*Manager{a.m, b.m} {
		for _, id := range []string{"fs-a1", dst} {
			if _, err := m.Describe(ctx, id); err != nil && !(m == a.m && id == dst) && !(m == b.m && id == "fs-a1") {
				t.Fatalf("describe %s: %v", id, err)
			}
		}
	}
	bd := status(t, b.m, dst)
	if bd.SourceFileSystemID != "fs-a1" || bd.SourceRegion != a.name || bd.LastReplicated.IsZero() || bd.OriginalSourceARN != a.cat.arn("fs-a1") {
		t.Fatalf("destination's description: %+v", bd)
	}
	if _, err := b.m.Describe(ctx, "fs-b9"); !errors.Is(err, ErrReplicationNotFound) {
		t.Fatalf("describe a file system without replication: %v", err)
	}

	// Failover from the destination region while the source is down.
	w.run(ctx, 10)
	converged(t, src, b.fs(dst))
	a.stop()
	t0 := time.Now()
	p, err := b.m.Delete(ctx, dst, DeleteAll)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover in %s; recovery point seq %d", time.Since(t0), p.Seq)
	if b.cat.protection(dst) != ProtectionEnabled {
		t.Fatalf("promoted destination protection %s", b.cat.protection(dst))
	}
	if _, err := b.fs(dst).Mkdir(ctx, engine.RootCred, engine.RootIno, "written-after-failover", engine.SetAttr{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.m.Describe(ctx, dst); !errors.Is(err, ErrReplicationNotFound) {
		t.Fatalf("describe after delete: %v", err)
	}
	if _, err := b.m.Delete(ctx, dst, DeleteAll); !errors.Is(err, ErrReplicationNotFound) {
		t.Fatalf("repeated delete: %v", err)
	}
	// The old source comes back and learns it was left out: fenced.
	a.restart(t)
	testkit.WaitFor(t, "old source fenced", 10*time.Second, func() bool {
		mode, _ := a.fs("fs-a1").Mode()
		return mode == engine.ModeFenced && a.cat.protection("fs-a1") == ProtectionDisabled
	})
	if _, err := a.fs("fs-a1").Mkdir(ctx, engine.RootCred, engine.RootIno, "x", engine.SetAttr{}); !errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("fenced source accepted a write: %v", err)
	}
	if _, err := a.m.Describe(ctx, "fs-a1"); !errors.Is(err, ErrReplicationNotFound) {
		t.Fatalf("old source still describes the configuration: %v", err)
	}

	// Failback into the original: only differences travel.
	back, err := b.m.Create(ctx, dst, []DestinationSpec{{Region: a.name, FileSystemID: "fs-a1"}})
	if err != nil {
		t.Fatal(err)
	}
	if back.DestFileSystemID != "fs-a1" || back.OriginalSourceARN != b.cat.arn(dst) {
		t.Fatalf("failback configuration: %+v", back)
	}
	converged(t, b.fs(dst), a.fs("fs-a1"))
	st, _ := b.n.OutboundStatus(back.ID)
	t.Logf("failback: %s, %d bytes shipped", st.Sync.Method, st.ShippedBytes)
	// Second failover, coordinated from the source region: both writable.
	if _, err := b.m.Delete(ctx, dst, DeleteAll); err != nil {
		t.Fatal(err)
	}
	if a.cat.protection("fs-a1") != ProtectionEnabled {
		t.Fatalf("original's protection after the second failover: %s", a.cat.protection("fs-a1"))
	}
	if _, err := a.fs("fs-a1").Mkdir(ctx, engine.RootCred, engine.RootIno, "home", engine.SetAttr{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a fencing would show by now
	if _, err := b.fs(dst).Mkdir(ctx, engine.RootCred, engine.RootIno, "still-writable", engine.SetAttr{}); err != nil {
		t.Fatalf("coordinated delete fenced the source: %v", err)
	}
}

func TestManagerDeleteNeedsDestination(t *testing.T) {
	ctx := context.Background()
	a, b := newManagedPair(t)
	a.cat.add(ctx, t, "fs-a1")
	d, err := a.m.Create(ctx, "fs-a1", []DestinationSpec{{Region: b.name}})
	if err != nil {
		t.Fatal(err)
	}
	converged(t, a.fs("fs-a1"), b.fs(d.DestFileSystemID))
	b.stop()
	t0 := time.Now()
	if _, err := a.m.Delete(ctx, "fs-a1", DeleteAll); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("delete with the destination down: %v", err)
	}
	if el := time.Since(t0); el > 3*time.Second {
		t.Fatalf("failing took %s", el)
	}
	if got := status(t, a.m, "fs-a1"); got.ID != d.ID {
		t.Fatalf("configuration changed by a failed delete: %+v", got)
	}
	// LOCAL_CONFIGURATION_ONLY works without the peer.
	if _, err := a.m.Delete(ctx, "fs-a1", DeleteLocalOnly); err != nil {
		t.Fatal(err)
	}
	if _, err := a.m.Describe(ctx, "fs-a1"); !errors.Is(err, ErrReplicationNotFound) {
		t.Fatalf("after a local delete: %v", err)
	}
}

func TestManagerSameRegion(t *testing.T) {
	ctx := context.Background()
	a, _ := newManagedPair(t)
	a.cat.add(ctx, t, "fs-a1")
	newWorkload(t, 32, func() *engine.FS { return a.fs("fs-a1") }).run(ctx, 30)
	d, err := a.m.Create(ctx, "fs-a1", []DestinationSpec{{Region: a.name, AvailabilityZoneName: "us-east-1b"}})
	if err != nil {
		t.Fatal(err)
	}
	converged(t, a.fs("fs-a1"), a.fs(d.DestFileSystemID))
	ds, err := a.m.Describe(ctx, "")
	if err != nil || len(ds) != 1 {
		t.Fatalf("describe all: %d, %v", len(ds), err)
	}
	if _, err := a.m.Delete(ctx, d.DestFileSystemID, DeleteAll); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"fs-a1", d.DestFileSystemID} {
		if _, err := a.fs(id).Mkdir(ctx, engine.RootCred, engine.RootIno, "w", engine.SetAttr{}); err != nil {
			t.Fatalf("%s after a same-region delete: %v", id, err)
		}
	}
}

// A failback into an original that took writes the replica never got
// keeps those writes in a read-only copy before making it a replica.
func TestManagerFailbackKeepsDivergentCopy(t *testing.T) {
	ctx := context.Background()
	a, b := newManagedPair(t)
	a.cat.add(ctx, t, "fs-a1")
	d, err := a.m.Create(ctx, "fs-a1", []DestinationSpec{{Region: b.name}})
	if err != nil {
		t.Fatal(err)
	}
	dst := d.DestFileSystemID
	converged(t, a.fs("fs-a1"), b.fs(dst))
	// The link goes; the source writes on; the region then goes down.
	a.n.RemoveOutbound(d.ID)
	if _, err := a.fs("fs-a1").Mkdir(ctx, engine.RootCred, engine.RootIno, "lost-in-the-outage", engine.SetAttr{}); err != nil {
		t.Fatal(err)
	}
	a.stop()
	if _, err := b.m.Delete(ctx, dst, DeleteAll); err != nil {
		t.Fatal(err)
	}
	a.restart(t)
	testkit.WaitFor(t, "old source fenced", 10*time.Second, func() bool { return a.cat.protection("fs-a1") == ProtectionDisabled })
	back, err := b.m.Create(ctx, dst, []DestinationSpec{{Region: a.name, FileSystemID: "fs-a1"}})
	if err != nil {
		t.Fatal(err)
	}
	if back.KeptCopy == "" {
		t.Fatal("no copy of the divergent state was kept")
	}
	converged(t, b.fs(dst), a.fs("fs-a1"))
	kept := a.fs(back.KeptCopy)
	if _, err := kept.Lookup(ctx, engine.RootCred, engine.RootIno, "lost-in-the-outage"); err != nil {
		t.Fatalf("kept copy lacks the divergent write: %v", err)
	}
	if _, err := a.fs("fs-a1").Lookup(ctx, engine.RootCred, engine.RootIno, "lost-in-the-outage"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("resynced original still has the divergent write: %v", err)
	}
	if _, err := kept.Mkdir(ctx, engine.RootCred, engine.RootIno, "x", engine.SetAttr{}); !errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("kept copy is writable: %v", err)
	}
}

func TestManagerPlannedFailoverAndLossReport(t *testing.T) {
	ctx := context.Background()
	a, b := newManagedPair(t)
	a.cat.add(ctx, t, "fs-a1")
	w := newWorkload(t, 33, func() *engine.FS { return a.fs("fs-a1") })
	w.run(ctx, 40)
	d, err := a.m.Create(ctx, "fs-a1", []DestinationSpec{{Region: b.name}})
	if err != nil {
		t.Fatal(err)
	}
	converged(t, a.fs("fs-a1"), b.fs(d.DestFileSystemID))
	// Writes keep coming while the planned failover runs.
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			if _, err := a.fs("fs-a1").Mkdir(ctx, engine.RootCred, engine.RootIno, fmt.Sprint("p", n), engine.SetAttr{}); err != nil {
				if errors.Is(err, engine.ErrReadOnly) {
					done <- n
					return
				}
				t.Error(err)
			}
			n++
		}
	}()
	time.Sleep(50 * time.Millisecond)
	p, err := a.m.PlannedFailover(ctx, "fs-a1")
	close(stop)
	acked := <-done
	if err != nil {
		t.Fatal(err)
	}
	if p.Seq != a.rep("fs-a1").DurableSeq() {
		t.Fatalf("planned failover at %d, the source is at %d: changes lost", p.Seq, a.rep("fs-a1").DurableSeq())
	}
	// Every acknowledged mkdir is on the promoted destination.
	for i := range acked {
		if _, err := b.fs(d.DestFileSystemID).Lookup(ctx, engine.RootCred, engine.RootIno, fmt.Sprint("p", i)); err != nil {
			t.Fatalf("acknowledged mkdir p%d missing after the planned failover: %v", i, err)
		}
	}
	t.Logf("%d acknowledged writes during the planned failover, recovery point %d", acked, p.Seq)
	if a.cat.protection("fs-a1") != ProtectionDisabled || b.cat.protection(d.DestFileSystemID) != ProtectionEnabled {
		t.Fatalf("protections after a planned failover: %s, %s", a.cat.protection("fs-a1"), b.cat.protection(d.DestFileSystemID))
	}
	if _, _, _, err := a.m.LossReport(ctx, "fs-a1", 100); !errors.Is(err, ErrReplicationNotFound) {
		t.Fatalf("loss report after a planned failover: %v", err)
	}
}

func TestManagerLossReport(t *testing.T) {
	ctx := context.Background()
	a, b := newManagedPair(t)
	a.cat.add(ctx, t, "fs-a1")
	d, err := a.m.Create(ctx, "fs-a1", []DestinationSpec{{Region: b.name}})
	if err != nil {
		t.Fatal(err)
	}
	converged(t, a.fs("fs-a1"), b.fs(d.DestFileSystemID))
	a.n.RemoveOutbound(d.ID) // the link goes
	for i := range 3 {
		if _, err := a.fs("fs-a1").Mkdir(ctx, engine.RootCred, engine.RootIno, fmt.Sprint("lost", i), engine.SetAttr{}); err != nil {
			t.Fatal(err)
		}
	}
	a.stop()
	p, err := b.m.Delete(ctx, d.DestFileSystemID, DeleteAll)
	if err != nil {
		t.Fatal(err)
	}
	a.restart(t)
	testkit.WaitFor(t, "fenced", 10*time.Second, func() bool { return a.cat.protection("fs-a1") == ProtectionDisabled })
	tomb, losses, complete, err := a.m.LossReport(ctx, "fs-a1", 100)
	if err != nil {
		t.Fatal(err)
	}
	if tomb.RecoverySeq != p.Seq || !complete || len(losses) != 3 || losses[2].Paths[0] != "/lost2" || losses[0].Op != "mkdir" {
		t.Fatalf("loss report: %+v complete=%v %+v", tomb, complete, losses)
	}
}
