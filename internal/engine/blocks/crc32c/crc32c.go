package crc32c

import "hash/crc32"

var table = crc32.MakeTable(crc32.Castagnoli)

// foldMin is the shortest input folded: below it the fold's setup costs
// more than it saves.
const foldMin = 1024

// Update returns the CRC-32C of p appended to data whose CRC-32C is crc:
// crc32.Update(crc, crc32.MakeTable(crc32.Castagnoli), p).
func Update(crc uint32, p []byte) uint32 {
	if hasFold && len(p) >= foldMin {
		n := len(p) &^ (foldBytes - 1)
		crc = fold(crc, p[:n])
		p = p[n:]
	}
	return crc32.Update(crc, table, p)
}

// Folds reports whether Update folds long inputs on this CPU.
func Folds() bool { return hasFold }

// foldBytes is what one round of the fold takes: four 512-bit registers.
const foldBytes = 256
