// Package kvtest is the conformance suite of the kv.Store contract. Every
// implementation runs it: kvtest.Run(t, open).
package kvtest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Commit writes ops to s in one batch, in order: a store's kv.CommitFunc
// for tests that keep a kv.Memory behind a kv.NewIndexedBatch.
func Commit(s kv.Store, ops []kv.Op, sync bool) error {
	b := s.NewBatch()
	defer b.Close()
	for _, op := range ops {
		switch op.Kind {
		case kv.OpSet:
			b.Set(op.Key, op.Value)
		case kv.OpDelete:
			b.Delete(op.Key)
		case kv.OpDeleteRange:
			b.DeleteRange(op.Key, op.Hi)
		}
	}
	return b.Commit(sync)
}

// Run runs the suite; open returns a fresh, empty store (closed by Run).
func Run(t *testing.T, open func(t *testing.T) kv.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, s kv.Store)
	}{
		{"GetSetDelete", testGetSetDelete},
		{"ValuesAreCopies", testCopies},
		{"BinaryKeys", testBinaryKeys},
		{"IteratorBounds", testBounds},
		{"IteratorMoves", testMoves},
		{"DeleteRange", testDeleteRange},
		{"BatchReadYourWrites", testBatchReads},
		{"BatchInvisibleUntilCommit", testBatchInvisible},
		{"BatchCommitOnce", testCommitOnce},
		{"SnapshotIsolation", testSnapshot},
		{"IteratorIsPointInTime", testIterPointInTime},
		{"Atomicity", testAtomicity},
		{"LargeValues", testLarge},
		{"ManyKeysOrdered", testMany},
		{"EmptyValue", testEmptyValue},
		{"CommitAsync", testCommitAsync},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			tc.f(t, s)
		})
	}
}

// commit fills one batch and commits it synced.
func commit(t *testing.T, s kv.Store, fill func(b kv.Batch)) {
	t.Helper()
	b := s.NewBatch()
	defer b.Close()
	fill(b)
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
}

// iterAll returns an iterator over all of s (the caller closes it before
// the store).
func iterAll(t *testing.T, s kv.Store) kv.Iterator {
	t.Helper()
	it, err := s.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func put(t *testing.T, s kv.Store, kvs ...string) {
	t.Helper()
	commit(t, s, func(b kv.Batch) {
		for i := 0; i+1 < len(kvs); i += 2 {
			b.Set([]byte(kvs[i]), []byte(kvs[i+1]))
		}
	})
}

func del(t *testing.T, s kv.Store, keys ...string) {
	t.Helper()
	commit(t, s, func(b kv.Batch) {
		for _, k := range keys {
			b.Delete([]byte(k))
		}
	})
}

func get(t *testing.T, r kv.Reader, k string) (string, bool) {
	t.Helper()
	v, err := r.Get([]byte(k))
	if errors.Is(err, kv.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("get %q: %v", k, err)
	}
	return string(v), true
}

// scan lists key=value pairs of [lo, hi) forward, and checks the backward
// scan is the reverse.
func scan(t *testing.T, r kv.Reader, lo, hi string) []string {
	t.Helper()
	var blo, bhi []byte
	if lo != "" {
		blo = []byte(lo)
	}
	if hi != "" {
		bhi = []byte(hi)
	}
	it, err := r.NewIter(blo, bhi)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var fwd, back []string
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			t.Fatal(err)
		}
		fwd = append(fwd, string(it.Key())+"="+string(v))
	}
	for ok := it.Last(); ok; ok = it.Prev() {
		v, err := it.Value()
		if err != nil {
			t.Fatal(err)
		}
		back = append([]string{string(it.Key()) + "=" + string(v)}, back...)
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(fwd) != fmt.Sprint(back) {
		t.Fatalf("forward scan %v, backward scan %v", fwd, back)
	}
	return fwd
}

func want(t *testing.T, got []string, w ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(w) && !(len(got) == 0 && len(w) == 0) {
		t.Fatalf("got %v, want %v", got, w)
	}
}

