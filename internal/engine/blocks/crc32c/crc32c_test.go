package crc32c

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestUpdate compares Update with hash/crc32 over lengths around the
// fold's sizes, offsets and initial CRCs.
func TestUpdate(t *testing.T) {
	if !Folds() {
		t.Log("this CPU has no AVX-512 VPCLMULQDQ: Update is hash/crc32's")
	}
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 3<<20)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	lengths := []int{0, 1, 15, 255, 256, 1023, 1024, 1025, 1280, 4095, 4096, 4097, 65536 + 17, 1 << 20, 1<<20 + 16, 2<<20 + 255}
	for _, n := range lengths {
		for _, off := range []int{0, 1, 7, 64} {
			for _, crc := range []uint32{0, 1, 0xffffffff, r.Uint32()} {
				p := buf[off : off+n]
				if got, want := Update(crc, p), crc32.Update(crc, table, p); got != want {
					t.Fatalf("Update(%#x, %d bytes at %d) = %#x, hash/crc32 %#x", crc, n, off, got, want)
				}
			}
		}
	}
}

// TestConstants checks the fold's constants against a reference that
// computes x^n mod P bit by bit in the reflected order.
func TestConstants(t *testing.T) {
	// Reflected: the register shifts right, P reversed (0x82F63B78).
	xPowModReflected := func(n int) uint32 {
		r := uint32(1 << 31) // x^0
		for range n {
			low := r & 1
			r >>= 1
			if low != 0 {
				r ^= 0x82F63B78
			}
		}
		return r
	}
	for _, d := range []int{16, 64, 256} {
		got := foldConstants(d)
		want := [2]uint64{uint64(xPowModReflected(8*d+32)) << 1, uint64(xPowModReflected(8*d-32)) << 1}
		if got != want {
			t.Errorf("foldConstants(%d) = %#x, want %#x", d, got, want)
		}
	}
}

func FuzzUpdate(f *testing.F) {
	f.Add(uint32(0), make([]byte, 1024))
	f.Add(uint32(0xdeadbeef), make([]byte, 4096+3))
	f.Fuzz(func(t *testing.T, crc uint32, p []byte) {
		if got, want := Update(crc, p), crc32.Update(crc, table, p); got != want {
			t.Fatalf("Update(%#x, %d bytes) = %#x, hash/crc32 %#x", crc, len(p), got, want)
		}
	})
}

func BenchmarkUpdate(b *testing.B) {
	p := make([]byte, 1<<20)
	for _, impl := range []struct {
		name string
		f    func(uint32, []byte) uint32
	}{
		{"fold", Update},
		{"hash-crc32", func(c uint32, p []byte) uint32 { return crc32.Update(c, table, p) }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				impl.f(0, p)
			}
		})
	}
}
