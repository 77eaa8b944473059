package pebblekv

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/engine/kv/kvtest"
)

func TestConformanceDisk(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Store {
		s, err := Open(filepath.Join(t.TempDir(), "db"), Options{CacheSizeBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConformanceMem(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Store {
		s, err := Open("db", Options{FS: vfs.NewMem(), CacheSizeBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestCrash: synced batches survive a crash of Pebble's crashable VFS,
// every batch is all or nothing.
func TestCrash(t *testing.T) {
	mem := vfs.NewCrashableMem()
	s, err := Open("db", Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	const batches = 50
	for i := range batches {
		b := s.NewBatch()
		for k := range 10 {
			b.Set(fmt.Appendf(nil, "b%03d-k%d", i, k), fmt.Appendf(nil, "%d", i))
		}
		if err := b.Commit(i%5 == 0 || i == 30); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	clone := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	s.Close()
	r, err := Open("db", Options{FS: clone})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range batches {
		n := 0
		for k := range 10 {
			if _, err := r.Get(fmt.Appendf(nil, "b%03d-k%d", i, k)); err == nil {
				n++
			}
		}
		if n != 0 && n != 10 {
			t.Fatalf("batch %d: %d of 10 keys after the crash", i, n)
		}
		if i <= 30 && n != 10 {
			t.Fatalf("batch %d committed before a synced batch was lost", i)
		}
	}
}

func TestFormatNewest(t *testing.T) {
	s, err := Open("db", Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := s.DB().FormatMajorVersion(); v < 24 {
		t.Fatalf("format major version %d", v)
	}
}
