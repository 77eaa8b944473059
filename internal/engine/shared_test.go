package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kms/kmstest"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/engine/kv/kvtest"
	"github.com/regionfs/regionfs/internal/engine/kv/pgkv"
	"github.com/regionfs/regionfs/internal/engine/kv/pgkv/pgtest"
	"github.com/regionfs/regionfs/internal/testkit"
)

// A region's nodes on one shared store (Options.Shared): each domain is
// owned by one engine at a time through a lease whose token fences every
// commit of the domain's keys; keys of the whole region (id counters) are
// fenced by the region's lease, held by the node that creates file
// systems.

// regionLeaseName guards the keys of the whole region (KeyDomain false).
const regionLeaseName = "region"

func domLeaseName(dom uint64) string { return fmt.Sprintf("domain/%d", dom) }

// fenceName names the lease that guards key for engine e.
func fenceName(e *Engine, key []byte) string {
	if e == nil {
		return regionLeaseName
	}
	if dom, ok := e.KeyDomain(key); ok {
		return domLeaseName(dom)
	}
	return regionLeaseName
}

// sharedBackend is the shared store of a test region and its leases.
type sharedBackend interface {
	// store returns node's view of the shared store; its commits are
	// fenced with fence(key) (the node's engine, once open).
	store(t *testing.T, node int, fence func(key []byte) string) kv.Store
	// acquire grants lease name to node when nobody holds it.
	acquire(t *testing.T, node int, name string) bool
	// release gives node's lease up (a clean hand-over).
	release(t *testing.T, node int, name string)
	// takeover makes node the holder of name once its holder, which stopped
	// renewing it (killed), lost it: it returns once node holds it.
	takeover(t *testing.T, node int, name string)
	// valid reports whether node surely still holds name.
	valid(node int, name string) bool
}

// memBackend fences a shared kv.Memory like pgkv fences PostgreSQL: the
// check of every guarding lease's token and the write are atomic.
type memBackend struct {
	mem *kv.Memory

	mu     sync.Mutex
	leases map[string]*memLease
	held   map[int]map[string]int64 // node → lease → token granted
}

type memLease struct {
	holder int // -1: nobody
	token  int64
}

func newMemBackend() *memBackend {
	return &memBackend{mem: kv.NewMemory(), leases: map[string]*memLease{}, held: map[int]map[string]int64{}}
}

type memNodeStore struct {
	*kv.Memory
	b     *memBackend
	node  int
	fence func([]byte) string
}

func (s *memNodeStore) NewBatch() kv.Batch {
	return kv.NewIndexedBatch(s.Memory, func(ops []kv.Op, sync bool) error {
		s.b.mu.Lock()
		defer s.b.mu.Unlock()
		for _, op := range ops {
			name := s.fence(op.Key)
			l := s.b.leases[name]
			if tok, ok := s.b.held[s.node][name]; !ok || l == nil || l.token != tok {
				return fmt.Errorf("node %d, lease %s: %w", s.node, name, kv.ErrFenced)
			}
		}
		return kvtest.Commit(s.Memory, ops, sync)
	})
}

func (s *memNodeStore) Close() error { return nil }

func (b *memBackend) store(_ *testing.T, node int, fence func([]byte) string) kv.Store {
	return &memNodeStore{Memory: b.mem, b: b, node: node, fence: fence}
}

func (b *memBackend) acquire(_ *testing.T, node int, name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.leases[name]
	if l == nil {
		l = &memLease{holder: -1}
		b.leases[name] = l
	}
	if l.holder != -1 && l.holder != node {
		return false
	}
	l.holder = node
	l.token++
	if b.held[node] == nil {
		b.held[node] = map[string]int64{}
	}
	b.held[node][name] = l.token
	return true
}

func (b *memBackend) release(_ *testing.T, node int, name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if l := b.leases[name]; l != nil && l.holder == node {
		l.holder = -1
	}
	delete(b.held[node], name)
}

func (b *memBackend) takeover(t *testing.T, node int, name string) {
	b.mu.Lock()
	if l := b.leases[name]; l != nil {
		l.holder = -1 // its lease ran out
	}
	b.mu.Unlock()
	if !b.acquire(t, node, name) {
		t.Fatalf("node %d cannot take %s over", node, name)
	}
}

func (b *memBackend) valid(node int, name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.leases[name]
	tok, ok := b.held[node][name]
	return ok && l != nil && l.holder == node && l.token == tok
}

