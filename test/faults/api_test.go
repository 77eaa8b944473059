package faults

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"
	"github.com/aws/smithy-go"
)

// TestAPIBadInput (issue 9 §5) against regionfs serve: a path such as
// /2015-02-01/../../etc/passwd gets an AWS-shaped error (it got a bare
// 307 redirect), and an access point whose root directory holds a NUL is
// refused with BadRequest (it was accepted, and mounting it then failed).
func TestAPIBadInput(t *testing.T) {
	needSuite(t)
	r := startRegion(t, regionOpts{})
	for _, p := range []string{"/2015-02-01/../../etc/passwd", "/2015-02-01/file-systems/../mount-targets", "/./metrics"} {
		nc, err := net.Dial("tcp", r.api)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(nc, "GET "+p+" HTTP/1.1\r\nHost: "+r.api+"\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		nc.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 == 3 || resp.Header.Get("X-Amzn-Errortype") == "" {
			t.Errorf("GET %s: %d, x-amzn-ErrorType %q, Location %q: want an AWS error", p, resp.StatusCode,
				resp.Header.Get("X-Amzn-Errortype"), resp.Header.Get("Location"))
		}
	}
	ctx := t.Context()
	fsID, _ := r.fileSystem(ctx)
	_, err := r.efs.CreateAccessPoint(ctx, &efs.CreateAccessPointInput{
		ClientToken: aws.String("nul"), FileSystemId: aws.String(fsID),
		RootDirectory: &types.RootDirectory{Path: aws.String("/data\x00x")},
	})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "BadRequest" {
		t.Fatalf("CreateAccessPoint with a NUL in the path: %v, want BadRequest", err)
	}
	t.Logf("NUL in RootDirectory.Path: %s: %s", ae.ErrorCode(), ae.ErrorMessage())
}
