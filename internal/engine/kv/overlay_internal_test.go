package kv

import (
	"bytes"
	"errors"
	"testing"
)

// TestOverlayMoveTo: a transaction's writes moved into its group's
// overlay are seen there as the transaction left them, later than the
// group's own: points over the group's, deletions hiding them, a range
// deletion hiding the group's keys it covers but not the points the
// transaction wrote after it; the moved overlay is empty and serves the
// next transaction over another base (Reuse).
func TestOverlayMoveTo(t *testing.T) {
	base := NewMemory()
	b := base.NewBatch()
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		b.Set([]byte(k), []byte("base "+k))
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	group := NewOverlay(base)
	group.Set([]byte("b"), []byte("group b"))
	group.Set([]byte("c"), []byte("group c"))
	group.Set([]byte("x"), []byte("group x"))
	tx := NewOverlay(group)
	tx.Delete([]byte("a"))
	// Overlay has no DeleteRange of its own; the delta's is what a range
	// deletion would record.
	tx.d.delRange([]byte("b"), []byte("e"))
	tx.Set([]byte("c"), []byte("tx c")) // after the range: it stays
	tx.Set([]byte("y"), []byte("tx y"))
	tx.MoveTo(group)
	if tx.Len() != 0 || len(tx.d.ranges) != 0 {
		t.Fatalf("moved overlay holds %d points, %d ranges", tx.Len(), len(tx.d.ranges))
	}
	want := map[string]string{"a": "", "b": "", "c": "tx c", "d": "", "e": "base e", "x": "group x", "y": "tx y"}
	for k, w := range want {
		v, err := group.Get([]byte(k))
		switch {
		case w == "" && !errors.Is(err, ErrNotFound):
			t.Errorf("%s after the move: %q, %v; want deleted", k, v, err)
		case w != "" && (err != nil || string(v) != w):
			t.Errorf("%s after the move: %q, %v; want %q", k, v, err, w)
		}
	}
	// Reuse: empty, over a new base.
	tx.Reuse(base)
	tx.Set([]byte("z"), []byte("next"))
	if v, err := tx.Get([]byte("c")); err != nil || !bytes.Equal(v, []byte("base c")) {
		t.Errorf("c in the reused overlay: %q, %v; want the base's", v, err)
	}
	n := 0
	tx.Writes(func(k, v []byte, deleted bool) { n++ })
	if n != 1 {
		t.Errorf("reused overlay holds %d writes, want 1", n)
	}
}

// TestOverlayFrozen: a frozen overlay is read by several goroutines at
// once (run with -race): its iterators see its writes over its base
// without a copy of them, Rebase moves it over another base with the same
// values, and a write to it panics.
func TestOverlayFrozen(t *testing.T) {
	base := NewMemory()
	b := base.NewBatch()
	b.Set([]byte("a"), []byte("base a"))
	b.Set([]byte("b"), []byte("base b"))
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	older := NewOverlay(base)
	older.Set([]byte("c"), []byte("older c"))
	older.Freeze()
	o := NewOverlay(older)
	o.Set([]byte("b"), []byte("o b"))
	o.Delete([]byte("a"))
	o.Freeze()
	want := "b=o b c=older c "
	done := make(chan string, 4)
	for range 4 {
		go func() {
			var got bytes.Buffer
			it, err := o.NewIter(nil, nil)
			if err != nil {
				done <- err.Error()
				return
			}
			for ok := it.First(); ok; ok = it.Next() {
				v, _ := it.Value()
				got.WriteString(string(it.Key()) + "=" + string(v) + " ")
			}
			it.Close()
			o.Writes(func(k, v []byte, deleted bool) {})
			done <- got.String()
		}()
	}
	for range 4 {
		if got := <-done; got != want {
			t.Errorf("frozen overlay reads %q, want %q", got, want)
		}
	}
	// older's group is in the store now: o reads the same over it.
	b = base.NewBatch()
	b.Set([]byte("c"), []byte("older c"))
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	o.Rebase(base)
	if v, err := o.Get([]byte("c")); err != nil || string(v) != "older c" {
		t.Errorf("after Rebase: c = %q, %v", v, err)
	}
	if _, err := o.Get([]byte("a")); !errors.Is(err, ErrNotFound) {
		t.Errorf("after Rebase: a: %v, want ErrNotFound", err)
	}
	for name, write := range map[string]func(){
		"Set":    func() { o.Set([]byte("x"), nil) },
		"Delete": func() { o.Delete([]byte("x")) },
		"Reset":  func() { o.Reset() },
		"MoveTo": func() { NewOverlay(base).MoveTo(o) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s on a frozen overlay did not panic", name)
				}
			}()
			write()
		}()
	}
}
