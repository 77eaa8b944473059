package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testKey    = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

var signTime = time.Date(2026, 11, 24, 14, 37, 30, 0, time.UTC)

func testVerifier(now time.Time) *Verifier {
	return New(Options{
		Secret: func(id string) (string, bool) {
			if id == testKey {
				return testSecret, true
			}
			return "", false
		},
		Region:   func(r string) bool { return r == "us-east-1" || r == "us-west-2" },
		Services: []string{"elasticfilesystem", "monitoring", "sns", "ec2"},
		Clock:    func() time.Time { return now },
	})
}

// verifyServer answers 200 with the identity when the request verifies and
// 403 with the error otherwise.
func verifyServer(t *testing.T, v *Verifier) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		id, err := v.Verify(r, body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				http.Error(w, "not an *Error: "+err.Error(), 500)
				return
			}
			w.WriteHeader(403)
			io.WriteString(w, kindName(e.Kind)+": "+e.Message)
			return
		}
		io.WriteString(w, id.AccessKeyID+" "+id.Region+" "+id.Service)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func kindName(k error) string {
	for name, e := range map[string]error{
		"missing": ErrMissingAuthentication, "incomplete": ErrIncompleteSignature, "unknown": ErrUnknownAccessKey,
		"mismatch": ErrSignatureMismatch, "expired": ErrExpired, "region": ErrInvalidRegion, "service": ErrUnsupportedService,
	} {
		if errors.Is(k, e) {
			return name
		}
	}
	return "?"
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func payloadHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

type sigCase struct {
	name, method, path, query, body, contentType string
	service, region                              string
}

var sigCases = []sigCase{
	{name: "create", method: "POST", path: "/2015-02-01/file-systems", body: `{"CreationToken":"tok"}`, contentType: "application/json", service: "elasticfilesystem", region: "us-east-1"},
	{name: "get query", method: "GET", path: "/2015-02-01/file-systems", query: "CreationToken=a%20b%2Fc%2Bd%3D%C3%A9&MaxItems=5", service: "elasticfilesystem", region: "us-west-2"},
	{name: "arn label", method: "GET", path: "/2015-02-01/resource-tags/arn%3Aaws%3Aelasticfilesystem%3Aus-east-1%3A123456789012%3Afile-system%2Ffs-0123456789abcdef0", service: "elasticfilesystem", region: "us-east-1"},
	{name: "repeated keys", method: "DELETE", path: "/2015-02-01/resource-tags/fs-01", query: "tagKeys=k%201&tagKeys=a-b&tagKeys=a%2Fb", service: "elasticfilesystem", region: "us-east-1"},
	{name: "trailing slash", method: "GET", path: "/2015-02-01/tags/fs-0123456789abcdef0/", query: "MaxItems=1", service: "elasticfilesystem", region: "us-east-1"},
	{name: "ec2 form", method: "POST", path: "/", body: "Action=DescribeSubnets&Version=2016-11-15&Filter.1.Name=availability-zone&Filter.1.Value.1=us-east-1a", contentType: "application/x-www-form-urlencoded; charset=utf-8", service: "ec2", region: "us-east-1"},
	{name: "get with json body", method: "GET", path: "/2015-02-01/account-preferences", body: `{"MaxResults":5}`, contentType: "application/json", service: "elasticfilesystem", region: "us-east-1"},
	{name: "unicode path", method: "GET", path: "/2015-02-01/access-points/%E2%82%AC", service: "elasticfilesystem", region: "us-east-1"},
}

func newReq(t *testing.T, base string, c sigCase) *http.Request {
	t.Helper()
	u := base + c.path
	if c.query != "" {
		u += "?" + c.query
	}
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	req.Header.Set("Amz-Sdk-Invocation-Id", "0f7f1c8e-1b2b-4b7e-9c45-2f1d0c1f0a11")
	req.Header.Set("Amz-Sdk-Request", "attempt=1;  max=3")
	return req
}

func goSign(t *testing.T, req *http.Request, c sigCase, secret string, at time.Time) {
	t.Helper()
	s := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: secret}
	if err := s.SignHTTP(context.Background(), creds, req, payloadHash([]byte(c.body)), c.service, c.region, at); err != nil {
		t.Fatal(err)
	}
}

func TestGoSignerHeader(t *testing.T) {
	srv := verifyServer(t, testVerifier(signTime.Add(3*time.Minute)))
	for _, c := range sigCases {
		t.Run(c.name, func(t *testing.T) {
			req := newReq(t, srv.URL, c)
			goSign(t, req, c, testSecret, signTime)
			code, body := do(t, req)
			if code != 200 || body != testKey+" "+c.region+" "+c.service {
				t.Fatalf("got %d %q", code, body)
			}
		})
	}
}