func testGetSetDelete(t *testing.T, s kv.Store) {
	if _, ok := get(t, s, "a"); ok {
		t.Fatal("empty store has a")
	}
	put(t, s, "a", "1", "b", "2")
	if v, ok := get(t, s, "a"); !ok || v != "1" {
		t.Fatalf("a = %q %v", v, ok)
	}
	put(t, s, "a", "3")
	if v, _ := get(t, s, "a"); v != "3" {
		t.Fatalf("overwrite: a = %q", v)
	}
	del(t, s, "a", "missing")
	if _, ok := get(t, s, "a"); ok {
		t.Fatal("deleted key still there")
	}
	if v, _ := get(t, s, "b"); v != "2" {
		t.Fatal("unrelated key lost")
	}
}

func testCopies(t *testing.T, s kv.Store) {
	k, v := []byte("key"), []byte("value")
	b := s.NewBatch()
	b.Set(k, v)
	k[0], v[0] = 'X', 'X'
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.Close()
	got, err := s.Get([]byte("key"))
	if err != nil || string(got) != "value" {
		t.Fatalf("stored %q %v: Set did not copy", got, err)
	}
	got[0] = 'Y'
	if again, _ := s.Get([]byte("key")); string(again) != "value" {
		t.Fatal("Get returned the store's own slice")
	}
}

func testBinaryKeys(t *testing.T, s kv.Store) {
	keys := [][]byte{{0}, {0, 0}, {0, 1}, {1}, {0xff}, {0xff, 0xff}, {0x7f, 0x80}}
	commit(t, s, func(b kv.Batch) {
		for i, k := range keys {
			b.Set(k, []byte{byte(i)})
		}
	})
	it := iterAll(t, s)
	defer it.Close()
	var prev []byte
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if prev != nil && bytes.Compare(prev, it.Key()) >= 0 {
			t.Fatalf("keys out of order: %x then %x", prev, it.Key())
		}
		prev = bytes.Clone(it.Key())
		n++
	}
	if n != len(keys) {
		t.Fatalf("%d keys, want %d", n, len(keys))
	}
	it2, _ := s.NewIter([]byte{0xff}, nil)
	defer it2.Close()
	if !it2.First() || !bytes.Equal(it2.Key(), []byte{0xff}) || !it2.Next() || it2.Next() {
		t.Fatal("iteration from 0xff to the end")
	}
}

func testBounds(t *testing.T, s kv.Store) {
	put(t, s, "a", "1", "b", "2", "c", "3", "d", "4")
	want(t, scan(t, s, "", ""), "a=1", "b=2", "c=3", "d=4")
	want(t, scan(t, s, "b", "d"), "b=2", "c=3")
	want(t, scan(t, s, "bb", "cc"), "c=3")
	want(t, scan(t, s, "", "b"), "a=1")
	want(t, scan(t, s, "c", ""), "c=3", "d=4")
	want(t, scan(t, s, "c", "c"))
	want(t, scan(t, s, "x", "z"))
}

func testMoves(t *testing.T, s kv.Store) {
	put(t, s, "a", "1", "c", "3", "e", "5", "g", "7")
	it, err := s.NewIter([]byte("b"), []byte("g"))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	check := func(ok bool, wantKey string) {
		t.Helper()
		if wantKey == "" {
			if ok || it.Valid() {
				t.Fatalf("valid at %q, want invalid", it.Key())
			}
			return
		}
		if !ok || !it.Valid() || string(it.Key()) != wantKey {
			t.Fatalf("at %q (ok %v), want %q", it.Key(), ok, wantKey)
		}
	}
	check(it.SeekGE([]byte("a")), "c") // clamped to lo
	check(it.SeekGE([]byte("d")), "e")
	check(it.SeekGE([]byte("e")), "e")
	check(it.SeekGE([]byte("f")), "")  // g is beyond hi
	check(it.SeekLT([]byte("z")), "e") // clamped to hi
	check(it.SeekLT([]byte("e")), "c") // strictly less
	check(it.SeekLT([]byte("c")), "")  // a is below lo
	check(it.First(), "c")
	check(it.Prev(), "")
	check(it.Last(), "e")
	check(it.Next(), "")
	check(it.SeekGE([]byte("c")), "c")
	check(it.Next(), "e")
	check(it.Prev(), "c")
}

