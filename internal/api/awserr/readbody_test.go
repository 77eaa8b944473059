package awserr

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// failingReader fails every read, as a client gone mid-body.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// TestReadBody: a body up to the limit is read whole, one byte more is
// ErrBodyTooLarge, an unreadable one ErrMalformedRequest (CloudWatch and
// SNS answer with these).
func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    io.Reader
		kind    error
		message string
	}{
		{"at the limit", strings.NewReader(strings.Repeat("a", 8)), nil, ""},
		{"empty", strings.NewReader(""), nil, ""},
		{"past the limit", strings.NewReader(strings.Repeat("a", 9)), ErrBodyTooLarge, "The request body is larger than 8 bytes."},
		{"unreadable", failingReader{}, ErrMalformedRequest, "The request body could not be read."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", tc.body)
			b, err := ReadBody(r, 8)
			if tc.kind == nil {
				if err != nil || len(b) > 8 {
					t.Fatalf("%d bytes, %v", len(b), err)
				}
				return
			}
			var e *Error
			if !errors.Is(err, tc.kind) || !errors.As(err, &e) || e.PublicMessage() != tc.message {
				t.Fatalf("got %v, want %v: %q", err, tc.kind, tc.message)
			}
		})
	}
}