// pgBackend is a fresh schema of a real PostgreSQL: pgkv's leases and
// fencing, with a short lease time so that a takeover waits for expiry.
type pgBackend struct {
	url, schema string
	ttl         time.Duration

	mu     sync.Mutex
	stores map[int]*pgkv.Store
}

func newPGBackend(t *testing.T) *pgBackend {
	u := pgtest.URL(t)
	sc := pgtest.Schema(t, u)
	return &pgBackend{url: u, schema: sc, ttl: 2 * time.Second, stores: map[int]*pgkv.Store{}}
}

func (b *pgBackend) store(t *testing.T, node int, fence func([]byte) string) kv.Store {
	s, err := pgkv.Open(context.Background(), pgkv.Options{URL: b.url, Schema: b.schema, CreateDatabase: true, FenceKey: fence})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	b.mu.Lock()
	b.stores[node] = s
	b.mu.Unlock()
	return s
}

func (b *pgBackend) node(node int) *pgkv.Store {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stores[node]
}

func holderName(node int) string { return fmt.Sprintf("node-%d", node) }

func (b *pgBackend) acquire(t *testing.T, node int, name string) bool {
	_, ok, err := b.node(node).Acquire(context.Background(), name, holderName(node), b.ttl)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func (b *pgBackend) release(t *testing.T, node int, name string) {
	if err := b.node(node).Release(context.Background(), name); err != nil {
		t.Fatal(err)
	}
}

func (b *pgBackend) takeover(t *testing.T, node int, name string) {
	t.Helper()
	testkit.WaitFor(t, fmt.Sprintf("node %d to take lease %s over", node, name), 30*time.Second, func() bool {
		return b.acquire(t, node, name)
	})
}

func (b *pgBackend) valid(node int, name string) bool {
	// The database is the judge: the node's token is the current one.
	ls, err := b.node(node).Leases(context.Background(), name)
	if err != nil {
		return false
	}
	tok, ok := b.node(node).Held(name)
	for _, l := range ls {
		if l.Name == name {
			return ok && l.Holder == holderName(node) && l.Token == tok
		}
	}
	return false
}

// sharedNode is one node's engine on the shared stores.
type sharedNode struct {
	id  int
	eng atomic.Pointer[Engine]
}

func (n *sharedNode) e() *Engine { return n.eng.Load() }

// openSharedNode opens node id's engine; a leader takes the region's
// lease first (it creates the file systems).
func openSharedNode(t *testing.T, b sharedBackend, id int, d *disk.Mem, leader bool) *sharedNode {
	t.Helper()
	n := &sharedNode{id: id}
	st := b.store(t, id, func(k []byte) string { return fenceName(n.e(), k) })
	if leader && !b.acquire(t, id, regionLeaseName) {
		t.Fatalf("node %d: region lease", id)
	}
	ring := kmstest.Keyring(t, "test-key", "alias/aws/elasticfilesystem")
	e, err := Open(context.Background(), Options{
		KV: st, Disk: d, Keyring: ring, GCInterval: time.Hour, MergeDelay: time.Hour, Shared: true,
		OnFatal: func(err error) { t.Errorf("node %d: fatal storage error: %v", id, err) },
		Claim: func(ctx context.Context, dom uint64) error {
			if !b.acquire(t, id, domLeaseName(dom)) {
				return fmt.Errorf("domain %d is owned by another node", dom)
			}
			return n.e().Attach(ctx, dom)
		},
		Valid: func(dom uint64) bool { return b.valid(id, domLeaseName(dom)) },
	})
	if err != nil {
		t.Fatalf("node %d: open: %v", id, err)
	}
	n.eng.Store(e)
	return n
}

// writeFiles writes count files of size bytes named prefix-i into fs and
// returns what each holds once acknowledged.
func writeFiles(t *testing.T, fs *FS, prefix string, count, size int) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	for i := range count {
		name := fmt.Sprintf("%s-%d", prefix, i)
		data := make([]byte, size)
		rand.Read(data)
		en, err := fs.Create(ctx, RootCred, RootIno, name, CreateGuarded, SetAttr{Mode: u32(0o644)}, 0)
		if err != nil {
			t.Errorf("create %s: %v", name, err)
			return out
		}
		if _, _, err := fs.Write(ctx, RootCred, en.Attr.Ino, 0, data); err != nil {
			t.Errorf("write %s: %v", name, err)
			return out
		}
		out[name] = data
	}
	return out
}

