package awserr

import (
	"errors"
	"strings"
	"testing"
)

func TestQueryAction(t *testing.T) {
	known := func(op string) bool { return op == "Publish" }
	long := strings.Repeat("x", 200)
	for _, tc := range []struct {
		name, method, action, version string
		kind                          error
		msg                           string
	}{
		{"post", "POST", "Publish", "2010-03-31", nil, ""},
		{"get without version", "GET", "Publish", "", nil, ""},
		{"put", "PUT", "Publish", "", ErrMethodNotAllowed, "The HTTP method PUT is not supported; use POST."},
		{"no action", "POST", "", "2010-03-31", ErrMissingAction, "The request must contain the parameter Action."},
		{"other version", "POST", "Publish", "2009-01-01", ErrUnknownOperation, "Could not find operation Publish for version 2009-01-01."},
		{"unknown", "GET", "Nope", "", ErrUnknownOperation, "The action Nope is not valid for this web service."},
		{"long action clipped", "POST", long, "", ErrUnknownOperation, "The action " + long[:128] + "… is not valid for this web service."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := QueryAction(tc.method, tc.action, tc.version, "2010-03-31", known)
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("QueryAction: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.kind) || err.Error() != tc.msg {
				t.Fatalf("QueryAction: %v (%#v), want %v %q", err, err, tc.kind, tc.msg)
			}
		})
	}
}
