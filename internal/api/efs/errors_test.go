package efs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/sigv4"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine"
)

// TestErrors: EFS errors come out as EFS sends them (x-amzn-ErrorType,
// {"ErrorCode","Message"}, the extra members of the AlreadyExists errors),
// and internal failures show only the request id.
func TestErrors(t *testing.T) {
	wrap := func(kind error) error {
		return fmt.Errorf("layer: %w", &control.Error{Kind: kind, Message: "public message", ResourceID: "fs-0123456789abcdef0"})
	}
	h := &Handler{log: slog.New(slog.DiscardHandler)}
	for _, tc := range []struct {
		err    error
		status int
		code   string
		want   map[string]string
	}{
		{context.Canceled, 499, "RequestCanceled", map[string]string{"Message": "The request was canceled."}},
		{fmt.Errorf("op: %w", context.DeadlineExceeded), 504, "DependencyTimeout", nil},
		{errorf(ErrBadRequest, "x"), 400, "BadRequest", map[string]string{"Message": "x"}},
		{errorf(awserr.ErrBodyTooLarge, "x"), 413, "RequestEntityTooLargeException", nil},
		{errorf(awserr.ErrUnknownOperation, "x"), 404, "UnknownOperationException", nil},
		{errorf(awserr.ErrMethodNotAllowed, "x"), 405, "UnknownOperationException", nil},
		{errorf(sigv4.ErrMissingAuthentication, "x"), 403, "MissingAuthenticationTokenException", nil},
		{errorf(sigv4.ErrInvalidRegion, "x"), 403, "InvalidSignatureException", nil},
		{wrap(control.ErrFileSystemNotFound), 404, "FileSystemNotFound", map[string]string{"Message": "public message"}},
		{wrap(control.ErrFileSystemAlreadyExists), 409, "FileSystemAlreadyExists",
			map[string]string{"Message": "public message", "FileSystemId": "fs-0123456789abcdef0"}},
		{wrap(control.ErrAccessPointAlreadyExists), 409, "AccessPointAlreadyExists",
			map[string]string{"Message": "public message", "AccessPointId": "fs-0123456789abcdef0"}},
		{wrap(control.ErrIncorrectLifeCycleState), 409, "IncorrectFileSystemLifeCycleState", nil},
		{control.ErrClosed, 503, "ServiceUnavailableException", nil},
		{fmt.Errorf("control: commit: %w", engine.ErrNoSpace), 500, "InternalServerError",
			map[string]string{"Message": "An internal error occurred (request req-1)."}},
		{errors.New("dial tcp 10.0.0.1:7443: connection refused"), 500, "InternalServerError",
			map[string]string{"Message": "An internal error occurred (request req-1)."}},
		// Context errors win over what they wrap.
		{fmt.Errorf("%w: %w", context.Canceled, wrap(control.ErrFileSystemNotFound)), 499, "RequestCanceled", nil},
	} {
		rec := httptest.NewRecorder()
		c := &call{h: h, w: rec, req: httptest.NewRequest("GET", "/", nil), reqID: "req-1"}
		c.fail("Op", tc.err)
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%v: body %q: %v", tc.err, rec.Body, err)
		}
		if rec.Code != tc.status || rec.Header().Get("X-Amzn-Errortype") != tc.code || body["ErrorCode"] != tc.code || body["Message"] == "" {
			t.Errorf("%v: %d %v %s; want %d %s", tc.err, rec.Code, rec.Header(), rec.Body, tc.status, tc.code)
		}
		for k, v := range tc.want {
			if body[k] != v {
				t.Errorf("%v: %s = %q, want %q", tc.err, k, body[k], v)
			}
		}
		members := 2
		for k := range tc.want {
			if k != "Message" {
				members++
			}
		}
		if len(body) != members {
			t.Errorf("%v: members %v", tc.err, body)
		}
	}
}

// FuzzDecode feeds arbitrary bodies to the decoder and reads every kind of
// member from them: it never panics, and a failure is always a BadRequest.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"a":1}`, `{"S":"x","B":true,"N":1.5,"I":7,"L":["a",1],"O":{"S":"y"},"T":[{"Key":"k","Value":"v"}]}`,
		`{"S":null,"T":[null]}`, `{"N":1e309}`, `{"I":-1}`, `{"O":[]}`, "{\"S\":\"\xff\"}", `{"S":"a"} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := parseObject(body)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("parse error %v is not a BadRequest", err)
			}
			return
		}
		r := newReader(o)
		r.str("S")
		r.boolean("B")
		r.number("N")
		r.integer("I", 0, maxID)
		r.strings("L")
		if sub, ok := r.objectAt("O"); ok {
			sub.str("S")
			sub.check("S", "v", tokenRule)
		}
		r.tags("T")
		r.list("L")
		r.required("Z", false)
		if err := *r.err; err == nil || !errors.Is(err, ErrBadRequest) {
			t.Fatalf("reader error %v", err)
		}
	})
}
