package edge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionfs/regionfs/internal/api/region"
	"github.com/regionfs/regionfs/internal/api/sigv4"
	"github.com/regionfs/regionfs/internal/serve"
	"github.com/regionfs/regionfs/internal/serve/servetest"
	"github.com/regionfs/regionfs/internal/testkit"
)

const (
	akid   = "AKIAEDGETESTKEY001"
	secret = "edge-test-secret-0123456789"
)

func secretOf(id string) (string, bool) { return secret, id == akid }

// seen is what a region's EFS handler received.
type seen struct {
	mu   sync.Mutex
	reqs []string // region, method, RequestURI, body
}

func (s *seen) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		return ""
	}
	return s.reqs[len(s.reqs)-1]
}

type regionProc struct {
	srv  *serve.Running // nil once stopped
	addr string
}

func startRegion(t *testing.T, name, addr string, rec *seen) *regionProc {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := sigv4.FromContext(r.Context())
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, id.Region+" "+r.Method+" "+r.RequestURI+" "+string(b))
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"FileSystems":[{"FileSystemId":"fs-0123456789abcdef0","Name":"`+name+`","OwnerId":"123456789012","CreationToken":"t","CreationTime":1700000000,"LifeCycleState":"available","NumberOfMountTargets":0,"SizeInBytes":{"Value":0},"PerformanceMode":"generalPurpose","Tags":[]}]}`)
	})
	s, err := region.New(region.Options{Name: name, Secret: secretOf, EFS: h, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return &regionProc{srv: serve.Start(context.Background(), s, ln), addr: ln.Addr().String()}
}

func (p *regionProc) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.srv.Stop(ctx); err != nil {
		t.Error(err)
	}
}

type fixture struct {
	east, west *regionProc
	rec        *seen
	url        string
}

func setup(t *testing.T) *fixture {
	t.Helper()
	rec := &seen{}
	f := &fixture{rec: rec}
	f.east = startRegion(t, "us-east-1", "127.0.0.1:0", rec)
	f.west = startRegion(t, "us-west-2", "127.0.0.1:0", rec)
	e, err := New(Options{
		Secret:   secretOf,
		Regions:  map[string]Target{"us-east-1": {Addr: f.east.addr}, "us-west-2": {Addr: f.west.addr}},
		Registry: prometheus.NewRegistry(),
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, p := range []*regionProc{f.east, f.west} {
			if p.srv != nil {
				p.srv.Stop(ctx)
			}
		}
	})
	f.url = servetest.Start(t, e) // stopped before the regions
	return f
}

func client(url, regionName string) *efs.Client {
	return efs.NewFromConfig(testkit.AWSConfig(url, regionName, akid, secret))
}

func TestRouting(t *testing.T) {
	f := setup(t)
	for _, name := range []string{"us-east-1", "us-west-2", "us-east-1"} {
		out, err := client(f.url, name).DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{})
		if err != nil || len(out.FileSystems) != 1 || aws.ToString(out.FileSystems[0].Name) != name {
			t.Fatalf("%s: %+v %v", name, out, err)
		}
	}
}

func TestByteExact(t *testing.T) {
	f := setup(t)
	c := client(f.url, "us-west-2")
	arn := "arn:aws:elasticfilesystem:us-west-2:123456789012:file-system/fs-0123456789abcdef0"
	if _, err := c.UntagResource(context.Background(), &efs.UntagResourceInput{ResourceId: aws.String(arn), TagKeys: []string{"k 1", "k/2", "é"}}); err != nil {
		t.Fatal(err)
	}
	want := "us-west-2 DELETE /2015-02-01/resource-tags/arn%3Aaws%3Aelasticfilesystem%3Aus-west-2%3A123456789012%3Afile-system%2Ffs-0123456789abcdef0?tagKeys=%C3%A9&tagKeys=k%201&tagKeys=k%2F2 " // as the SDK sends it (canonical order)
	if got := f.rec.last(); got != want {
		t.Fatalf("region saw\n%q\nwant\n%q", got, want)
	}
	if _, err := c.CreateFileSystem(context.Background(), &efs.CreateFileSystemInput{CreationToken: aws.String("tok  with  spaces")}); err != nil {
		var ae smithy.APIError
		if !errors.As(err, &ae) { // the canned answer is not a FileSystemDescription; only transport errors matter
			t.Log(err)
		}
	}
	if got := f.rec.last(); got != `us-west-2 POST /2015-02-01/file-systems {"CreationToken":"tok  with  spaces"}` {
		t.Fatalf("region saw %q", got)
	}
}

func wantAPIError(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), msg) {
		t.Fatalf("got %v, want %s containing %q", err, code, msg)
	}
}

func TestRegionDown(t *testing.T) {
	f := setup(t)
	// A pooled connection to us-east-1, closed by its shutdown below.
	if _, err := client(f.url, "us-east-1").DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{}); err != nil {
		t.Fatal(err)
	}
	f.east.stop(t)
	f.east.srv = nil
	start := time.Now()
	_, err := client(f.url, "us-east-1").DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{})
	took := time.Since(start)
	wantAPIError(t, err, "ServiceUnavailableException", "Region us-east-1 is unavailable")
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != 503 {
		t.Fatalf("status: %v", err)
	}
	if took > time.Second {
		t.Errorf("503 took %v, want < 1s", took)
	}
	if _, err := client(f.url, "us-west-2").DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{}); err != nil {
		t.Fatalf("us-west-2 while us-east-1 is down: %v", err)
	}
	// Back up on the same address.
	rec := &seen{}
	p := startRegion(t, "us-east-1", f.east.addr, rec)
	f.east = p
	for i := 0; i < 3; i++ { // POSTs are not retried by Go itself on a stale pooled connection
		c := client(f.url, "us-east-1")
		_, err := c.CreateFileSystem(context.Background(), &efs.CreateFileSystemInput{CreationToken: aws.String("t")})
		var ae smithy.APIError
		if err != nil && !errors.As(err, &ae) { // the canned answer does not matter, the transport does
			t.Fatalf("us-east-1 after restart: %v", err)
		}
		if _, err := c.DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{}); err != nil {
			t.Fatalf("us-east-1 after restart: %v", err)
		}
	}
}

func TestUnknownRegion(t *testing.T) {
	f := setup(t)
	_, err := client(f.url, "eu-west-1").DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{})
	wantAPIError(t, err, "InvalidSignatureException", "Credential should be scoped to a valid region")
	_, err = efs.NewFromConfig(testkit.AWSConfig(f.url, "us-east-1", akid, "wrong-secret-0000000000")).
		DescribeFileSystems(context.Background(), &efs.DescribeFileSystemsInput{})
	wantAPIError(t, err, "InvalidSignatureException", "The request signature we calculated does not match")
	if got := f.rec.last(); got != "" {
		t.Fatalf("a refused request reached a region: %q", got)
	}
}

func TestUnsigned(t *testing.T) {
	f := setup(t)
	resp, err := http.Get(f.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-Errortype") != "MissingAuthenticationTokenException" || resp.Header.Get("Date") == "" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}

func TestAWSCLIRegionDown(t *testing.T) {
	awsPath := testkit.NeedTool(t, "aws")
	f := setup(t)
	f.east.stop(t)
	f.east.srv = nil
	dir := t.TempDir()
	run := func(regionName string) (string, error) {
		cmd := exec.Command(awsPath, "efs", "describe-file-systems", "--region", regionName, "--query", "FileSystems[0].Name", "--output", "text")
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+akid, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_ENDPOINT_URL_EFS="+f.url,
			"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE="+dir+"/c", "AWS_SHARED_CREDENTIALS_FILE="+dir+"/s")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("us-east-1")
	if err == nil || !strings.Contains(out, "(ServiceUnavailableException) when calling the DescribeFileSystems operation") || !strings.Contains(out, "us-east-1") {
		t.Errorf("us-east-1 down: %v %s", err, out)
	}
	out, err = run("us-west-2")
	if err != nil || strings.TrimSpace(out) != "us-west-2" {
		t.Errorf("us-west-2: %v %s", err, out)
	}
}

// TestUncleanPathNotRedirected (issue 9 §5): /2015-02-01/../../etc/passwd
// gets an AWS-shaped error, not a bare redirect from Go's path cleaning.
func TestUncleanPathNotRedirected(t *testing.T) {
	f := setup(t)
	addr := strings.TrimPrefix(f.url, "http://")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "GET /2015-02-01/../../etc/passwd HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Amzn-Errortype") != "MissingAuthenticationTokenException" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
}

// TestUnsupportedServices: the aws CLI calling services regionfs does not
// implement (restXml, awsJson, awsQuery, restJson) through the edge is
// told so by name, in the protocol it speaks; a wrong secret still gets
// the signature error.
func TestUnsupportedServices(t *testing.T) {
	awsPath := testkit.NeedTool(t, "aws")
	f := setup(t)
	dir := t.TempDir()
	run := func(sec string, args ...string) string {
		cmd := exec.Command(awsPath, append(args, "--endpoint-url", f.url, "--region", "us-east-1")...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+akid, "AWS_SECRET_ACCESS_KEY="+sec,
			"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE="+dir+"/c", "AWS_SHARED_CREDENTIALS_FILE="+dir+"/s")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	for _, tc := range []struct {
		args    []string
		service string
	}{
		{[]string{"s3api", "list-buckets"}, "s3"},
		{[]string{"sqs", "list-queues"}, "sqs"},
		{[]string{"sts", "get-caller-identity"}, "sts"},
		{[]string{"lambda", "list-functions"}, "lambda"},
	} {
		out := run(secret, tc.args...)
		if !strings.Contains(out, "(NotImplemented)") || !strings.Contains(out, "regionfs does not implement the '"+tc.service+"' API.") {
			t.Errorf("aws %v: %s", tc.args, out)
		}
		if out := run("wrong-secret-0000000000", tc.args...); strings.Contains(out, "regionfs does not implement") {
			t.Errorf("aws %v with a wrong secret learned the service is not implemented: %s", tc.args, out)
		}
	}
	if got := f.rec.last(); got != "" {
		t.Fatalf("a request for another service reached a region: %q", got)
	}
}

// TestBodyTooLarge: a body past the edge's limit gets the 413 in the
// protocol of its service (the aws CLI's sns publish of an 8 MiB message
// failed with "Unable to parse response ... invalid XML received": the
// error was EFS's JSON), and a client that sends the whole body before it
// reads (python's http.client, as botocore's callers may use) gets the 413
// too, not "broken pipe".
func TestBodyTooLarge(t *testing.T) {
	f := setup(t)
	addr := strings.TrimPrefix(f.url, "http://")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const size = 16 << 20
	bw := bufio.NewWriterSize(nc, 1<<16)
	fmt.Fprintf(bw, "POST /2015-02-01/file-systems HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", addr, size)
	chunk := strings.Repeat("x", 1<<20)
	for range size >> 20 {
		bw.WriteString(chunk)
	}
	if err := bw.Flush(); err != nil {
		t.Fatalf("sending %d bytes: %v", size, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("reading the answer to %d bytes: %v", size, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 || resp.Header.Get("X-Amzn-Errortype") != "RequestEntityTooLargeException" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}

	awsPath := testkit.NeedTool(t, "aws")
	dir := t.TempDir()
	msg := dir + "/msg"
	if err := os.WriteFile(msg, []byte(strings.Repeat("m", 8<<20)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(awsPath, "sns", "publish", "--topic-arn", "arn:aws:sns:us-east-1:123456789012:t", "--message", "file://"+msg,
		"--endpoint-url", f.url, "--region", "us-east-1")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+akid, "AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1", "AWS_CONFIG_FILE="+dir+"/c", "AWS_SHARED_CREDENTIALS_FILE="+dir+"/s")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "An error occurred (RequestEntityTooLarge) when calling the Publish operation: The request body of ") {
		t.Fatalf("aws sns publish of 8 MiB: %s", out)
	}
}
