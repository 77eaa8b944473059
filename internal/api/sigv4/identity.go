package sigv4

import (
	"context"
	"net/http"
)

// Identity is the verified caller of a request: the access key id that signed
// it and the region and service of its credential scope.
type Identity struct {
	AccessKeyID string
	Region      string
	Service     string
}

type identityKey struct{}

// NewContext returns a copy of ctx carrying id.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the Identity stored in ctx by NewContext, if any.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Claimed returns the access key id and credential scope r states, not
// verified: for answering in the protocol of the request's service before
// the request can be verified (a body refused for its size). An unparsable
// signature gives whatever of the scope could be parsed.
func Claimed(r *http.Request) Identity {
	a, _ := parse(r)
	return a.identity()
}