func TestGoSignerPresigned(t *testing.T) {
	srv := verifyServer(t, testVerifier(signTime.Add(time.Minute)))
	for _, c := range sigCases {
		t.Run(c.name, func(t *testing.T) {
			req := newReq(t, srv.URL, c)
			s := v4.NewSigner()
			creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}
			u, hdr, err := s.PresignHTTP(context.Background(), creds, req, payloadHash([]byte(c.body)), c.service, c.region, signTime)
			if err != nil {
				t.Fatal(err)
			}
			pre, err := http.NewRequest(c.method, u, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range hdr {
				if strings.EqualFold(k, "host") {
					continue
				}
				pre.Header[k] = vs
			}
			code, body := do(t, pre)
			if code != 200 {
				t.Fatalf("got %d %q\nurl %s", code, body, u)
			}
		})
	}
}

func TestPresignedExpiry(t *testing.T) {
	c := sigCases[1]
	s := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}
	req := newReq(t, "http://x", c)
	q := req.URL.Query()
	q.Set("X-Amz-Expires", "60")
	req.URL.RawQuery = q.Encode()
	u, hdr, err := s.PresignHTTP(context.Background(), creds, req, payloadHash(nil), c.service, c.region, signTime)
	if err != nil {
		t.Fatal(err)
	}
	path := strings.TrimPrefix(u, "http://x")
	for _, tc := range []struct {
		now  time.Time
		want string
	}{
		{signTime.Add(59 * time.Second), "200"},
		{signTime.Add(61 * time.Second), "403 expired: Request has expired"},
	} {
		srv := verifyServer(t, testVerifier(tc.now))
		r, _ := http.NewRequest("GET", srv.URL+path, nil)
		r.Host = "x"
		for k, vs := range hdr {
			if !strings.EqualFold(k, "host") {
				r.Header[k] = vs
			}
		}
		code, body := do(t, r)
		got := "200"
		if code != 200 {
			got = "403 " + body
		}
		if got != tc.want {
			t.Errorf("at +%v: got %q, want %q", tc.now.Sub(signTime), got, tc.want)
		}
	}
}

func TestErrors(t *testing.T) {
	base := sigCases[0]
	tests := []struct {
		name   string
		now    time.Time
		mutate func(t *testing.T, r *http.Request) *http.Request // after signing
		secret string
		region string
		want   string // kind name, then a prefix of the message
	}{
		{name: "no auth", mutate: func(t *testing.T, r *http.Request) *http.Request { r.Header.Del("Authorization"); return r },
			want: "missing: Missing Authentication Token"},
		{name: "wrong secret", secret: "wrong", want: "mismatch: The request signature we calculated does not match"},
		{name: "unknown key", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), testKey, "AKIDUNKNOWN", 1))
			return r
		}, want: "unknown: The security token included in the request is invalid."},
		{name: "expired", now: signTime.Add(16 * time.Minute),
			want: "expired: Signature expired: 20261124T143730Z is now earlier than 20261124T143830Z (20261124T145330Z - 15 min.)"},
		{name: "not yet current", now: signTime.Add(-16 * time.Minute), want: "expired: Signature not yet current: 20261124T143730Z is still later than"},
		{name: "wrong region", region: "eu-nowhere-1", want: "region: Credential should be scoped to a valid region, not 'eu-nowhere-1'."},
		{name: "tampered body", mutate: func(t *testing.T, r *http.Request) *http.Request {
			return clone(t, r, `{"CreationToken":"tak"}`)
		}, want: "mismatch: The request signature we calculated"},
		{name: "tampered signed header", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, want: "mismatch: The request signature"},
		{name: "tampered query", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.URL.RawQuery = "MaxItems=1"
			return r
		}, want: "mismatch: The request signature"},
		{name: "content sha mismatch", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("X-Amz-Content-Sha256", payloadHash([]byte("other")))
			return r
		}, want: "mismatch: The provided 'x-amz-content-sha256' header does not match"},
		{name: "security token", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("X-Amz-Security-Token", "tok")
			return r
		}, want: "unknown: The security token included"},
		{name: "bad algorithm", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512", 1))
			return r
		}, want: "incomplete: Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'"},
		{name: "no signature", mutate: func(t *testing.T, r *http.Request) *http.Request {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:strings.Index(a, ", Signature=")])
			return r
		}, want: "incomplete: Authorization header requires 'Signature' parameter."},
		{name: "garbage", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("Authorization", "Bearer abc")
			return r
		}, want: "incomplete: Unsupported AWS 'algorithm': 'Bearer'"},
		{name: "short credential", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-east-1, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("0", 64))
			return r
		}, want: "incomplete: Credential must have exactly 5 slash-delimited elements"},
		{name: "no date", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Del("X-Amz-Date")
			return r
		}, want: "incomplete: Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."},
		{name: "scope date mismatch", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("X-Amz-Date", "20261125T000000Z")
			return r
		}, now: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), want: "mismatch: Date in Credential scope does not match"},
		{name: "host unsigned", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=", "SignedHeaders=x;", 1))
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", strings.Replace(a, ";host;", ";", 1))
			return r
		}, want: "mismatch: 'Host' or ':authority' must be a 'SignedHeader'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = signTime
			}
			srv := verifyServer(t, testVerifier(now))
			c := base
			if tc.region != "" {
				c.region = tc.region
			}
			secret := tc.secret
			if secret == "" {
				secret = testSecret
			}
			req := newReq(t, srv.URL, c)
			goSign(t, req, c, secret, signTime)
			if tc.mutate != nil {
				req = tc.mutate(t, req)
			}
			code, body := do(t, req)
			if code != 403 || !strings.HasPrefix(body, tc.want) {
				t.Fatalf("got %d %q\nwant 403 %q", code, body, tc.want)
			}
		})
	}
}

