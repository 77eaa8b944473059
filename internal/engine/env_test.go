package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/engine/kms/kmstest"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// env is an engine over in-memory stores that can be reopened and crashed.
type env struct {
	t    testing.TB
	kv   *kv.Memory
	disk *disk.Mem
	ring *kms.Keyring
	opts Options
	e    *Engine
}

func newEnv(t testing.TB, mods ...func(*Options)) *env {
	t.Helper()
	ring := kmstest.Keyring(t, "test-key", "alias/aws/elasticfilesystem")
	v := &env{t: t, kv: kv.NewMemory(), disk: disk.NewMem(), ring: ring}
	v.opts = Options{
		Keyring: ring, GCInterval: time.Hour, MergeDelay: time.Hour,
		OnFatal: func(err error) { t.Errorf("fatal storage error: %v", err) },
	}
	for _, m := range mods {
		m(&v.opts)
	}
	v.open()
	t.Cleanup(func() {
		if v.e != nil {
			v.e.Close()
		}
	})
	return v
}

func (v *env) open() {
	v.t.Helper()
	o := v.opts
	o.KV, o.Disk = v.kv, v.disk
	e, err := Open(context.Background(), o)
	if err != nil {
		v.t.Fatalf("open engine: %v", err)
	}
	v.e = e
}

// reopen closes the engine cleanly and opens it again on the same stores.
func (v *env) reopen() {
	v.t.Helper()
	if err := v.e.Close(); err != nil {
		v.t.Fatalf("close engine: %v", err)
	}
	v.open()
}

// crash abandons the engine and opens a new one on what a crash would have
// left of the stores.
func (v *env) crash() {
	v.t.Helper()
	k, d := v.kv.CrashClone(), v.disk.CrashClone()
	old := v.e
	v.kv, v.disk = k, d
	v.open()
	old.Close() // releases goroutines; its stores are no longer used
}

func (v *env) mkfs(name string) *FS {
	v.t.Helper()
	fs, err := v.e.CreateFS(context.Background(), name, FSOptions{BlockSize: MinBlockSize})
	if err != nil {
		v.t.Fatalf("create fs %s: %v", name, err)
	}
	return fs
}

func (v *env) fs(name string) *FS {
	v.t.Helper()
	fs, err := v.e.FS(name)
	if err != nil {
		v.t.Fatal(err)
	}
	return fs
}

// must(f())(t) returns f's value or fails the test with its error.
func must[T any](x T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func u32(v uint32) *uint32 { return &v }
func u64(v uint64) *uint64 { return &v }

// must3 is must for calls with two results and an error.
func must3[A, B any](a A, b B, err error) func(testing.TB) (A, B) {
	return func(t testing.TB) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}
