package region

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionfs/regionfs/internal/api/awserr"
	ec2api "github.com/regionfs/regionfs/internal/api/ec2"
	"github.com/regionfs/regionfs/internal/api/sigv4"
	"github.com/regionfs/regionfs/internal/serve/servetest"
	"github.com/regionfs/regionfs/internal/testkit"
)

const (
	akid   = "AKIAREGIONTESTKEY1"
	secret = "region-test-secret-0123456789"
)

type testServer struct {
	*Server
	url string
	reg *prometheus.Registry
}

func start(t *testing.T, clock func() time.Time, efsHandler http.Handler) *testServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	ec2h := ec2api.NewHandler(ec2api.Region{Name: "us-east-1", AccountID: "123456789012",
		VPC:     ec2api.VPC{ID: "vpc-0a1b2c3d4e5f60718", CIDR: netip.MustParsePrefix("127.1.0.0/16")},
		Subnets: []ec2api.Subnet{{ID: "subnet-0a1b2c3d4e5f60001", AvailabilityZone: "us-east-1a", AvailabilityZoneID: "use1-az1", CIDR: netip.MustParsePrefix("127.1.1.0/24")}},
	}, slog.New(slog.DiscardHandler))
	s, err := New(Options{
		Name:     "us-east-1",
		Secret:   func(id string) (string, bool) { return secret, id == akid },
		EFS:      efsHandler,
		EC2:      ec2h,
		Registry: reg,
		Logger:   slog.New(slog.DiscardHandler),
		Clock:    clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: s, url: servetest.Start(t, s), reg: reg}
}

func efsClient(url, key, sec string, attempts int) *efs.Client {
	return efs.NewFromConfig(testkit.AWSConfig(url, "us-east-1", key, sec), func(o *efs.Options) { o.RetryMaxAttempts = attempts })
}

func wantAPIError(t *testing.T, err error, code, msgPrefix string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want %s, got %v", code, err)
	}
	if ae.ErrorCode() != code || !strings.HasPrefix(ae.ErrorMessage(), msgPrefix) {
		t.Fatalf("got %s %q, want %s %q", ae.ErrorCode(), ae.ErrorMessage(), code, msgPrefix)
	}
}

// echoEFS answers every request with the identity it was given.
var echoEFS = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	id, ok := sigv4.FromContext(r.Context())
	body, _ := io.ReadAll(r.Body)
	if !ok || id.Service != "elasticfilesystem" || id.Region != "us-east-1" || id.AccessKeyID != akid {
		http.Error(w, "no identity", 500)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if strings.Contains(string(body), "CreationToken") {
		w.WriteHeader(201)
		io.WriteString(w, `{"FileSystemId":"fs-0123456789abcdef0","LifeCycleState":"creating","CreationTime":1700000000,"OwnerId":"123456789012"}`)
		return
	}
	io.WriteString(w, `{"FileSystems":[]}`)
})

func TestDispatchEFS(t *testing.T) {
	s := start(t, nil, echoEFS)
	c := efsClient(s.url, akid, secret, 1)
	out, err := c.CreateFileSystem(context.Background(), &efs.CreateFileSystemInput{CreationToken: aws.String("tok")})
	if err != nil || aws.ToString(out.FileSystemId) != "fs-0123456789abcdef0" {
		t.Fatalf("%+v %v", out, err)
	}
	if _, err := c.DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{}); err != nil {
		t.Fatal(err)
	}
}

