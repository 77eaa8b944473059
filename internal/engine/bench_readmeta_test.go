package engine

import (
	"context"
	"testing"
)

// BenchmarkReadHeldMeta: what a whole-block ReadHeld costs the engine
// beside its block read, i.e. with every block in the block cache: the
// metadata lookups of a READ (inode, block entry, pending extents) on
// Pebble configured as the servers configure it, and the attributes'
// GetAttr an NFS READ makes first. Sub-benchmarks: with the store's
// memtable holding the file (just written) and after a flush and a
// compaction.
//
//	go test ./internal/engine -run '^$' -bench ReadHeldMeta -benchtime 20000x
func BenchmarkReadHeldMeta(b *testing.B) {
	const blocks = 32
	ctx := context.Background()
	e, fs, st := benchEngineAt(b, b.TempDir(), serverKV, func(o *Options) {
		o.CacheWrites = true
		o.BlockCacheBytes = 2 * blocks << 20
	})
	_ = e
	en, err := fs.Create(ctx, RootCred, RootIno, "f", CreateGuarded, SetAttr{}, 0)
	if err != nil {
		b.Fatal(err)
	}
	ino := en.Attr.Ino
	data := make([]byte, 1<<20)
	for i := range blocks {
		for j := range data {
			data[j] = byte(i*31 + j*7)
		}
		if _, _, err := fs.Write(ctx, RootCred, ino, uint64(i)<<20, data); err != nil {
			b.Fatal(err)
		}
	}
	run := func(b *testing.B) {
		gets := fs.Stats().Blocks.Gets
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, err := fs.GetAttr(ctx, ino); err != nil {
				b.Fatal(err)
			}
			d, _, _, h, err := fs.ReadHeld(ctx, RootCred, ino, uint64(i%blocks)<<20, 1<<20)
			if err != nil || len(d) != 1<<20 {
				b.Fatal(len(d), err)
			}
			h.Release()
		}
		b.StopTimer()
		if n := fs.Stats().Blocks.Gets - gets; n != 0 {
			b.Fatalf("%d blocks read from their files: not all cached", n)
		}
	}
	b.Run("memtable", run)
	if err := st.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := st.DB().Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatal(err)
	}
	b.Run("compacted", run)
}
