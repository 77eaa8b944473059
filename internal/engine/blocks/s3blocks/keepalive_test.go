package s3blocks_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/regionfs/regionfs/internal/engine/blocks/s3blocks"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestCompleteMultipartUploadKeepsConnection: a request with a body whose
// answer has a body too (CompleteMultipartUpload; PutObject's answer has
// none, and net/http hands it over only once the request is written) is
// answered at once by a fast S3 server, and net/http's connection writer
// is held after the last byte of the request body went out, until the SDK
// has the answer and has closed its request body, as on a loaded node
// whose writer goroutine waits for a CPU. Before, the writer then read the
// closed body (its check that nothing follows Content-Length), took its
// io.EOF for a failed write and closed the connection: a new connection
// for every call, and the call failed when the answer was still being read.
func TestCompleteMultipartUploadKeepsConnection(t *testing.T) {
	var dialled atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
				`<CompleteMultipartUploadResult><Bucket>bucket</Bucket><Key>k</Key><ETag>"0123456789abcdef0123456789abcdef-2"</ETag></CompleteMultipartUploadResult>`)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				dialled.Add(1)
			}
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := s3blocks.ParseURL("s3://bucket?endpoint=http://" + ln.Addr().String() + "&access_key_id=AKID&secret_access_key=SECRET")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{}, 1) // the SDK has the answer and closed its body
	dial := (&net.Dialer{}).DialContext
	cl, err := s3blocks.NewClientDialling(t.Context(), c, testkit.HoldAfter(dial, []byte("</CompleteMultipartUpload>"), release))
	if err != nil {
		t.Fatal(err)
	}
	answered := func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			// Innermost: it runs once the HTTP handler returned, which
			// has closed the request body, and before the answer is
			// decoded.
			return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("releaseWriter",
				func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleDeserialize(ctx, in)
					select {
					case release <- struct{}{}:
					default:
					}
					return out, md, err
				}), middleware.After)
		})
	}
	const calls = 20
	failed := 0
	for i := range calls {
		_, err := cl.CompleteMultipartUpload(t.Context(), &s3.CompleteMultipartUploadInput{
			Bucket: aws.String("bucket"), Key: aws.String(fmt.Sprint(i)), UploadId: aws.String("upload"),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
				{ETag: aws.String(`"0123456789abcdef0123456789abcdef"`), PartNumber: aws.Int32(1)},
				{ETag: aws.String(`"fedcba9876543210fedcba9876543210"`), PartNumber: aws.Int32(2)},
			}},
		}, answered)
		if err != nil {
			failed++
			t.Logf("call %d: %v", i, err)
		}
	}
	if n := dialled.Load(); n > 2 || failed > 0 {
		t.Errorf("%d connections for %d CompleteMultipartUploads one after the other (want 1), %d failed (want none): an answered call cost its connection", n, calls, failed)
	}
}
