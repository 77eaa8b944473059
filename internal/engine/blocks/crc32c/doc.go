// Package crc32c computes CRC-32C (Castagnoli), the checksum of plaintext
// block files (blocks.format.go), as hash/crc32 does with its Castagnoli
// table, and faster on CPUs with AVX-512 and VPCLMULQDQ.
//
// hash/crc32 runs the CPU's CRC32 instruction on three interleaved
// streams (~8 bytes per cycle: ~42 µs per MiB on the development VM,
// 8–14 % of the server's CPU in a cold sequential READ, read12 in
// bench/nfs/README.md). Update folds the bulk of a long input instead:
// four 512-bit accumulators, each 128-bit lane of them multiplied
// carry-less (VPCLMULQDQ) by x^(8·256±32) mod P and added to the
// input 256 bytes further on, which keeps the polynomial's remainder
// modulo P; the last 128 bits left are reduced with the CRC32
// instruction, and the tail (under 256 bytes) goes to hash/crc32.
//
// The math, in the reflected bit order of this CRC (the first byte's bit
// 0 is the highest power): a 128-bit chunk A = Ah·x^64 + Al, d bytes
// before the chunk B, contributes A·x^(8d) to the remainder, and
// Ah·(x^(8d+64) mod P) + Al·(x^(8d) mod P) has degree < 96, so it can be
// added to B. Carry-less products of reflected operands come out shifted
// by one bit, which the constants absorb: each is x^(8d±32) mod P,
// bit-reversed and shifted left by one (constants.go computes them; a
// test checks the assembly's copies). The initial CRC is added to the
// first four bytes, as the CRC32 instruction does.
package crc32c