func TestAuthErrorsEFS(t *testing.T) {
	s := start(t, nil, echoEFS)
	ctx := context.Background()
	_, err := efsClient(s.url, akid, "wrong-secret-0123456789", 1).DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
	wantAPIError(t, err, "InvalidSignatureException", "The request signature we calculated does not match")
	_, err = efsClient(s.url, "AKIAUNKNOWNKEY0000", secret, 1).DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
	wantAPIError(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")
	wrongRegion := efs.NewFromConfig(testkit.AWSConfig(s.url, "eu-west-1", akid, secret))
	_, err = wrongRegion.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
	wantAPIError(t, err, "InvalidSignatureException", "Credential should be scoped to a valid region, not 'eu-west-1'.")

	resp, err := http.Get(s.url + "/2015-02-01/file-systems")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-Errortype") != "MissingAuthenticationTokenException" ||
		resp.Header.Get("Date") == "" || resp.Header.Get("X-Amzn-Requestid") == "" || !strings.Contains(string(b), `"Message":"Missing Authentication Token"`) {
		t.Fatalf("unauthenticated: %d %v %s", resp.StatusCode, resp.Header, b)
	}
}

func TestExpiredAndClockCorrection(t *testing.T) {
	skewed := func() time.Time { return time.Now().Add(20 * time.Minute) }
	s := start(t, skewed, echoEFS)
	_, err := efsClient(s.url, akid, secret, 1).DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{})
	wantAPIError(t, err, "InvalidSignatureException", "Signature expired: ")
	// With retries the SDK reads the Date header of the failure, corrects
	// its clock and succeeds.
	if _, err := efsClient(s.url, akid, secret, 3).DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{}); err != nil {
		t.Fatalf("aws-sdk-go-v2 did not correct its clock from the Date header: %v", err)
	}
}

func TestEC2(t *testing.T) {
	s := start(t, nil, nil)
	c := ec2.NewFromConfig(testkit.AWSConfig(s.url, "us-east-1", akid, secret))
	out, err := c.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{})
	if err != nil || len(out.Subnets) != 1 {
		t.Fatalf("%+v %v", out, err)
	}
	bad := ec2.NewFromConfig(testkit.AWSConfig(s.url, "us-east-1", akid, "wrong-secret-0123456789"))
	_, err = bad.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{})
	wantAPIError(t, err, "AuthFailure", "The request signature we calculated does not match")
}

func TestEC2Expired(t *testing.T) {
	s := start(t, func() time.Time { return time.Now().Add(-20 * time.Minute) }, nil)
	c := ec2.NewFromConfig(testkit.AWSConfig(s.url, "us-east-1", akid, secret))
	_, err := c.DescribeSubnets(context.Background(), &ec2.DescribeSubnetsInput{})
	wantAPIError(t, err, "RequestExpired", "Signature not yet current")
}

func TestUnknownOperations(t *testing.T) {
	s := start(t, nil, nil)
	_, err := efsClient(s.url, akid, secret, 1).DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{})
	wantAPIError(t, err, "UnknownOperationException", "The action GET /2015-02-01/file-systems is not valid")
}

