package crc32c

import "golang.org/x/sys/cpu"

// hasFold: AVX-512 (with the OS saving its registers), VPCLMULQDQ and
// the CRC32 instruction (SSE4.2).
var hasFold = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VPCLMULQDQ && cpu.X86.HasSSE42

// constants of the fold: 256 bytes (a round), 64 (one register into
// the next) and 16 (one lane into the next).
var constants = [3][2]uint64{foldConstants(256), foldConstants(64), foldConstants(16)}

// foldAVX512 is Update of p, whose length is a non-zero multiple of
// foldBytes, folded with k (constants) (crc32c_amd64.s).
//
//go:noescape
func foldAVX512(crc uint32, p []byte, k *[3][2]uint64) uint32

func fold(crc uint32, p []byte) uint32 { return foldAVX512(crc, p, &constants) }
