package testkit

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"

	"github.com/regionfs/regionfs/internal/sdkhttp"
)

// TestSDKHTTPClientBodyClosedEarly: a server answers as soon as the last
// byte of the request body arrives, and net/http's connection writer is
// held right after it put that byte on the wire until the SDK has closed
// its request body (the SDK does so when the response headers arrive).
// Through SDKHTTPClient (sdkhttp.CopyBodies) the request still counts as written and the call
// succeeds. Before, the writer read the closed body, got io.EOF, and
// closed the connection under the response being read: "StatusCode: 200,
// … use of closed network connection" (TestDevStopsOnScaleOutBackends in
// CI; there the writer was descheduled by load, here it is held).
func TestSDKHTTPClientBodyClosedEarly(t *testing.T) {
	const body = "Action=DescribeSecurityGroups&Version=2016-11-15"
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
			`<DescribeSecurityGroupsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><securityGroupInfo>`+
			string(bytes.Repeat([]byte(`<item><groupId>sg-12345678</groupId><groupName>default</groupName></item>`), 200))+
			`</securityGroupInfo></DescribeSecurityGroupsResponse>`)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	sdkClosed := make(chan struct{}) // the SDK closed its request body
	wrote := make(chan error, 1)     // net/http is done writing the request
	sdk := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.DialContext = HoldAfter(tr.DialContext, []byte(body), sdkClosed)
	})
	traced := doFunc(func(r *http.Request) (*http.Response, error) {
		tr := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) { wrote <- i.Err }}
		return sdk.Do(r.WithContext(httptrace.WithClientTrace(r.Context(), tr)))
	})
	cfg := AWSConfig("http://"+ln.Addr().String(), "us-east-1", "AKID", "SECRET")
	cfg.HTTPClient = sdkhttp.CopyBodies(traced)
	c := ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			// Innermost: it runs once the HTTP handler returned, which
			// has closed the request body, and before the response is
			// decoded.
			return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("releaseWriter",
				func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleDeserialize(ctx, in)
					close(sdkClosed)
					if werr := Recv(t, "the request's write", 30*time.Second, wrote); werr != nil {
						t.Errorf("net/http failed writing a request the server answered: %v", werr)
					}
					return out, md, err
				}), middleware.After)
		})
	})
	out, err := c.DescribeSecurityGroups(t.Context(), &ec2.DescribeSecurityGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SecurityGroups) != 200 {
		t.Fatalf("%d security groups, want 200", len(out.SecurityGroups))
	}
}

type doFunc func(*http.Request) (*http.Response, error)

func (f doFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }
