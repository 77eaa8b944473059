package cluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/regionfs/regionfs/internal/engine/kv/pgkv/pgtest"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/cluster"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/controltest"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kms/kmstest"
	"github.com/regionfs/regionfs/internal/engine/kv/pgkv"
	"github.com/regionfs/regionfs/internal/testkit"
)

const ttl = time.Second

// region is a test region: a fresh schema of a real PostgreSQL and a
// shared block disk.
type region struct {
	t      *testing.T
	url    string
	schema string
	disk   *disk.Mem
}

func newRegion(t *testing.T) *region {
	u := pgtest.URL(t)
	return &region{t: t, url: u, schema: pgtest.Schema(t, u), disk: disk.NewMem()}
}

// node is one node of the region: store, manager, engine.
type node struct {
	name    string
	store   *pgkv.Store
	m       *cluster.Manager
	targets *cluster.Targets
	local   *controltest.MountTargets // what the node's NFS servers serve
	cancel  context.CancelFunc
	done    chan struct{}
}

func (n *node) e() *engine.Engine { return n.m.Engine() }

// start opens a node; a leader takes the region's lease (it creates the
// file systems). Its manager runs until stop or kill.
func (r *region) start(name string, leader bool) *node {
	r.t.Helper()
	return r.startWith(name, leader, nil)
}

// startSpread starts node-a, the leader, creates fs-0 to fs-3 on it,
// starts node-b and waits until each node serves two of them.
func (r *region) startSpread(ctx context.Context) (a, b *node, names []string) {
	r.t.Helper()
	a = r.start("node-a", true)
	names = []string{"fs-0", "fs-1", "fs-2", "fs-3"}
	for _, name := range names {
		if _, err := a.e().CreateFS(ctx, name, engine.FSOptions{BlockSize: engine.MinBlockSize}); err != nil {
			r.t.Fatal(err)
		}
	}
	b = r.start("node-b", false)
	waitHeld(r.t, []*node{a, b}, []int{2, 2}, 4)
	return a, b, names
}

// startWith is start with opts changing the manager's options.
func (r *region) startWith(name string, leader bool, opts func(*cluster.Options)) *node {
	t := r.t
	t.Helper()
	ctx := context.Background()
	n := &node{name: name, done: make(chan struct{})}
	var m *cluster.Manager
	st, err := pgkv.Open(ctx, pgkv.Options{URL: r.url, Schema: r.schema, CreateDatabase: true,
		FenceKey: cluster.FenceKey(func() *engine.Engine { return m.Engine() }, "region")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	n.local = controltest.NewMountTargets()
	n.targets = cluster.NewTargets(st, n.local, func() *engine.Engine { return m.Engine() }, nil)
	o := cluster.Options{Store: st, Node: name, Addr: name, TTL: ttl, OnChange: func([]uint64) {
		if err := n.targets.Follow(ctx); err != nil {
			t.Errorf("%s: follow: %v", name, err)
		}
	}}
	if opts != nil {
		opts(&o)
	}
	m = cluster.New(o)
	n.store, n.m = st, m
	if leader {
		if _, ok, err := st.Acquire(ctx, "region", name, time.Hour); err != nil || !ok {
			t.Fatalf("%s: region lease: %v %v", name, ok, err)
		}
	}
	e, err := engine.Open(ctx, engine.Options{
		KV: st, Disk: r.disk, Keyring: kmstest.Keyring(t, "test-key", "alias/aws/elasticfilesystem"),
		GCInterval: time.Hour, MergeDelay: time.Hour, Shared: true, Claim: m.Claim, Valid: m.Valid,
		OnFatal: func(err error) { t.Errorf("%s: fatal storage error: %v", name, err) },
	})
	if err != nil {
		t.Fatalf("%s: open: %v", name, err)
	}
	m.SetEngine(e)
	rctx, cancel := context.WithCancel(ctx)
	n.cancel = cancel
	go func() {
		defer close(n.done)
		if err := m.Run(rctx); err != nil {
			t.Errorf("%s: run: %v", name, err)
		}
	}()
	t.Cleanup(func() {
		n.kill()
		e.Close()
	})
	return n
}

// kill stops the node's manager without giving anything up (kill -9: its
// leases run out; its engine, paused, is left running).
func (n *node) kill() {
	n.cancel()
	<-n.done
}

// stop is a clean stop: every domain handed over at once.
func (n *node) stop() {
	n.kill()
	n.m.Release(context.Background())
}

// waitHeld waits until each node holds want[i] domains and together all
// of them once.
func waitHeld(t *testing.T, nodes []*node, want []int, total int) time.Duration {
	t.Helper()
	start := time.Now()
	var got [][]uint64
	ok := testkit.Until(30*time.Second, func() bool {
		got = got[:0]
		all := map[uint64]int{}
		for i, n := range nodes {
			h := n.m.Held()
			got = append(got, h)
			at := n.e().Attached()
			if len(h) != want[i] || !slices.Equal(h, at) {
				return false
			}
			for _, d := range h {
				all[d]++
			}
		}
		if len(all) != total {
			return false
		}
		for _, c := range all {
			if c != 1 {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("domains held %v, want counts %v of %d", got, want, total)
	}
	return time.Since(start)
}

func writeFile(t *testing.T, fs *engine.FS, name string, size int) []byte {
	t.Helper()
	ctx := context.Background()
	data := make([]byte, size)
	rand.Read(data)
	en, err := fs.Create(ctx, engine.RootCred, engine.RootIno, name, engine.CreateGuarded, engine.SetAttr{}, 0)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if _, _, err := fs.Write(ctx, engine.RootCred, en.Attr.Ino, 0, data); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	return data
}

func readFile(t *testing.T, fs *engine.FS, name string, want []byte) {
	t.Helper()
	ctx := context.Background()
	a, err := fs.Lookup(ctx, engine.RootCred, engine.RootIno, name)
	if err != nil {
		t.Fatalf("acknowledged file %s lost: %v", name, err)
	}
	got, _, _, err := fs.Read(ctx, engine.RootCred, a.Ino, 0, len(want)+1)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: read %d bytes (%v), want the %d written", name, len(got), err, len(want))
	}
}

// owner returns the node serving the file system called name.
func owner(t *testing.T, nodes []*node, name string) (*node, *engine.FS) {
	t.Helper()
	n, fs, err := ownerOf(nodes, name)
	if err != nil {
		t.Fatal(err)
	}
	return n, fs
}

func ownerOf(nodes []*node, name string) (*node, *engine.FS, error) {
	for _, n := range nodes {
		fs, err := n.e().FS(name)
		if err == nil {
			return n, fs, nil
		}
		if !errors.Is(err, engine.ErrElsewhere) {
			return nil, nil, fmt.Errorf("%s on %s: %w", name, n.name, err)
		}
	}
	return nil, nil, fmt.Errorf("nobody serves %s", name)
}

// TestSpreadKillDrain: four file systems spread two and two over two
// nodes, both serving at once; one node killed mid-write, the other takes
// its file systems over within the lease time with every acknowledged
// write, and the killed node, still running, is fenced; a restarted node
// gets its share back; a drained node hands everything over, and gets its
// share again once the drain is lifted.
func TestSpreadKillDrain(t *testing.T) {
	r := newRegion(t)
	ctx := context.Background()
	a, b, names := r.startSpread(ctx)
	nodes := []*node{a, b}

	// Both serve at once: every file system gets writes from its owner.
	written := map[string]map[string][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range names {
		_, fs := owner(t, nodes, name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := map[string][]byte{}
			for i := range 5 {
				f := fmt.Sprintf("f%d", i)
				w[f] = writeFile(t, fs, f, engine.MinBlockSize+100)
			}
			mu.Lock()
			written[name] = w
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// b dies while writing; its file systems move to a.
	var onB []string
	var bFS []*engine.FS
	for _, name := range names {
		if n, fs := owner(t, nodes, name); n == b {
			onB, bFS = append(onB, name), append(bFS, fs)
		}
	}
	stopWrites := make(chan struct{})
	acked := make(chan map[string][]byte, 1)
	var nAcked atomic.Int64
	var writerEnded atomic.Bool
	go func() {
		w := map[string][]byte{}
		defer func() { writerEnded.Store(true); acked <- w }()
		for i := 0; ; i++ {
			select {
			case <-stopWrites:
				return
			default:
			}
			f := fmt.Sprintf("late%d", i)
			data := make([]byte, 3000)
			rand.Read(data)
			en, err := bFS[0].Create(ctx, engine.RootCred, engine.RootIno, f, engine.CreateGuarded, engine.SetAttr{}, 0)
			if err != nil {
				if !errors.Is(err, engine.ErrFenced) {
					t.Errorf("stale create: %v, want ErrFenced", err)
				}
				return
			}
			if _, _, err := bFS[0].Write(ctx, engine.RootCred, en.Attr.Ino, 0, data); err != nil {
				if !errors.Is(err, engine.ErrFenced) {
					t.Errorf("stale write: %v, want ErrFenced", err)
				}
				return
			}
			w[f] = data
			nAcked.Add(1)
		}
	}()
	testkit.WaitFor(t, "some writes acknowledged before the kill", 30*time.Second, func() bool {
		return nAcked.Load() >= 5 || writerEnded.Load()
	})
	b.kill()
	took := waitHeld(t, []*node{a}, []int{4}, 4)
	t.Logf("takeover of %d file systems after the kill: %v (lease %v)", len(onB), took, ttl)
	if took > ttl+ttl/3+2*time.Second {
		t.Errorf("takeover took %v, lease %v", took, ttl)
	}
	close(stopWrites)
	late := <-acked
	t.Logf("%d writes acknowledged by the node before it was killed", len(late))
	if len(late) == 0 {
		t.Fatal("no write acknowledged before the kill: the test proves nothing")
	}
	_, fs := owner(t, []*node{a}, onB[0])
	for f, data := range late {
		readFile(t, fs, f, data)
	}
	for _, name := range names {
		_, fs := owner(t, []*node{a}, name)
		for f, data := range written[name] {
			readFile(t, fs, f, data)
		}
	}
	// The killed node, still running, is fenced and not stopped.
	if _, err := bFS[0].Create(ctx, engine.RootCred, engine.RootIno, "stale", engine.CreateGuarded, engine.SetAttr{}, 0); !errors.Is(err, engine.ErrFenced) {
		t.Fatalf("stale owner's create: %v, want ErrFenced", err)
	}
	if err := b.e().Err(); err != nil {
		t.Fatalf("fenced commits stopped the stale engine: %v", err)
	}
	if _, err := fs.Lookup(ctx, engine.RootCred, engine.RootIno, "stale"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("the stale owner's create is visible: %v", err)
	}

	// A new node joins: the share is two again.
	c := r.start("node-c", false)
	nodes = []*node{a, c}
	waitHeld(t, nodes, []int{2, 2}, 4)

	// c drained: a takes everything; lifted: two and two.
	if ok, err := c.store.SetDraining(ctx, "node-c", true); err != nil || !ok {
		t.Fatal(ok, err)
	}
	waitHeld(t, nodes, []int{4, 0}, 4)
	if ok, err := c.store.SetDraining(ctx, "node-c", false); err != nil || !ok {
		t.Fatal(ok, err)
	}
	waitHeld(t, nodes, []int{2, 2}, 4)

	// A clean stop hands over at once, nothing lost.
	c.stop()
	waitHeld(t, []*node{a}, []int{4}, 4)
	for _, name := range names {
		_, fs := owner(t, []*node{a}, name)
		for f, data := range written[name] {
			readFile(t, fs, f, data)
		}
	}
}

// TestTargetsFollowOwner: the control plane (on the leader) starts mount
// targets of file systems spread over two nodes; each is served by the
// node that serves its file system, with that node's engine file system;
// when that node dies, the survivor serves them; a stopped mount target is
// served nowhere.
func TestTargetsFollowOwner(t *testing.T) {
	r := newRegion(t)
	ctx := context.Background()
	a, b, names := r.startSpread(ctx)
	for i, name := range names {
		// As control's specLocked builds it: FS nil when served elsewhere.
		var fs *engine.FS
		if f, err := a.e().FS(name); err == nil {
			fs = f
		}
		spec := control.MountTargetSpec{ID: fmt.Sprintf("fsmt-%d", i), FileSystemID: name, FS: fs,
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(10 + i)}), 2049), ReadOnly: i == 3}
		if err := a.targets.Start(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	// followed checks that each mount target is served exactly by the node
	// serving its file system, with its engine file system.
	followed := func(nodes []*node, ids []int) error {
		for _, i := range ids {
			id, name := fmt.Sprintf("fsmt-%d", i), names[i]
			n, fs, err := ownerOf(nodes, name)
			if err != nil {
				return err
			}
			for _, o := range nodes {
				s, ok := o.local.Spec(id)
				switch {
				case o == n && !ok:
					return fmt.Errorf("%s: not served by %s, which serves %s", id, o.name, name)
				case o == n && (s.FS != fs || s.ReadOnly != (i == 3) || s.Addr.Port() != 2049):
					return fmt.Errorf("%s on %s: spec %+v", id, o.name, s)
				case o != n && ok:
					return fmt.Errorf("%s: served by %s, but %s serves %s", id, o.name, n.name, name)
				}
			}
		}
		return nil
	}
	testkit.Eventually(t, 30*time.Second, func() error { return followed([]*node{a, b}, []int{0, 1, 2, 3}) })
	if a.local.Serving() != 2 || b.local.Serving() != 2 {
		t.Fatalf("served: a %d, b %d, want 2 and 2", a.local.Serving(), b.local.Serving())
	}
	b.kill()
	testkit.Eventually(t, 30*time.Second, func() error { return followed([]*node{a}, []int{0, 1, 2, 3}) })
	if err := a.targets.Stop(ctx, "fsmt-0"); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.local.Spec("fsmt-0"); ok {
		t.Fatal("a stopped mount target is still served")
	}
	// A node joining later does not serve it either.
	c := r.start("node-c", false)
	waitHeld(t, []*node{a, c}, []int{2, 2}, 4)
	testkit.Eventually(t, 30*time.Second, func() error { return followed([]*node{a, c}, []int{1, 2, 3}) })
	for _, n := range []*node{a, c} {
		if _, ok := n.local.Spec("fsmt-0"); ok {
			t.Fatalf("the stopped mount target is served by %s", n.name)
		}
	}
}

// leaderFlag is who leads the test region (the holder of the region's
// lease in regionfs), and the domains pinned to the leader.
type leaderFlag struct {
	mu     sync.Mutex
	leader string
	pinned map[uint64]bool
}

func (l *leaderFlag) set(name string) { l.mu.Lock(); l.leader = name; l.mu.Unlock() }

func (l *leaderFlag) pin(doms ...uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range doms {
		l.pinned[d] = true
	}
}

func (l *leaderFlag) opts(name string) func(*cluster.Options) {
	return func(o *cluster.Options) {
		o.Leader = func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.leader == name }
		o.Pinned = func(context.Context) (map[uint64]bool, error) {
			l.mu.Lock()
			defer l.mu.Unlock()
			out := map[uint64]bool{}
			for d := range l.pinned {
				out[d] = true
			}
			return out, nil
		}
	}
}

// domainOf returns the domain of the file system called name.
func domainOf(t *testing.T, e *engine.Engine, name string) uint64 {
	t.Helper()
	d, ok := e.DomainOf(name)
	if !ok {
		t.Fatalf("no domain for %s", name)
	}
	return d
}

// TestPinnedFollowLeader: the domains of replicated file systems are
// pinned to the leader (the node running the replication endpoint): it
// takes those another node held (reserved, handed over at that node's
// next round), the others share out the rest; Pull brings a domain over
// at once; when the leader dies, the next leader takes the pinned
// domains over, and the other node takes none of them meanwhile.
func TestPinnedFollowLeader(t *testing.T) {
	r := newRegion(t)
	ctx := context.Background()
	lf := &leaderFlag{pinned: map[uint64]bool{}}
	lf.set("node-a")
	a := r.startWith("node-a", true, lf.opts("node-a"))
	names := []string{"fs-0", "fs-1", "fs-2", "fs-3", "fs-4"}
	for _, name := range names {
		if _, err := a.e().CreateFS(ctx, name, engine.FSOptions{BlockSize: engine.MinBlockSize}); err != nil {
			t.Fatal(err)
		}
	}
	b := r.startWith("node-b", false, lf.opts("node-b"))
	nodes := []*node{a, b}
	waitHeld(t, nodes, []int{3, 2}, 5)

	// Two of b's file systems are pinned: they move to a; a gives up
	// what it holds beyond its share of the other three.
	var onB []string
	for _, name := range names {
		if n, _ := owner(t, nodes, name); n == b {
			onB = append(onB, name)
		}
	}
	pinned := map[string]bool{}
	for _, name := range onB {
		pinned[name] = true
		lf.pin(domainOf(t, a.e(), name))
	}
	// a holds the 2 pinned and 2 of the other 3 (⌈3/2⌉); b the third.
	waitHeld(t, nodes, []int{4, 1}, 5)
	for name := range pinned {
		if n, _ := owner(t, nodes, name); n != a {
			t.Fatalf("pinned %s is on %s", name, n.name)
		}
	}

	// Pull: the leader brings one of b's domains at once.
	var last string
	for _, name := range names {
		if n, _ := owner(t, nodes, name); n == b {
			last = name
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	start := time.Now()
	err := a.m.Pull(pctx, domainOf(t, a.e(), last))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pulled %s over in %v (lease %v)", last, time.Since(start).Round(time.Millisecond), ttl)
	if n, _ := owner(t, nodes, last); n != a {
		t.Fatalf("pulled %s is on %s", last, n.name)
	}
	// Its replication is recorded: pinned on every node now.
	pinned[last] = true
	lf.pin(domainOf(t, a.e(), last))
	waitHeld(t, nodes, []int{4, 1}, 5) // 3 pinned, 1 of the other 2

	// The leader dies: b takes no pinned domain until it leads, then all.
	a.kill()
	testkit.Eventually(t, 30*time.Second, func() error {
		if got := len(b.m.Held()); got != 2 {
			return fmt.Errorf("node-b holds %d domains, want the 2 not pinned", got)
		}
		return nil
	})
	time.Sleep(2 * ttl) // a's leases have run out: b still takes no pinned domain
	for name := range pinned {
		if _, err := b.e().FS(name); !errors.Is(err, engine.ErrElsewhere) {
			t.Fatalf("node-b, not the leader, serves pinned %s: %v", name, err)
		}
	}
	lf.set("node-b")
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.m.Settle(sctx); err != nil {
		t.Fatal(err)
	}
	for name := range pinned {
		if _, err := b.e().FS(name); err != nil {
			t.Fatalf("the new leader does not serve pinned %s: %v", name, err)
		}
	}
	waitHeld(t, []*node{b}, []int{5}, 5)
}
