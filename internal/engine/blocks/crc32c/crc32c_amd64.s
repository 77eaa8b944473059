#include "textflag.h"

// func foldAVX512(crc uint32, p []byte, k *[3][2]uint64) uint32
// len(p) is a non-zero multiple of 256.
TEXT ·foldAVX512(SB), NOSPLIT, $0-44
	MOVL crc+0(FP), AX
	NOTL AX
	MOVQ p_base+8(FP), SI
	MOVQ p_len+16(FP), CX
	MOVQ k+32(FP), DX

	// Four accumulators of 64 bytes each, the CRC added to the first
	// four bytes.
	VMOVDQU64 0(SI), Z0
	VMOVDQU64 64(SI), Z1
	VMOVDQU64 128(SI), Z2
	VMOVDQU64 192(SI), Z3
	VMOVQ AX, X4
	VPXORQ Z4, Z0, Z0
	ADDQ $256, SI
	SUBQ $256, CX
	VBROADCASTI32X4 0(DX), Z8

loop:
	// Each accumulator's lanes moved 256 bytes on, onto the next input.
	CMPQ CX, $256
	JB   reduce
	VPCLMULQDQ $0x00, Z8, Z0, Z4
	VPCLMULQDQ $0x11, Z8, Z0, Z0
	VPTERNLOGQ $0x96, 0(SI), Z4, Z0
	VPCLMULQDQ $0x00, Z8, Z1, Z5
	VPCLMULQDQ $0x11, Z8, Z1, Z1
	VPTERNLOGQ $0x96, 64(SI), Z5, Z1
	VPCLMULQDQ $0x00, Z8, Z2, Z6
	VPCLMULQDQ $0x11, Z8, Z2, Z2
	VPTERNLOGQ $0x96, 128(SI), Z6, Z2
	VPCLMULQDQ $0x00, Z8, Z3, Z7
	VPCLMULQDQ $0x11, Z8, Z3, Z3
	VPTERNLOGQ $0x96, 192(SI), Z7, Z3
	ADDQ $256, SI
	SUBQ $256, CX
	JMP  loop

reduce:
	// Z0 into Z1, Z1 into Z2, Z2 into Z3: 64 bytes each.
	VBROADCASTI32X4 16(DX), Z8
	VPCLMULQDQ $0x00, Z8, Z0, Z4
	VPCLMULQDQ $0x11, Z8, Z0, Z5
	VPTERNLOGQ $0x96, Z5, Z4, Z1
	VPCLMULQDQ $0x00, Z8, Z1, Z4
	VPCLMULQDQ $0x11, Z8, Z1, Z5
	VPTERNLOGQ $0x96, Z5, Z4, Z2
	VPCLMULQDQ $0x00, Z8, Z2, Z4
	VPCLMULQDQ $0x11, Z8, Z2, Z5
	VPTERNLOGQ $0x96, Z5, Z4, Z3

	// Z3's lanes, 16 bytes apart, each into the next: X3 (lane 0) into
	// X1 (lane 1), into X2 (lane 2), into X5 (lane 3).
	VMOVDQU 32(DX), X8
	VEXTRACTI32X4 $1, Z3, X1
	VEXTRACTI32X4 $2, Z3, X2
	VEXTRACTI32X4 $3, Z3, X5
	VPCLMULQDQ $0x00, X8, X3, X4
	VPCLMULQDQ $0x11, X8, X3, X6
	VPXOR X4, X1, X1
	VPXOR X6, X1, X1
	VPCLMULQDQ $0x00, X8, X1, X4
	VPCLMULQDQ $0x11, X8, X1, X6
	VPXOR X4, X2, X2
	VPXOR X6, X2, X2
	VPCLMULQDQ $0x00, X8, X2, X4
	VPCLMULQDQ $0x11, X8, X2, X6
	VPXOR X4, X5, X5
	VPXOR X6, X5, X5

	// The CRC of the last 16 bytes left, from 0.
	VMOVQ X5, AX
	VPEXTRQ $1, X5, BX
	XORL CX, CX
	CRC32Q AX, CX
	CRC32Q BX, CX
	NOTL CX
	VZEROUPPER
	MOVL CX, ret+40(FP)
	RET
