package crc32c

import "math/bits"

// poly is the Castagnoli polynomial without its x^32 term, bit e the
// coefficient of x^e.
const poly = 0x1EDC6F41

// xPowMod returns x^n mod P, bit e the coefficient of x^e.
func xPowMod(n int) uint32 {
	r := uint32(1)
	for range n {
		top := r & (1 << 31)
		r <<= 1
		if top != 0 {
			r ^= poly
		}
	}
	return r
}

// foldConstants returns the pair that moves a 128-bit chunk d bytes
// forward: for its first (higher) 64 bits x^(8d+32) mod P, for its
// second x^(8d-32) mod P, bit-reversed and shifted left by one for the
// reflected carry-less product (doc.go).
func foldConstants(d int) [2]uint64 {
	k := func(n int) uint64 { return uint64(bits.Reverse32(xPowMod(n))) << 1 }
	return [2]uint64{k(8*d + 32), k(8*d - 32)}
}
