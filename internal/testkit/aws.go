package testkit

import (
	"bytes"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// AWSConfig configures an aws-sdk-go-v2 client (efs.NewFromConfig,
// ec2.NewFromConfig, …) for a test endpoint: the region, static
// credentials, SDKHTTPClient and a single attempt, so that a test sees the
// first answer.
func AWSConfig(endpoint, region, accessKeyID, secretKey string) aws.Config {
	return aws.Config{
		Region:           region,
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(accessKeyID, secretKey, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       SDKHTTPClient(),
	}
}

// SDKHTTPClient is the HTTP client of a test's aws-sdk-go-v2 clients (the
// SDK's default one) with the SDK's request body race taken out, for
// clients that make a single attempt.
//
// The race: the SDK closes its request body as soon as the response
// headers arrive, and net/http's connection writer may not be done with
// that body yet. Once the last body byte is on the wire the server may
// answer; if the writer goroutine is descheduled before its final read of
// the body (it checks that no bytes follow Content-Length), it reads the
// closed body, whose WriteTo answers io.EOF (smithy-go's safeReadCloser,
// v1.28.11 and before). net/http takes that for a failed write and closes
// the connection while the caller is reading the response: "StatusCode:
// 200, … deserialization failed, … use of closed network connection"
// (aws/aws-sdk-go-v2#1825, #2737). The SDK's retryer hides it by retrying
// the call; a test with RetryMaxAttempts 1 failed (15 of 248 EC2 calls
// through a freshly started regionfs dev, race detector, load 10–15).
//
// Here net/http gets an in-memory copy of the body instead: it writes the
// headers and the body from its buffer in one go, after it has read and
// closed that copy, so no answer can arrive while it still reads the body,
// and the body the SDK closes is not the one it reads. Bodies of unknown
// length (event streams) are passed through.
func SDKHTTPClient() aws.HTTPClient {
	return copiedBodies{awshttp.NewBuildableClient()}
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