func checkFiles(t *testing.T, fs *FS, want map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	for name, data := range want {
		a, err := fs.Lookup(ctx, RootCred, RootIno, name)
		if err != nil {
			t.Fatalf("acknowledged file %s lost: %v", name, err)
		}
		got, _, _, err := fs.Read(ctx, RootCred, a.Ino, 0, len(data)+1)
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes read, differs from the %d written", name, len(got), len(data))
		}
	}
}

// testSharedDomains: two nodes serve two file systems at once, each the
// owner of one domain; the owner of one is killed (abandoned without
// closing, its lease runs out), the other takes its domain over and finds
// every acknowledged write; the old owner, still running, can no longer
// commit (fenced, without stopping its engine), and nothing it tried is
// visible.
func testSharedDomains(t *testing.T, b sharedBackend) {
	ctx := context.Background()
	d := disk.NewMem()
	n0 := openSharedNode(t, b, 0, d, true)
	defer n0.e().Close()
	one := must(n0.e().CreateFS(ctx, "one", FSOptions{BlockSize: MinBlockSize}))(t)
	if _, err := n0.e().CreateFS(ctx, "two", FSOptions{BlockSize: MinBlockSize}); err != nil {
		t.Fatal(err)
	}
	dom1, _ := n0.e().DomainOf("one")
	dom2, _ := n0.e().DomainOf("two")
	if dom1 == dom2 {
		t.Fatalf("one domain for both file systems: %d", dom1)
	}

	// Node 1 starts and is handed "two" (a balanced share).
	n1 := openSharedNode(t, b, 1, d, false)
	if _, err := n1.e().FS("one"); !errors.Is(err, ErrElsewhere) {
		t.Fatalf("node 1 serves one before owning it: %v", err)
	}
	if err := n0.e().Detach(ctx, dom2); err != nil {
		t.Fatal(err)
	}
	b.release(t, 0, domLeaseName(dom2))
	if _, err := n0.e().FS("two"); !errors.Is(err, ErrElsewhere) {
		t.Fatalf("node 0 still serves two after detaching it: %v", err)
	}
	if !b.acquire(t, 1, domLeaseName(dom2)) {
		t.Fatal("node 1 cannot take the released domain")
	}
	if err := n1.e().Attach(ctx, dom2); err != nil {
		t.Fatal(err)
	}
	two := must(n1.e().FS("two"))(t)
	if got := n1.e().Attached(); len(got) != 1 || got[0] != dom2 {
		t.Fatalf("node 1 attached %v, want [%d]", got, dom2)
	}

	// Both serve at once.
	var wg sync.WaitGroup
	var w1, w2 map[string][]byte
	wg.Add(2)
	go func() { defer wg.Done(); w1 = writeFiles(t, one, "a", 20, 3*MinBlockSize/2) }()
	go func() { defer wg.Done(); w2 = writeFiles(t, two, "b", 20, 3*MinBlockSize/2) }()
	wg.Wait()
	if t.Failed() {
		return
	}

	// Node 1 dies: node 0 takes two over once its lease ran out.
	b.takeover(t, 0, domLeaseName(dom2))
	if err := n0.e().Attach(ctx, dom2); err != nil {
		t.Fatal(err)
	}
	two0 := must(n0.e().FS("two"))(t)
	checkFiles(t, two0, w2)
	checkFiles(t, one, w1)

	// The old owner, paused rather than dead, carries on: fenced.
	_, err := two.Create(ctx, RootCred, RootIno, "stale", CreateGuarded, SetAttr{}, 0)
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("stale owner's create: %v, want ErrFenced", err)
	}
	if err := n1.e().Err(); err != nil {
		t.Fatalf("a fenced commit stopped the stale engine: %v", err)
	}
	if _, err := two0.Lookup(ctx, RootCred, RootIno, "stale"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the stale owner's create is visible: %v", err)
	}
	// The new owner writes on.
	more := writeFiles(t, two0, "c", 3, 100)
	checkFiles(t, two0, more)
	checkFiles(t, two0, w2)
	n1.e().Close() // its clean-detach marker is fenced too
	if _, err := n0.e().CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, two0, w2)
}

func TestSharedDomainsMemory(t *testing.T) { testSharedDomains(t, newMemBackend()) }

func TestSharedDomainsPostgres(t *testing.T) { testSharedDomains(t, newPGBackend(t)) }
