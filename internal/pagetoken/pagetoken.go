// Package pagetoken makes and reads the page tokens of list operations
// (EFS Marker and NextToken, CloudWatch, SNS, KMS, CloudFormation and EC2
// NextToken): opaque to the client, good only for the list that issued
// them, refused whole when a byte was changed, added or removed.
//
// A token is the unpadded base64url of kind ‖ position ‖ the first 4 bytes
// of their SHA-256. The checksum is not a secret (a client could forge a
// token): callers still check that the position is one of theirs (in range,
// well formed); it refuses what a client did not get from the list (a
// typo, a truncated or extended token, another list's token), which a bare
// position read as the next one would take.
package pagetoken

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
)

// encoding is strict: a token whose last character carries bits the
// encoder leaves zero is another string for the same bytes, refused.
var encoding = base64.RawURLEncoding.Strict()

const sumLen = 4

// Encode returns the token of position after in the list of kind.
func Encode(kind byte, after string) string {
	b := make([]byte, 0, 1+len(after)+sumLen)
	b = append(b, kind)
	b = append(b, after...)
	sum := sha256.Sum256(b)
	return encoding.EncodeToString(append(b, sum[:sumLen]...))
}

// Decode returns the position of a token Encode issued for kind, or
// false for any other string (the empty one included).
func Decode(kind byte, token string) (string, bool) {
	b, err := encoding.DecodeString(token)
	if err != nil || len(b) < 1+sumLen || b[0] != kind {
		return "", false
	}
	body, check := b[:len(b)-sumLen], b[len(b)-sumLen:]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:sumLen], check) {
		return "", false
	}
	return string(body[1:]), true
}

// EncodeIndex returns the token of index i (≥ 0) in the list of kind.
func EncodeIndex(kind byte, i int) string { return Encode(kind, strconv.Itoa(i)) }

// DecodeIndex returns the index of a token EncodeIndex issued for kind,
// or false for any other string or an index above n (the list's length).
func DecodeIndex(kind byte, token string, n int) (int, bool) {
	s, ok := Decode(kind, token)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i > n || strconv.Itoa(i) != s {
		return 0, false
	}
	return i, true
}
