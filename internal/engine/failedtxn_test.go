package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// TestFailedApplyLeavesNothing is the guard of the transaction trap: a
// transaction that fails after it wrote must leave nothing in the group
// it shared, and the others of that group must commit. A replica's apply
// writes the records' keys, journal entries and holders as it goes (not
// through the overlay of client mutations), and one of its records can
// still be refused after that: here a superblock of a newer format (a
// source upgraded first) in the second record of an apply whose first
// record is fine. That apply shares its group with an earlier one. The
// earlier apply must be committed, durably, and nothing of the refused
// one — neither its good first record nor the keys of the refused one
// written before its superblock — may be readable, in the store or in
// its crash image; the refused records apply once the replica can take
// them. Before txn.abs the refused apply's writes committed with the
// group: the first record's directory was readable at an applied point
// that did not include it, and the crash image held the newer
// superblock, which the reopened engine could not read.
func TestFailedApplyLeavesNothing(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	src, dst, recs := mkdirReplica(t, v, 4)
	if seq := ship(t, ctx, src, dst, recs[:2]); seq != 2 { // mkfs, d0
		t.Fatalf("applied %d, want 2", seq)
	}
	// What the replica must hold after x: the source at seq 3.
	ref, err := v.e.CreateReplica(ctx, "ref", "")
	if err != nil {
		t.Fatal(err)
	}
	ship(t, ctx, src, ref, recs[:3])
	at3, err := ref.Replica().RangeChecksum(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Record 5 (mkdir d3) with a superblock this binary cannot read
	// after its own keys.
	superV, err := v.kv.Get(absKey(src.id, metaKey(metaSuper)))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := decodeSuper(superV)
	if err != nil {
		t.Fatal(err)
	}
	sb.Version++
	newer := sb.encode()
	bad := *recs[4]
	bad.Mutations = append(append([]Mutation(nil), bad.Mutations...), Mutation{Key: metaKey(metaSuper), Value: newer})

	// Hold the committer in an operation of its own while the two applies
	// queue, so that they run in one group: x (record 3, d1) then y
	// (records 4 and 5, d2 and d3).
	started, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- dst.do(ctx, opAdmin, "hold", func(*txn) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	before := dst.Stats()
	xErr, yErr := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := dst.Replica().Apply(ctx, recs[2:3])
		xErr <- err
	}()
	pollUntil(t, "x queued", func() bool { return dst.Stats().Queued == before.Queued+1 })
	go func() {
		_, err := dst.Replica().Apply(ctx, []*Record{recs[3], &bad})
		yErr <- err
	}()
	pollUntil(t, "y queued", func() bool { return dst.Stats().Queued == before.Queued+2 })
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := <-xErr; err != nil {
		t.Fatalf("apply x: %v", err)
	}
	if err := <-yErr; err == nil {
		t.Fatal("apply y with a newer superblock: no error")
	}
	after := dst.Stats()
	// (The hold's group wrote nothing: no commit.)
	if c, n := after.Commits-before.Commits, after.GroupOps-before.GroupOps; c != 1 || n != 2 {
		t.Fatalf("%d group commits of %d operations, want x and y in one", c, n)
	}

	check := func(when string, dst *FS, store *kv.Memory) {
		t.Helper()
		if _, seq, _ := dst.Replica().Applied(); seq != 3 {
			t.Errorf("%s: applied %d, want 3", when, seq)
		}
		for i, want := range []error{nil, nil, ErrNotFound, ErrNotFound} {
			name := fmt.Sprint("d", i)
			if _, err := dst.Lookup(ctx, RootCred, RootIno, name); !errors.Is(err, want) && (want != nil || err != nil) {
				t.Errorf("%s: lookup %s: %v, want %v", when, name, err, want)
			}
		}
		for seq := uint64(1); seq <= 5; seq++ {
			_, err := store.Get(journalKey(dst.id, seq))
			if found := err == nil; found != (seq <= 3) {
				t.Errorf("%s: journal record %d in the store: %v (%v)", when, seq, found, err)
			}
		}
		got, err := store.Get(absKey(dst.id, metaKey(metaSuper)))
		if err != nil || !bytes.Equal(got, superV) {
			t.Errorf("%s: superblock %q, %v; want the source's", when, got, err)
		}
		// Every key of the file system as on the source at seq 3.
		sum, err := dst.Replica().RangeChecksum(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sum != at3 {
			t.Errorf("%s: the replica's keys differ from the source's at seq 3", when)
		}
	}
	check("committed", dst, v.kv)
	v.crash()
	dst = v.fs("dst")
	check("after a crash", dst, v.kv)
	if seq := ship(t, ctx, src, dst, recs[3:]); seq != 5 {
		t.Fatalf("applied %d after the crash, want 5", seq)
	}
	must(dst.Lookup(ctx, RootCred, RootIno, "d3"))(t)
}
