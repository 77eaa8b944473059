package monitor

import (
	"github.com/regionfs/regionfs/internal/pagetoken"
	"github.com/regionfs/regionfs/internal/refusal"
)

// Kinds of page tokens: a token is only good for the list that issued it.
const (
	tokenAlarms     byte = 'a'
	tokenHistory    byte = 'h'
	tokenMetrics    byte = 'm'
	tokenMetricData byte = 'd'
	tokenDashboards byte = 'b'
)

// encodeToken makes the NextToken of a page that ended at after, in the
// list of kind (package pagetoken: a token this service did not issue is
// refused as InvalidNextToken rather than read as a position).
func encodeToken(kind byte, after string) string { return pagetoken.Encode(kind, after) }

// decodeToken returns the position of a token encodeToken issued for kind
// ("" for no token).
func decodeToken(kind byte, t string) (string, error) {
	if t == "" {
		return "", nil
	}
	after, ok := pagetoken.Decode(kind, t)
	if !ok {
		return "", badToken(t)
	}
	return after, nil
}

func badToken(t string) error {
	return refusal.Errorf(ErrInvalidNextToken, "The NextToken %s is not one this service issued.", clip(t))
}
