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
	tx.DeleteRange([]byte("b"), []byte("e"))
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

// TestOverlayApplyTo: an overlay's writes applied to a batch leave the
// store as the overlay showed it: a range deletion hides the batch's and
// the store's keys it covers, points written after it survive, and the
// overlay reads through its batch (the group's earlier writes).
func TestOverlayApplyTo(t *testing.T) {
	store := NewMemory()
	b := store.NewBatch()
	for _, k := range []string{"a", "b", "c", "d"} {
		b.Set([]byte(k), []byte("store "+k))
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	b = store.NewBatch()
	b.Set([]byte("e"), []byte("batch e"))
	o := NewOverlay(b)
	if !o.Empty() {
		t.Fatal("new overlay not empty")
	}
	o.Set([]byte("b"), []byte("before the range")) // hidden by it
	o.DeleteRange([]byte("b"), []byte("f"))
	if o.Empty() {
		t.Fatal("overlay with a range deletion is empty")
	}
	o.Set([]byte("d"), []byte("after the range"))
	o.Delete([]byte("a"))
	want := map[string]string{"a": "", "b": "", "c": "", "d": "after the range", "e": ""}
	check := func(what string, r Reader) {
		t.Helper()
		for k, w := range want {
			v, err := r.Get([]byte(k))
			switch {
			case w == "" && !errors.Is(err, ErrNotFound):
				t.Errorf("%s: %s = %q, %v; want deleted", what, k, v, err)
			case w != "" && (err != nil || string(v) != w):
				t.Errorf("%s: %s = %q, %v; want %q", what, k, v, err, w)
			}
		}
		it, err := r.NewIter(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		var keys []string
		for ok := it.First(); ok; ok = it.Next() {
			keys = append(keys, string(it.Key()))
		}
		if len(keys) != 1 || keys[0] != "d" {
			t.Errorf("%s: keys %q, want [d]", what, keys)
		}
	}
	check("overlay", o)
	o.ApplyTo(b)
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	check("store", store)
}