func TestBodyTooLarge(t *testing.T) {
	s := start(t, nil, echoEFS)
	req, _ := http.NewRequest("POST", s.url+"/2015-02-01/file-systems", strings.NewReader(strings.Repeat("x", DefaultMaxBodyBytes+1)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 || resp.Header.Get("X-Amzn-Errortype") != "RequestEntityTooLargeException" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}

// TestBodyTooLargeSentWhole: a client that sends its whole body before it
// reads (the aws CLI, boto3, curl without Expect) gets the 413 in AWS's
// shape for bodies of 1 to 64 MiB, with and without a Content-Length, and
// the server closes the connection cleanly after it. Before, the server
// answered and closed with the body unread, and the client's write or read
// failed with "connection reset by peer" or "broken pipe".
func TestBodyTooLargeSentWhole(t *testing.T) {
	s := start(t, nil, echoEFS)
	for _, tc := range []struct {
		name    string
		size    int
		chunked bool
	}{
		{"4MiB", 4 << 20, false},
		{"64MiB", 64 << 20, false},
		{"8MiB chunked", 8 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := sendWhole(t, s.url, tc.size, tc.chunked)
			if resp.StatusCode != 413 || resp.Header.Get("X-Amzn-Errortype") != "RequestEntityTooLargeException" {
				t.Fatalf("%d %v", resp.StatusCode, resp.Header)
			}
			if !resp.Close {
				t.Errorf("the connection stays open after a refused body: %v", resp.Header)
			}
		})
	}
}

// TestBodyTooLargeInServiceShape: a body refused for its size is answered
// in the protocol of the service its credential scope names (XML for EC2,
// SNS and CloudWatch's query protocol), not in EFS's JSON, which botocore
// could not parse ("Unable to parse response ... invalid XML received").
func TestBodyTooLargeInServiceShape(t *testing.T) {
	s := start(t, nil, echoEFS)
	cfg := testkit.AWSConfig(s.url, "us-east-1", akid, secret)
	cfg.RetryMaxAttempts = 1
	big := strings.Repeat("a", DefaultMaxBodyBytes+1)
	_, err := ec2.NewFromConfig(cfg).DescribeSubnets(t.Context(), &ec2.DescribeSubnetsInput{SubnetIds: []string{big}})
	wantAPIError(t, err, "RequestEntityTooLarge", "The request body of ")
	_, err = sns.NewFromConfig(cfg).Publish(t.Context(), &sns.PublishInput{TopicArn: aws.String("arn:aws:sns:us-east-1:123456789012:t"), Message: aws.String(big)})
	wantAPIError(t, err, "RequestEntityTooLarge", "The request body of ")
	_, err = cloudwatch.NewFromConfig(cfg).DescribeAlarms(t.Context(), &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String(big)})
	wantAPIError(t, err, "RequestEntityTooLarge", "The request body of ")
}

