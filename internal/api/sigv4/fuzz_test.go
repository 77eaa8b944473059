package sigv4

import (
	"errors"
	"net/http/httptest"
	"testing"
)

// FuzzVerify feeds arbitrary Authorization headers, dates and query strings
// to the verifier: it must never panic and must fail with an *Error wrapping
// one of the sentinels.
func FuzzVerify(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-east-1/elasticfilesystem/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "20261124T143730Z", "a=b&c=d", "")
	f.Add("AWS4-HMAC-SHA256 Credential=/, SignedHeaders=, Signature=", "", "", "")
	f.Add("", "20261124T143730Z", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261124%2Fus-east-1%2Fec2%2Faws4_request&X-Amz-Date=20261124T143730Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00&X-Amz-Expires=99999999", "")
	f.Add("AWS4-HMAC-SHA256 ,,,=,=", "x", "%zz&&==", "body")
	f.Add("Bearer", "", "X-Amz-Signature=", "")
	v := testVerifier(signTime)
	f.Fuzz(func(t *testing.T, authz, date, query, body string) {
		r := httptest.NewRequest("POST", "http://127.0.0.1/p", nil)
		r.URL.RawQuery = query
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		if date != "" {
			r.Header.Set("X-Amz-Date", date)
		}
		_, err := v.Verify(r, []byte(body))
		if err == nil {
			t.Fatalf("random input verified: %q %q %q", authz, date, query)
		}
		var e *Error
		if !errors.As(err, &e) || e.Kind == nil || e.Message == "" {
			t.Fatalf("error %v is not a classified *Error", err)
		}
	})
}
