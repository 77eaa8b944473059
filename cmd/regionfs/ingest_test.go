package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// TestMetadataStoreIngests: the metadata store as serve and dev open it
// (openMetadata: Pebble with OverwriteWAL, its own or a shared cache)
// ingests a replica's initial-sync pairs as a table (kv.Ingester), also
// over keys its memtable holds, and they are there after it is opened
// again. An ingestion through serve's options once panicked in Pebble
// (202d215) while every test ingested through other options.
func TestMetadataStoreIngests(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared-cache=%v", shared), func(t *testing.T) {
			cfg := &config.Config{DataDir: t.TempDir()}
			cfg.SetDefaults()
			var cache *pebble.Cache
			if shared {
				cache = pebble.NewCache(64 << 20)
				defer cache.Unref()
			}
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			open := func() kv.Store {
				s, _, err := openMetadata(t.Context(), cfg, log, cache, nil, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			s := open()
			if !kv.CanIngest(s) {
				t.Fatalf("the metadata store %T does not ingest tables", s)
			}
			b := s.NewBatch()
			b.Set([]byte("k0050"), []byte("in the memtable"))
			if err := b.Commit(true); err != nil {
				t.Fatal(err)
			}
			b.Close()
			val := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 64) }
			for round := range 2 {
				err := s.(kv.Ingester).Ingest(func(yield func(k, v []byte) bool) {
					k := make([]byte, 0, 8) // one buffer for every key
					for i := round * 100; i < round*100+100; i++ {
						if !yield(fmt.Appendf(k[:0], "k%04d", i), val(i)) {
							return
						}
					}
				})
				if err != nil {
					t.Fatalf("ingest %d: %v", round, err)
				}
			}
			check := func(s kv.Store, when string) {
				for i := range 200 {
					v, err := s.Get(fmt.Appendf(nil, "k%04d", i))
					if err != nil || !bytes.Equal(v, val(i)) {
						t.Fatalf("k%04d %s: %x, %v", i, when, v, err)
					}
				}
			}
			check(s, "after the ingestion")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open()
			defer s.Close()
			check(s, "after the store was opened again")
		})
	}
}
