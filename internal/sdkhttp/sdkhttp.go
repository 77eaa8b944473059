package sdkhttp

import (
	"bytes"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// CopyBodies returns next sending each request with an in-memory copy of
// its body (the package doc says why). A nil next (an aws.Config from
// LoadDefaultConfig has none unless a CA bundle is set) is the SDK's
// default client.
func CopyBodies(next aws.HTTPClient) aws.HTTPClient {
	if next == nil {
		next = awshttp.NewBuildableClient()
	}
	return copiedBodies{next}
}

// copiedBodies sends each request with an in-memory copy of its body.
type copiedBodies struct{ next aws.HTTPClient }

func (c copiedBodies) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength < 0 {
		return c.next.Do(r)
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	out := r.Clone(r.Context())
	out.Body = io.NopCloser(bytes.NewReader(b))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	out.ContentLength = int64(len(b))
	return c.next.Do(out)
}
