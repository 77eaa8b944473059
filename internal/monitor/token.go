package monitor

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"

	"github.com/regionfs/regionfs/internal/refusal"
)

// Kinds of page tokens: a token is only good for the list that issued it.
const (
	tokenAlarms     byte = 'a'
	tokenHistory    byte = 'h'
	tokenMetrics    byte = 'm'
	tokenMetricData byte = 'd'
)

// encodeToken makes the NextToken of a page that ended at after, in the
// list of kind: base64url of the kind, after and the first 4 bytes of their
// SHA-256, so that a token this service did not issue (a typo, another
// list's token, a token from elsewhere that happens to be base64) is
// refused as InvalidNextToken rather than read as a position.
func encodeToken(kind byte, after string) string {
	b := append([]byte{kind}, after...)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(append(b, sum[:4]...))
}

// decodeToken returns the position of a token encodeToken issued for kind
// ("" for no token).
func decodeToken(kind byte, t string) (string, error) {
	if t == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil || len(b) < 6 || b[0] != kind {
		return "", badToken(t)
	}
	body, check := b[:len(b)-4], b[len(b)-4:]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:4], check) {
		return "", badToken(t)
	}
	return string(body[1:]), nil
}

func badToken(t string) error {
	return refusal.Errorf(ErrInvalidNextToken, "The NextToken %s is not one this service issued.", clip(t))
}
