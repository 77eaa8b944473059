// Package uuid makes random UUIDs (version 4), the shape of AWS's request
// ids, CloudFormation's stack ids and KMS's key ids.
package uuid

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns a random UUID (version 4) in its canonical form,
// 8-4-4-4-12 lowercase hex digits.
func New() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant RFC 4122
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
