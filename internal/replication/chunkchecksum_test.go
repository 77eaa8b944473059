package replication

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestChunkChecksumWire: the checksum of a msgChunkSum's pairs is
// hash/crc32's CRC-32C, whatever computes it, so that regions of
// versions before and after sync22 (hash/crc32 then, the folding
// crc32c.Update now) check each other's chunks; lengths around the fold's
// thresholds and a chunk's usual size.
func TestChunkChecksumWire(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 22))
	table := crc32.MakeTable(crc32.Castagnoli)
	for _, n := range []int{0, 1, 255, 256, 1023, 1024, 1025, 4096 + 7, 1<<20 + 13} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		if got, want := chunkChecksum(p), crc32.Checksum(p, table); got != want {
			t.Errorf("%d bytes: chunkChecksum %08x, hash/crc32 %08x", n, got, want)
		}
	}
}

func BenchmarkChunkChecksum(b *testing.B) {
	p := make([]byte, 1<<20)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		chunkChecksum(p)
	}
}