func testDeleteRange(t *testing.T, s kv.Store) {
	put(t, s, "a", "1", "b", "2", "c", "3", "d", "4", "e", "5")
	b := s.NewBatch()
	b.DeleteRange([]byte("b"), []byte("d"))
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.Close()
	want(t, scan(t, s, "", ""), "a=1", "d=4", "e=5")
	b = s.NewBatch()
	b.DeleteRange([]byte("x"), []byte("z")) // empty range
	b.DeleteRange([]byte("0"), []byte("b")) // partial overlap
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.Close()
	want(t, scan(t, s, "", ""), "d=4", "e=5")
	b = s.NewBatch()
	b.DeleteRange([]byte{0}, []byte{0xff})
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.Close()
	want(t, scan(t, s, "", ""))
}

func testBatchReads(t *testing.T, s kv.Store) {
	put(t, s, "a", "1", "b", "2", "c", "3", "d", "4", "e", "5")
	b := s.NewBatch()
	defer b.Close()
	b.Set([]byte("b"), []byte("20"))
	b.Delete([]byte("c"))
	b.Set([]byte("bb"), []byte("22"))
	want(t, scan(t, b, "", ""), "a=1", "b=20", "bb=22", "d=4", "e=5")
	if _, ok := get(t, b, "c"); ok {
		t.Fatal("batch delete not seen by batch Get")
	}
	if v, _ := get(t, b, "bb"); v != "22" {
		t.Fatal("batch set not seen by batch Get")
	}
	b.DeleteRange([]byte("b"), []byte("e"))
	want(t, scan(t, b, "", ""), "a=1", "e=5")
	b.Set([]byte("c"), []byte("30")) // after the range delete: survives
	want(t, scan(t, b, "", ""), "a=1", "c=30", "e=5")
	want(t, scan(t, b, "b", "d"), "c=30")
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	want(t, scan(t, s, "", ""), "a=1", "c=30", "e=5")
}

func testBatchInvisible(t *testing.T, s kv.Store) {
	b := s.NewBatch()
	b.Set([]byte("k"), []byte("v"))
	if _, ok := get(t, s, "k"); ok {
		t.Fatal("uncommitted write visible")
	}
	b.Close()
	if _, ok := get(t, s, "k"); ok {
		t.Fatal("closed batch's write visible")
	}
	// Commit without sync is visible at once.
	b = s.NewBatch()
	b.Set([]byte("k"), []byte("v"))
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if v, _ := get(t, s, "k"); v != "v" {
		t.Fatal("unsynced commit not visible")
	}
}

func testCommitOnce(t *testing.T, s kv.Store) {
	b := s.NewBatch()
	defer b.Close()
	if !b.Empty() || b.Count() != 0 {
		t.Fatal("new batch not empty")
	}
	b.Set([]byte("k"), []byte("v"))
	b.Delete([]byte("j"))
	if b.Empty() || b.Count() != 2 {
		t.Fatalf("count %d", b.Count())
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(true); err == nil {
		t.Fatal("second commit accepted")
	}
}

func testSnapshot(t *testing.T, s kv.Store) {
	put(t, s, "a", "1", "b", "2")
	snap := s.NewSnapshot()
	defer snap.Close()
	put(t, s, "a", "10", "c", "3")
	del(t, s, "b")
	if v, _ := get(t, snap, "a"); v != "1" {
		t.Fatalf("snapshot sees later write: a = %q", v)
	}
	if _, ok := get(t, snap, "c"); ok {
		t.Fatal("snapshot sees later key")
	}
	want(t, scan(t, snap, "", ""), "a=1", "b=2")
	want(t, scan(t, s, "", ""), "a=10", "c=3")
}

func testIterPointInTime(t *testing.T, s kv.Store) {
	put(t, s, "a", "1", "b", "2", "c", "3")
	it := iterAll(t, s)
	defer it.Close()
	if !it.First() {
		t.Fatal("empty")
	}
	put(t, s, "bb", "x")
	del(t, s, "c")
	var keys []string
	for ok := it.First(); ok; ok = it.Next() {
		keys = append(keys, string(it.Key()))
	}
	if fmt.Sprint(keys) != "[a b c]" {
		t.Fatalf("iterator changed under concurrent commits: %v", keys)
	}
}

// testAtomicity: readers never see part of a batch.
func testAtomicity(t *testing.T, s kv.Store) {
	const keys = 20
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				snap := s.NewSnapshot()
				it, err := snap.NewIter(nil, nil)
				if err != nil {
					errs <- err
					snap.Close()
					return
				}
				var first []byte
				n := 0
				for ok := it.First(); ok; ok = it.Next() {
					v, _ := it.Value()
					if first == nil {
						first = bytes.Clone(v)
					} else if !bytes.Equal(first, v) {
						errs <- fmt.Errorf("half a batch: %q and %q", first, v)
					}
					n++
				}
				it.Close()
				snap.Close()
				if n != 0 && n != keys {
					errs <- fmt.Errorf("%d of %d keys", n, keys)
				}
			}
		}()
	}
	for round := range 200 {
		b := s.NewBatch()
		for k := range keys {
			b.Set(fmt.Appendf(nil, "k%02d", k), fmt.Appendf(nil, "v%d", round))
		}
		if err := b.Commit(round%2 == 0); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func testLarge(t *testing.T, s kv.Store) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	commit(t, s, func(b kv.Batch) { b.Set([]byte("big"), big) })
	got, err := s.Get([]byte("big"))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("1 MiB value: %d bytes, %v", len(got), err)
	}
}

