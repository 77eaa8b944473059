package pgkv_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/engine/kv/kvtest"
	"github.com/regionfs/regionfs/internal/engine/kv/pgkv"
	"github.com/regionfs/regionfs/internal/engine/kv/pgkv/pgtest"
	"github.com/regionfs/regionfs/internal/testkit"
)

func open(t testing.TB, o pgkv.Options) *pgkv.Store {
	t.Helper()
	o.CreateDatabase = true
	s, err := pgkv.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openFenced opens a store of schema sc fenced by prefix, as a node of a
// region would; it is closed when the test ends.
func openFenced(t testing.TB, url, sc string) *pgkv.Store {
	t.Helper()
	s := open(t, pgkv.Options{URL: url, Schema: sc, FenceKey: fenceByPrefix})
	t.Cleanup(func() { s.Close() })
	return s
}

// fencedStores opens n stores (openFenced) of one fresh schema.
func fencedStores(t testing.TB, n int) (url, sc string, stores []*pgkv.Store) {
	t.Helper()
	url = pgtest.URL(t)
	sc = pgtest.Schema(t, url)
	for range n {
		stores = append(stores, openFenced(t, url, sc))
	}
	return url, sc, stores
}

func TestConformance(t *testing.T) {
	url := pgtest.URL(t)
	kvtest.Run(t, func(t *testing.T) kv.Store {
		return open(t, pgkv.Options{URL: url, Schema: pgtest.Schema(t, url)})
	})
}

func TestSealedConformance(t *testing.T) {
	url := pgtest.URL(t)
	a := testAEAD(t)
	kvtest.Run(t, func(t *testing.T) kv.Store {
		return kv.NewSealed(open(t, pgkv.Options{URL: url, Schema: pgtest.Schema(t, url)}), a)
	})
}

func fenceByPrefix(key []byte) string {
	if len(key) > 0 && key[0] == 'f' {
		return "fs/" + string(key[1:2])
	}
	return ""
}

func set(s kv.Store, k, v string) error {
	b := s.NewBatch()
	defer b.Close()
	b.Set([]byte(k), []byte(v))
	return b.Commit(true)
}

func TestLeases(t *testing.T) {
	url, sc, st := fencedStores(t, 2)
	a, b := st[0], st[1]
	ctx := context.Background()

	if err := set(a, "f1/x", "a"); !errors.Is(err, pgkv.ErrFenced) {
		t.Fatalf("commit without the lease: %v", err)
	}
	if err := set(a, "other", "free"); err != nil {
		t.Fatalf("unguarded key: %v", err)
	}
	la, ok, err := a.Acquire(ctx, "fs/1", "node-a", time.Minute)
	if err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	if err := set(a, "f1/x", "a"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.Acquire(ctx, "fs/1", "node-b", time.Minute); err != nil || ok {
		t.Fatalf("second holder granted a running lease: %v %v", ok, err)
	}
	if err := set(b, "f1/x", "b"); !errors.Is(err, pgkv.ErrFenced) {
		t.Fatalf("non-holder commit: %v", err)
	}
	if _, err := a.Renew(ctx, "fs/1", time.Minute); err != nil {
		t.Fatal(err)
	}
	// Handing over: a releases, b takes it at once with a larger token.
	if err := a.Release(ctx, "fs/1"); err != nil {
		t.Fatal(err)
	}
	lb, ok, err := b.Acquire(ctx, "fs/1", "node-b", time.Minute)
	if err != nil || !ok || lb.Token <= la.Token {
		t.Fatalf("acquire after release: %+v %v %v", lb, ok, err)
	}
	if err := set(a, "f1/x", "a2"); !errors.Is(err, pgkv.ErrFenced) {
		t.Fatalf("released holder commit: %v", err)
	}
	if err := set(b, "f1/x", "b"); err != nil {
		t.Fatal(err)
	}
	ls, err := a.Leases(ctx, "fs/")
	if err != nil || len(ls) != 1 || ls[0].Holder != "node-b" || ls[0].Token != lb.Token || ls[0].Expired {
		t.Fatalf("leases: %+v %v", ls, err)
	}
	// A holder restarting takes its own running lease back, bumping the
	// token: its previous incarnation is fenced.
	old := openFenced(t, url, sc)
	if _, ok, _ := old.Acquire(ctx, "fs/2", "node-c", time.Minute); !ok {
		t.Fatal("acquire fs/2")
	}
	restarted := openFenced(t, url, sc)
	if _, ok, _ := restarted.Acquire(ctx, "fs/2", "node-c", time.Minute); !ok {
		t.Fatal("restarted holder could not take its lease back")
	}
	if err := set(old, "f2/x", "old"); !errors.Is(err, pgkv.ErrFenced) {
		t.Fatalf("previous incarnation commit: %v", err)
	}
	if _, err := old.Renew(ctx, "fs/2", time.Minute); !errors.Is(err, pgkv.ErrFenced) {
		t.Fatalf("previous incarnation renew: %v", err)
	}
}

// TestStaleOwnerCannotCommit: an owner that stopped renewing keeps
// committing while another node takes its expired lease over; from the
// takeover on, none of its commits lands.
func TestStaleOwnerCannotCommit(t *testing.T) {
	_, _, st := fencedStores(t, 2)
	stale, next := st[0], st[1]
	ctx := context.Background()
	if _, ok, err := stale.Acquire(ctx, "fs/1", "stale", 300*time.Millisecond); err != nil || !ok {
		t.Fatal(ok, err)
	}
	var fenced atomic.Bool
	var wg sync.WaitGroup
	var lastOK atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := int64(1); ; i++ {
			err := set(stale, "f1/counter", fmt.Sprint(i))
			if errors.Is(err, pgkv.ErrFenced) {
				fenced.Store(true)
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			lastOK.Store(i)
		}
	}()
	var l pgkv.Lease
	testkit.WaitFor(t, "the lease to expire", 20*time.Second, func() bool {
		var ok bool
		var err error
		if l, ok, err = next.Acquire(ctx, "fs/1", "next", time.Minute); err != nil {
			t.Fatal(err)
		}
		return ok
	})
	seen, err := next.Get([]byte("f1/counter"))
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !fenced.Load() {
		t.Fatal("stale owner never fenced")
	}
	final, _ := next.Get([]byte("f1/counter"))
	if string(final) != string(seen) {
		t.Fatalf("stale owner committed after the takeover (token %d): saw %s at takeover, %s after", l.Token, seen, final)
	}
	if fmt.Sprint(lastOK.Load()) != string(seen) {
		t.Fatalf("last acknowledged commit %d, value at takeover %s", lastOK.Load(), seen)
	}
}

// TestConnectionsKilledUnderLoad: every backend of the store is
// terminated again and again while writers commit; every acknowledged
// commit is there afterwards, exactly once.
func TestConnectionsKilledUnderLoad(t *testing.T) {
	url := pgtest.URL(t)
	sc := pgtest.Schema(t, url)
	s := open(t, pgkv.Options{URL: url, Schema: sc, RetryFor: 30 * time.Second})
	defer s.Close()
	ctx := context.Background()
	killer, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(ctx)
	stop := make(chan struct{})
	var kills atomic.Int64
	var kwg sync.WaitGroup
	kwg.Add(1)
	go func() {
		defer kwg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			var n int64
			if err := killer.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE application_name = 'regionfs' AND pid <> pg_backend_pid() AND datname = current_database()`).Scan(&n); err == nil {
				kills.Add(n)
			}
		}
	}()
	// Each writer commits at least each times, and on until a backend was
	// terminated (an idle machine commits 160 times in less than the
	// killer's first 200 ms).
	const writers, each, most = 4, 40, 5000
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	var done [writers]int
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < most && (i < each || kills.Load() == 0); i++ {
				done[w] = i + 1
				b := s.NewBatch()
				b.Set(fmt.Appendf(nil, "w%d/%03d", w, i), []byte("v"))
				b.Set(fmt.Appendf(nil, "w%d/last", w), fmt.Appendf(nil, "%03d", i))
				err := b.Commit(true)
				b.Close()
				if err != nil {
					errs <- fmt.Errorf("writer %d commit %d: %w", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	kwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if kills.Load() == 0 {
		t.Fatal("no connection was killed: the test tested nothing")
	}
	for w := range writers {
		it, err := s.NewIter(fmt.Appendf(nil, "w%d/", w), fmt.Appendf(nil, "w%d/999", w))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			n++
		}
		it.Close()
		if n != done[w] {
			t.Fatalf("writer %d: %d keys, want %d", w, n, done[w])
		}
	}
	t.Logf("%d backends terminated during %v commits", kills.Load(), done)
}

func testAEAD(t testing.TB) func([]byte) cipher.AEAD {
	b, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return func([]byte) cipher.AEAD { return g }
}

// TestLeaseReservation: a lease reserved for a node can be acquired by
// that node only (even once it expired or was released), its holder learns
// of the reservation from RenewAll, and a grant clears it.
func TestLeaseReservation(t *testing.T) {
	_, _, st := fencedStores(t, 3)
	a, b, c := st[0], st[1], st[2]
	ctx := context.Background()

	// A reservation of a lease nobody holds yet creates it, unheld.
	if err := a.Reserve(ctx, "fs/1", "node-a"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.Acquire(ctx, "fs/1", "node-b", time.Minute); err != nil || ok {
		t.Fatalf("node-b acquired a lease reserved for node-a: %v %v", ok, err)
	}
	la, ok, err := a.Acquire(ctx, "fs/1", "node-a", time.Minute)
	if err != nil || !ok {
		t.Fatalf("node-a: %v %v", ok, err)
	}
	if ls, _ := a.Leases(ctx, "fs/1"); len(ls) != 1 || ls[0].Want != "" || ls[0].Holder != "node-a" {
		t.Fatalf("a grant did not clear the reservation: %+v", ls)
	}
	r, err := a.RenewAll(ctx, "", time.Minute)
	if err != nil || len(r.Lost) != 0 || len(r.Held) != 1 || r.Held["fs/1"] != "" {
		t.Fatalf("renew: %+v %v", r, err)
	}
	// The lease is reserved for node-b: node-a learns it, node-c cannot
	// take it even once node-a released it, node-b can.
	if err := c.Reserve(ctx, "fs/1", "node-b"); err != nil {
		t.Fatal(err)
	}
	if r, err = a.RenewAll(ctx, "", time.Minute); err != nil || r.Held["fs/1"] != "node-b" {
		t.Fatalf("holder not told of the reservation: %+v %v", r, err)
	}
	if err := a.Release(ctx, "fs/1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.Acquire(ctx, "fs/1", "node-c", time.Minute); err != nil || ok {
		t.Fatalf("node-c acquired a lease reserved for node-b: %v %v", ok, err)
	}
	lb, ok, err := b.Acquire(ctx, "fs/1", "node-b", time.Minute)
	if err != nil || !ok || lb.Token <= la.Token {
		t.Fatalf("node-b: %+v %v %v", lb, ok, err)
	}
	if err := set(b, "f1/x", "b"); err != nil {
		t.Fatal(err)
	}
	if err := set(a, "f1/x", "a"); !errors.Is(err, pgkv.ErrFenced) || !errors.Is(err, kv.ErrFenced) {
		t.Fatalf("commit after the handover: %v", err)
	}
	// DropLease leaves a held lease alone.
	if err := c.DropLease(ctx, "fs/1"); err != nil {
		t.Fatal(err)
	}
	if ls, _ := c.Leases(ctx, "fs/1"); len(ls) != 1 {
		t.Fatalf("a held lease was dropped: %+v", ls)
	}
}

// TestRenewAll: leases taken over since the last renewal are reported lost
// (and their commits fenced); an expired lease nobody took is renewed.
func TestRenewAll(t *testing.T) {
	_, _, st := fencedStores(t, 2)
	a, b := st[0], st[1]
	ctx := context.Background()
	for _, n := range []string{"fs/1", "fs/2", "fs/3"} {
		if _, ok, err := a.Acquire(ctx, n, "node-a", 200*time.Millisecond); err != nil || !ok {
			t.Fatal(n, ok, err)
		}
	}
	time.Sleep(300 * time.Millisecond) // all three expire
	if _, ok, err := b.Acquire(ctx, "fs/2", "node-b", time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}
	r, err := a.RenewAll(ctx, "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Held["fs/1"]; !ok || len(r.Held) != 2 || len(r.Lost) != 1 || r.Lost[0] != "fs/2" {
		t.Fatalf("renewal: %+v", r)
	}
	if _, held := a.Held("fs/2"); held {
		t.Fatal("a lost lease is still held")
	}
	if err := set(a, "f1/x", "a"); err != nil {
		t.Fatalf("renewed after expiring: %v", err)
	}
	if err := set(a, "f2/x", "a"); !errors.Is(err, pgkv.ErrFenced) {
		t.Fatalf("commit under a lost lease: %v", err)
	}
	ls, err := b.Leases(ctx, "fs/")
	if err != nil || len(ls) != 3 || ls[0].Expired || ls[2].Expired {
		t.Fatalf("leases after renewal: %+v %v", ls, err)
	}
}

func TestNodes(t *testing.T) {
	url := pgtest.URL(t)
	sc := pgtest.Schema(t, url)
	ctx := context.Background()
	s := open(t, pgkv.Options{URL: url, Schema: sc})
	defer s.Close()
	for _, n := range []string{"node-b", "node-a"} {
		if err := s.Announce(ctx, n, n+":7443"); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := s.SetDraining(ctx, "node-b", true); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ok, err := s.SetDraining(ctx, "node-x", true); err != nil || ok {
		t.Fatalf("unknown node drained: %v %v", ok, err)
	}
	// A restart keeps the drain flag; a heartbeat moves seen.
	if err := s.Announce(ctx, "node-b", "node-b:7444"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // node-b's seen ages
	if _, err := s.RenewAll(ctx, "node-a", time.Minute); err != nil {
		t.Fatal(err)
	}
	ns, err := s.Nodes(ctx)
	if err != nil || len(ns) != 2 {
		t.Fatal(ns, err)
	}
	if ns[0].Name != "node-a" || ns[0].Draining || ns[0].Age > ns[1].Age || ns[0].Age < 0 {
		t.Fatalf("node-a: %+v (node-b %+v)", ns[0], ns[1])
	}
	if ns[1].Name != "node-b" || !ns[1].Draining || ns[1].Addr != "node-b:7444" || ns[1].Age < 50*time.Millisecond {
		t.Fatalf("node-b: %+v", ns[1])
	}
	// A heartbeat reports the drain flag and moves seen: node-b's is now
	// the later one.
	if d, known, err := s.Heartbeat(ctx, "node-a"); err != nil || !known || d {
		t.Fatalf("heartbeat of node-a: draining %v, known %v, %v", d, known, err)
	}
	time.Sleep(10 * time.Millisecond) // the two heartbeats' times differ
	if d, known, err := s.Heartbeat(ctx, "node-b"); err != nil || !known || !d {
		t.Fatalf("heartbeat of the draining node-b: draining %v, known %v, %v", d, known, err)
	}
	if ns, err := s.Nodes(ctx); err != nil || ns[1].Age >= ns[0].Age {
		t.Fatalf("node-b after its heartbeat: %+v %v", ns, err)
	}
	if err := s.Depart(ctx, "node-b"); err != nil {
		t.Fatal(err)
	}
	if _, known, err := s.Heartbeat(ctx, "node-b"); err != nil || known {
		t.Fatalf("heartbeat of a departed node: known %v, %v", known, err)
	}
	if ns, err := s.Nodes(ctx); err != nil || len(ns) != 1 {
		t.Fatalf("after departure: %+v %v", ns, err)
	}
}

// TestConcurrentCreateDatabase: the nodes of a new region start at the
// same time and all create its database; every one of them opens it
// (before the fix one of them failed with a unique violation in
// pg_database: two CREATE DATABASE at the same time do not both say
// 42P04).
func TestConcurrentCreateDatabase(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		b := make([]byte, 6)
		rand.Read(b)
		db := "t_create_" + hex.EncodeToString(b)
		dbURL := strings.Replace(url, "/"+cfg.Database+"?", "/"+db+"?", 1)
		if dbURL == url {
			t.Fatalf("cannot put another database name into %s", url)
		}
		const nodes = 4
		errs := make(chan error, nodes)
		start := make(chan struct{})
		for range nodes {
			go func() {
				<-start
				s, err := pgkv.Open(ctx, pgkv.Options{URL: dbURL, CreateDatabase: true})
				if err == nil {
					s.Close()
				}
				errs <- err
			}()
		}
		close(start)
		for range nodes {
			if err := <-errs; err != nil {
				t.Errorf("round %d: %v", round, err)
			}
		}
		admin := cfg.Copy()
		admin.Database = "postgres"
		c, err := pgx.ConnectConfig(ctx, admin)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", db, err)
		}
		c.Close(ctx)
	}
}