// clone returns a copy of r with another body (same headers).
func clone(t *testing.T, r *http.Request, body string) *http.Request {
	t.Helper()
	n, err := http.NewRequest(r.Method, r.URL.String(), bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	n.Header = r.Header.Clone()
	n.ContentLength = r.ContentLength
	if len(body) != int(r.ContentLength) {
		t.Fatalf("clone must keep the length")
	}
	return n
}

func TestDateHeaderFallback(t *testing.T) {
	// A request signed with the Date header instead of X-Amz-Date.
	srv := verifyServer(t, testVerifier(signTime))
	c := sigCases[1]
	req := newReq(t, srv.URL, c)
	goSign(t, req, c, testSecret, signTime)
	// Re-sign by hand: replace x-amz-date with date in the signed headers.
	req.Header.Del("X-Amz-Date")
	req.Header.Set("Date", signTime.Format(http.TimeFormat))
	a := &auth{accessKeyID: testKey, scopeDate: "20261124", region: c.region, service: c.service, terminator: terminator,
		signedHeaders: []string{"date", "host"}, when: signTime, whenRaw: signTime.Format(timeFormat)}
	server := httptest.NewRequest(req.Method, req.URL.String(), nil)
	server.Header = req.Header.Clone()
	server.Host = req.URL.Host
	sig := signature(testSecret, a, canonicalRequest(server, a, payloadHash(nil)))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testKey+"/20261124/"+c.region+"/"+c.service+"/aws4_request, SignedHeaders=date;host, Signature="+sig)
	if code, body := do(t, req); code != 200 {
		t.Fatalf("got %d %q", code, body)
	}
}

func TestCanonicalQuery(t *testing.T) {
	for raw, want := range map[string]string{
		"":                            "",
		"b=1&a=2&a=1":                 "a=1&a=2&b=1",
		"k=a%2Fb&k=a-b":               "k=a%2Fb&k=a-b",
		"k=a%20b":                     "k=a%20b",
		"k=a+b":                       "k=a%20b",
		"k=a%2Bb":                     "k=a%2Bb",
		"flag":                        "flag=",
		"%C3%A9=2&a=1":                "%C3%A9=2&a=1",
		"X-Amz-Signature=ab&x=1":      "X-Amz-Signature=ab&x=1",
		"k=%zz":                       "k=%25zz",
		"tagKeys=k%201&tagKeys=k%2F2": "tagKeys=k%201&tagKeys=k%2F2",
	} {
		if got := CanonicalQuery(raw, false); got != want {
			t.Errorf("CanonicalQuery(%q) = %q, want %q", raw, got, want)
		}
	}
	if got := CanonicalQuery("X-Amz-Signature=ab&x=1", true); got != "x=1" {
		t.Errorf("presigned: %q", got)
	}
}

func TestContext(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Fatal("identity in an empty context")
	}
	id := Identity{AccessKeyID: "a", Region: "r", Service: "s"}
	got, ok := FromContext(NewContext(context.Background(), id))
	if !ok || got != id {
		t.Fatalf("got %+v %v", got, ok)
	}
}

// TestUnsupportedService: a correctly signed request for a service the
// server does not implement is told so by name; a badly signed one learns
// nothing beyond the signature failure.
func TestUnsupportedService(t *testing.T) {
	srv := verifyServer(t, testVerifier(signTime.Add(time.Minute)))
	c := sigCase{name: "s3", method: "GET", path: "/bucket/key", service: "s3", region: "us-east-1"}
	req := newReq(t, srv.URL, c)
	goSign(t, req, c, testSecret, signTime)
	if code, body := do(t, req); code != 403 || body != "service: regionfs does not implement the 's3' API." {
		t.Fatalf("signed s3 request: %d %q", code, body)
	}
	req = newReq(t, srv.URL, c)
	goSign(t, req, c, "wrong-secret", signTime)
	if code, body := do(t, req); code != 403 || !strings.HasPrefix(body, "mismatch: ") {
		t.Fatalf("badly signed s3 request: %d %q", code, body)
	}
}
