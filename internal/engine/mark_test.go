package engine

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// A mark is a journaled change like any other: its record carries it to a
// replica in order, the replica holds it once it has applied that record,
// and only a writable primary commits one.
func TestMark(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	src, err := v.e.CreateFS(ctx, "src", FSOptions{KMSKeyID: "test-key"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Create(ctx, RootCred, RootIno, "before", CreateGuarded, SetAttr{}, 0); err != nil {
		t.Fatal(err)
	}
	seq, at, err := src.Replica().Mark(ctx, "drill-canary", []byte("token-1"))
	if err != nil {
		t.Fatal(err)
	}
	if seq != src.Replica().DurableSeq() || at.IsZero() {
		t.Fatalf("mark at seq %d (durable %d), time %v", seq, src.Replica().DurableSeq(), at)
	}
	if b, err := src.Replica().ReadMark("drill-canary"); err != nil || string(b) != "token-1" {
		t.Fatalf("read mark on the source: %q %v", b, err)
	}
	if _, err := src.Replica().ReadMark("other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing mark: %v", err)
	}
	recs, err := src.Replica().ReadJournal(ctx, 1, 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	last := recs[len(recs)-1]
	if last.Seq != seq || last.Op.Op != "mark" || !strings.Contains(last.Op.String(), "drill-canary") {
		t.Fatalf("last record: seq %d op %q, want the mark at %d", last.Seq, last.Op.String(), seq)
	}
	dst, err := v.e.CreateReplica(ctx, "dst", "")
	if err != nil {
		t.Fatal(err)
	}
	ship(t, ctx, src, dst, recs[:len(recs)-1])
	if _, err := dst.Replica().ReadMark("drill-canary"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the replica holds the mark before its record: %v", err)
	}
	ship(t, ctx, src, dst, recs[len(recs)-1:])
	if b, err := dst.Replica().ReadMark("drill-canary"); err != nil || !bytes.Equal(b, []byte("token-1")) {
		t.Fatalf("read mark on the replica: %q %v", b, err)
	}
	if _, err := dst.Lookup(ctx, RootCred, RootIno, "before"); err != nil {
		t.Fatalf("the replica lacks what came before the mark: %v", err)
	}
	if _, _, err := dst.Replica().Mark(ctx, "x", nil); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("mark on a replica: %v", err)
	}
	for _, bad := range []struct {
		name  string
		value []byte
	}{{"", nil}, {strings.Repeat("n", MaxMarkName+1), nil}, {"v", make([]byte, MaxMarkValue+1)}} {
		if _, _, err := src.Replica().Mark(ctx, bad.name, bad.value); !errors.Is(err, ErrInvalid) {
			t.Errorf("mark %q with %d bytes: %v", bad.name, len(bad.value), err)
		}
	}
	if err := src.Replica().Fence(ctx, 9); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.Replica().Mark(ctx, "drill-canary", []byte("token-2")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("mark on a fenced primary: %v", err)
	}
	if err := src.Replica().Verify(ctx, true); err != nil {
		t.Fatalf("verify after marks: %v", err)
	}
}