// sendWhole writes a POST with a body of size bytes to the server at url,
// all of it before it reads the answer, as botocore does.
func sendWhole(t *testing.T, url string, size int, chunked bool) *http.Response {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	bw := bufio.NewWriterSize(nc, 1<<16)
	io.WriteString(bw, "POST /2015-02-01/file-systems HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
	chunk := strings.Repeat("x", 1<<20)
	if chunked {
		io.WriteString(bw, "Transfer-Encoding: chunked\r\n\r\n")
		for range size >> 20 {
			fmt.Fprintf(bw, "%x\r\n%s\r\n", len(chunk), chunk)
		}
		io.WriteString(bw, "0\r\n\r\n")
	} else {
		fmt.Fprintf(bw, "Content-Length: %d\r\n\r\n", size)
		for range size >> 20 {
			bw.WriteString(chunk)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatalf("sending %d bytes: %v", size, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("reading the answer to %d bytes: %v", size, err)
	}
	resp.Body.Close()
	return resp
}

func TestMetrics(t *testing.T) {
	s := start(t, nil, echoEFS)
	efsClient(s.url, akid, secret, 1).DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{})
	efsClient(s.url, akid, "bad-secret-0123456789", 1).DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{})
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`regionfs_api_requests_total{service="elasticfilesystem",status="200"} 1`,
		`regionfs_api_requests_total{service="elasticfilesystem",status="403"} 1`,
		`regionfs_api_auth_failures_total{reason="signature"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("missing %s in\n%s", want, b)
		}
	}
}

// TestQueryProtocolErrors drives CloudWatch and SNS with the aws CLI: until
// those services exist their operations answer InvalidAction, and a wrong
// secret answers SignatureDoesNotMatch, in the protocol the CLI speaks.
func TestQueryProtocolErrors(t *testing.T) {
	awsPath := testkit.NeedTool(t, "aws")
	s := start(t, nil, nil)
	dir := t.TempDir()
	run := func(sec string, args ...string) string {
		cmd := exec.Command(awsPath, append(args, "--endpoint-url", s.url)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+akid, "AWS_SECRET_ACCESS_KEY="+sec, "AWS_DEFAULT_REGION=us-east-1",
			"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE="+dir+"/c", "AWS_SHARED_CREDENTIALS_FILE="+dir+"/s")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	for _, tc := range []struct {
		sec  string
		args []string
		want string
	}{
		{secret, []string{"cloudwatch", "list-metrics"}, "(InvalidAction) when calling the ListMetrics operation: The action ListMetrics is not valid"},
		{"wrong-secret-0123456789", []string{"cloudwatch", "list-metrics"}, "(SignatureDoesNotMatch) when calling the ListMetrics operation"},
		{secret, []string{"sns", "list-topics"}, "(InvalidAction) when calling the ListTopics operation: The action ListTopics is not valid"},
		{"wrong-secret-0123456789", []string{"sns", "list-topics"}, "(SignatureDoesNotMatch) when calling the ListTopics operation"},
	} {
		if out := run(tc.sec, tc.args...); !strings.Contains(out, tc.want) {
			t.Errorf("aws %v: %s\nwant %q", tc.args, out, tc.want)
		}
	}
}

// TestSDKUnknownOperations: until CloudWatch and SNS exist, aws-sdk-go-v2's
// clients (CBOR for CloudWatch, query for SNS) get InvalidAction.
func TestSDKUnknownOperations(t *testing.T) {
	s := start(t, nil, nil)
	cfg := testkit.AWSConfig(s.url, "us-east-1", akid, secret)
	cw := cloudwatch.NewFromConfig(cfg)
	_, err := cw.ListMetrics(context.Background(), &cloudwatch.ListMetricsInput{})
	wantAPIError(t, err, "InvalidAction", "The action ListMetrics is not valid for this web service.")
	sn := sns.NewFromConfig(cfg)
	_, err = sn.ListTopics(context.Background(), &sns.ListTopicsInput{})
	wantAPIError(t, err, "InvalidAction", "The action ListTopics is not valid for this web service.")
	bad := cloudwatch.NewFromConfig(testkit.AWSConfig(s.url, "us-east-1", akid, "wrong-secret-0123456789"))
	_, err = bad.ListMetrics(context.Background(), &cloudwatch.ListMetricsInput{})
	wantAPIError(t, err, "SignatureDoesNotMatch", "The request signature we calculated does not match")
}

// TestRefusedRequestsNeverReachHandlers: a request refused for its
// signature, date or size changes nothing, because no handler sees it.
func TestRefusedRequestsNeverReachHandlers(t *testing.T) {
	var calls atomic.Int32
	counting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1); echoEFS(w, r) })
	s := start(t, func() time.Time { return time.Now().Add(16 * time.Minute) }, counting)
	ctx := context.Background()
	in := &efs.CreateFileSystemInput{CreationToken: aws.String("tok")}
	efsClient(s.url, akid, "wrong-secret-0123456789", 1).CreateFileSystem(ctx, in)
	efsClient(s.url, "AKIAUNKNOWNKEY0000", secret, 1).CreateFileSystem(ctx, in)
	efsClient(s.url, akid, secret, 1).CreateFileSystem(ctx, in) // expired: the server's clock is 16 min ahead
	req, _ := http.NewRequest("POST", s.url+"/2015-02-01/file-systems", strings.NewReader(strings.Repeat("{", DefaultMaxBodyBytes+10)))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	req, _ = http.NewRequest("POST", s.url+"/2015-02-01/file-systems", strings.NewReader(`{"CreationToken":"x"}`))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=garbage")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d refused requests reached the EFS handler", n)
	}
}

// TestUncleanPaths is the regression test of issue 9 §5: a path such as
// /2015-02-01/../../etc/passwd got a bare 307 redirect from Go's ServeMux
// instead of an AWS-shaped error.
func TestUncleanPaths(t *testing.T) {
	s := start(t, nil, echoEFS)
	addr := strings.TrimPrefix(s.url, "http://")
	for _, p := range []string{"/2015-02-01/../../etc/passwd", "/2015-02-01//file-systems", "/./metrics", "/2015-02-01/file-systems/.."} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(nc, "GET "+p+" HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufioReader(nc), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		nc.Close()
		if resp.StatusCode/100 == 3 || resp.Header.Get("Location") != "" {
			t.Errorf("%s: redirect %d to %q", p, resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp.Header.Get("X-Amzn-Errortype") == "" && resp.Header.Get("X-Amzn-Requestid") == "" {
			t.Errorf("%s: %d without an AWS error shape", p, resp.StatusCode)
		}
	}
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// TestBodiesBudget (issue 9 §4): bodies are read only within the budget;
// a request waits for its share and gives up with its client.
func TestBodiesBudget(t *testing.T) {
	b := NewBodies(100)
	pr, pw := io.Pipe()
	r1 := httptestRequest(t, pr, 80)
	got := make(chan error, 1)
	var release1 func()
	go func() {
		var err error
		_, release1, err = b.Read(newRecorder(), r1, 1000)
		got <- err
	}()
	// The first holds 80 of 100 bytes while its client is slow.
	pw.Write(make([]byte, 40))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r2 := httptestRequest(t, strings.NewReader(strings.Repeat("x", 80)), 80).WithContext(ctx)
	if _, _, err := b.Read(newRecorder(), r2, 1000); !errors.Is(err, awserr.ErrMalformedRequest) {
		t.Fatalf("second body read beyond the budget: %v", err)
	}
	pw.Write(make([]byte, 40))
	pw.Close()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	release1()
	r3 := httptestRequest(t, strings.NewReader(strings.Repeat("x", 80)), 80)
	body, release, err := b.Read(newRecorder(), r3, 1000)
	if err != nil || len(body) != 80 {
		t.Fatalf("read once the budget is free: %d %v", len(body), err)
	}
	release()
}

func httptestRequest(t *testing.T, body io.Reader, n int64) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "http://x/", body)
	if err != nil {
		t.Fatal(err)
	}
	r.ContentLength = n
	return r
}

type recorder struct{ h http.Header }

func newRecorder() *recorder                    { return &recorder{h: http.Header{}} }
func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(int)             {}

// TestBodiesReleasedBeforeDrain: the budget a body too large took is given
// back before what is left of it is drained (the drain keeps nothing and
// lasts up to drainTime; held, a few dozen bodies sent slowly made every
// other request wait for them).
func TestBodiesReleasedBeforeDrain(t *testing.T) {
	for _, sized := range []bool{true, false} {
		const limit = 1 << 10
		b := NewBodies(4 * limit)
		body := &drainWatch{left: 3 * limit, bodies: b, after: limit + 1}
		r := httptest.NewRequest(http.MethodPost, "/", body)
		r.ContentLength = -1
		if sized {
			r.ContentLength = 3 * limit
		}
		_, release, err := b.Read(httptest.NewRecorder(), r, limit)
		release()
		if !errors.Is(err, awserr.ErrBodyTooLarge) {
			t.Fatalf("Content-Length known %v: %v, not too large", sized, err)
		}
		if body.left != 0 || body.drained == 0 {
			t.Fatalf("Content-Length known %v: %d bytes left unread, %d drained", sized, body.left, body.drained)
		}
		if body.held != 0 {
			t.Fatalf("Content-Length known %v: the budget was held during %d of %d reads of the drain", sized, body.held, body.drained)
		}
	}
}

// drainWatch is a body of left bytes that, past the first after bytes,
// counts its reads (drained) and those made while bodies' budget was not
// all free (held).
type drainWatch struct {
	left, read, after int
	drained, held     int
	bodies            *Bodies
}

func (d *drainWatch) Read(p []byte) (int, error) {
	if d.left == 0 {
		return 0, io.EOF
	}
	if d.read >= d.after {
		d.drained++
		if !d.bodies.sem.TryAcquire(d.bodies.limit) {
			d.held++
		} else {
			d.bodies.sem.Release(d.bodies.limit)
		}
	}
	n := min(len(p), d.left, 256)
	d.left -= n
	d.read += n
	return n, nil
}
