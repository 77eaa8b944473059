// Package blockstest is the conformance suite of the blocks.Store
// contract: blockstest.Run(t, open) for every implementation.
package blockstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/blocks"
)

// Keys returns test keys: a hasher and, when sealed, a sealer.
func Keys(t testing.TB, sealed bool) blocks.Keys {
	t.Helper()
	h, err := blocks.NewHasher(bytes.Repeat([]byte{1}, blocks.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	k := blocks.Keys{Hasher: h}
	if sealed {
		if k.Sealer, err = blocks.NewSealer(bytes.Repeat([]byte{2}, 32), []byte("lineage-0123456")); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// Run runs the suite, plain and sealed; open returns an empty store.
func Run(t *testing.T, open func(t *testing.T, keys blocks.Keys) blocks.Store) {
	for _, sealed := range []bool{false, true} {
		t.Run(fmt.Sprintf("sealed=%v", sealed), func(t *testing.T) {
			for _, tc := range []struct {
				name string
				f    func(t *testing.T, s blocks.Store, k blocks.Keys)
			}{
				{"RoundTrip", testRoundTrip},
				{"PutTwice", testPutTwice},
				{"Missing", testMissing},
				{"Delete", testDelete},
				{"Walk", testWalk},
				{"Concurrent", testConcurrent},
				{"Stats", testStats},
			} {
				t.Run(tc.name, func(t *testing.T) {
					k := Keys(t, sealed)
					tc.f(t, open(t, k), k)
				})
			}
		})
	}
}

func put(t *testing.T, s blocks.Store, k blocks.Keys, data []byte) blocks.ID {
	t.Helper()
	id := k.Hasher.Sum(data)
	if err := s.Put(context.Background(), id, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	return id
}

func testRoundTrip(t *testing.T, s blocks.Store, k blocks.Keys) {
	ctx := context.Background()
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for _, data := range [][]byte{{}, {42}, []byte("hello, block"), big} {
		id := put(t, s, k, data)
		got, err := s.Get(ctx, id)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: got %d bytes, %v", len(data), len(got), err)
		}
		if len(got) > 0 {
			got[0] ^= 0xff // the caller owns the result
		}
		if again, _ := s.Get(ctx, id); !bytes.Equal(again, data) {
			t.Fatal("Get returned shared memory")
		}
		if ok, err := s.Has(ctx, id); !ok || err != nil {
			t.Fatalf("Has: %v %v", ok, err)
		}
	}
}

func testPutTwice(t *testing.T, s blocks.Store, k blocks.Keys) {
	id := put(t, s, k, []byte("same"))
	before := s.Stats().Puts
	put(t, s, k, []byte("same"))
	if s.Stats().Puts != before {
		t.Fatal("second Put of a present block wrote it again")
	}
	if got, err := s.Get(context.Background(), id); err != nil || string(got) != "same" {
		t.Fatal(got, err)
	}
}

func testMissing(t *testing.T, s blocks.Store, k blocks.Keys) {
	id := k.Hasher.Sum([]byte("never stored"))
	if _, err := s.Get(context.Background(), id); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("Get of a missing block: %v", err)
	}
	if ok, err := s.Has(context.Background(), id); ok || err != nil {
		t.Fatalf("Has of a missing block: %v %v", ok, err)
	}
}

func testDelete(t *testing.T, s blocks.Store, k blocks.Keys) {
	ctx := context.Background()
	id := put(t, s, k, []byte("doomed"))
	if err := s.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, id); !errors.Is(err, blocks.ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("Delete of a missing block: %v", err)
	}
	put(t, s, k, []byte("doomed")) // can be stored again
}

func testWalk(t *testing.T, s blocks.Store, k blocks.Keys) {
	ctx := context.Background()
	var want []string
	for i := range 50 {
		want = append(want, put(t, s, k, fmt.Appendf(nil, "block %d", i)).String())
	}
	if err := s.Delete(ctx, k.Hasher.Sum([]byte("block 7"))); err != nil {
		t.Fatal(err)
	}
	want = append(want[:7], want[8:]...)
	var got []string
	if err := s.Walk(ctx, func(id blocks.ID) error { got = append(got, id.String()); return nil }); err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("walk listed %d ids, want %d", len(got), len(want))
	}
}

func testConcurrent(t *testing.T, s blocks.Store, k blocks.Keys) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				data := fmt.Appendf(nil, "shared %d", i%5) // same ids from every writer
				if w%2 == 0 {
					data = fmt.Appendf(nil, "writer %d block %d", w, i)
				}
				id := k.Hasher.Sum(data)
				if err := s.Put(ctx, id, data); err != nil {
					errs <- err
					return
				}
				got, err := s.Get(ctx, id)
				if err != nil || !bytes.Equal(got, data) {
					errs <- fmt.Errorf("read back: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

func testStats(t *testing.T, s blocks.Store, k blocks.Keys) {
	ctx := context.Background()
	id := put(t, s, k, []byte("12345"))
	if _, err := s.Get(ctx, id); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Puts != 1 || st.PutBytes != 5 || st.Gets != 1 || st.GetBytes != 5 || st.CorruptReads != 0 {
		t.Fatalf("stats %+v", st)
	}
}