func testMany(t *testing.T, s kv.Store) {
	const n = 10000
	commit(t, s, func(b kv.Batch) {
		for i := n - 1; i >= 0; i-- {
			b.Set(fmt.Appendf(nil, "key-%06d", i), fmt.Appendf(nil, "%d", i))
		}
	})
	it := iterAll(t, s)
	defer it.Close()
	i := 0
	for ok := it.First(); ok; ok = it.Next() {
		if string(it.Key()) != fmt.Sprintf("key-%06d", i) {
			t.Fatalf("key %d is %q", i, it.Key())
		}
		i++
	}
	if i != n {
		t.Fatalf("%d keys", i)
	}
}

func testEmptyValue(t *testing.T, s kv.Store) {
	put(t, s, "e", "")
	v, err := s.Get([]byte("e"))
	if err != nil || len(v) != 0 {
		t.Fatalf("empty value: %q %v", v, err)
	}
}

func testClose(t *testing.T, s kv.Store) {
	put(t, s, "a", "1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get([]byte("a")); err == nil {
		t.Fatal("Get after Close succeeded")
	}
	if _, err := s.NewIter(nil, nil); err == nil {
		t.Fatal("NewIter after Close succeeded")
	}
}

// testCommitAsync: a pipelined commit (kv.CommitAsync, native or not) is
// visible when it returns, the next batch reads it before its sync is
// waited for, and both stay once waited.
func testCommitAsync(t *testing.T, s kv.Store) {
	b1 := s.NewBatch()
	b1.Set([]byte("a1"), []byte("one"))
	w1, err := kv.CommitAsync(b1)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := get(t, s, "a1"); !ok || v != "one" {
		t.Fatalf("a1 after CommitAsync = %q, %v; want visible", v, ok)
	}
	b2 := s.NewBatch()
	if v, ok := get(t, b2, "a1"); !ok || v != "one" {
		t.Fatalf("the next batch reads a1 = %q, %v", v, ok)
	}
	b2.Set([]byte("a2"), []byte("two"))
	w2, err := kv.CommitAsync(b2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.CommitAsync(b2); err == nil {
		t.Fatal("a second CommitAsync of a batch succeeded")
	}
	for i, w := range []func() error{w1, w2} {
		if err := w(); err != nil {
			t.Fatalf("wait %d: %v", i+1, err)
		}
	}
	b1.Close()
	b2.Close()
	empty := s.NewBatch()
	w, err := kv.CommitAsync(empty)
	if err != nil {
		t.Fatal(err)
	}
	if err := w(); err != nil {
		t.Fatal(err)
	}
	empty.Close()
	want(t, scan(t, s, "a", "b"), "a1=one", "a2=two")
}
