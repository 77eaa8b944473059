package awserr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/api/sigv4"
	"github.com/regionfs/regionfs/internal/cfn"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/keys"
	"github.com/regionfs/regionfs/internal/control/network"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication"
)

// TestTableComplete: every row has a code and an error status in every
// column, and no sentinel appears twice (a second row could never match).
func TestTableComplete(t *testing.T) {
	seen := map[error]bool{}
	for _, rows := range [][]row{table, ec2Rows} {
		for _, r := range rows {
			if seen[r.err] {
				t.Errorf("%v: two rows", r.err)
			}
			seen[r.err] = true
			for i, w := range []Wire{r.code.REST, r.code.JSON, r.code.Query, r.code.EC2} {
				if w.Code == "" || w.Status < 400 || w.Status > 599 || strings.ContainsAny(w.Code, " ;:#") {
					t.Errorf("%v: column %d is %+v", r.err, i, w)
				}
			}
		}
	}
	// The resource handler codes of CloudFormation's resource-provider
	// contract.
	handlerCodes := map[string]bool{"": true, "NotFound": true, "AlreadyExists": true, "InvalidRequest": true, "ResourceConflict": true,
		"ServiceLimitExceeded": true, "Throttling": true, "NetworkFailure": true, "AccessDenied": true, "GeneralServiceException": true}
	for _, rows := range [][]row{table, ec2Rows} {
		for _, r := range rows {
			if !handlerCodes[r.code.Handler] {
				t.Errorf("%v: handler code %q", r.err, r.code.Handler)
			}
		}
	}
	if table[0].err != context.Canceled || table[1].err != context.DeadlineExceeded {
		t.Error("the context errors must come first")
	}
}

func TestLookupAndMessage(t *testing.T) {
	secret := errors.New("dial tcp 10.1.2.3:7443: connection refused")
	for _, tc := range []struct {
		name  string
		err   error
		rest  Wire
		query Wire
		msg   string
	}{
		{"canceled wins", fmt.Errorf("%w: %w", context.Canceled, &control.Error{Kind: control.ErrFileSystemNotFound, Message: "x"}),
			Wire{499, "RequestCanceled"}, Wire{499, "RequestCanceled"}, "The request was canceled."},
		{"public message", fmt.Errorf("control: %w", &control.Error{Kind: control.ErrFileSystemNotFound, Message: "File system 'fs-1' does not exist."}),
			Wire{404, "FileSystemNotFound"}, Wire{404, "FileSystemNotFound"}, "File system 'fs-1' does not exist."},
		{"sentinel without message", fmt.Errorf("%w: details", control.ErrConflict),
			Wire{409, "ConflictException"}, Wire{409, "ConflictException"}, "The request conflicts with the replication's state."},
		{"internal", fmt.Errorf("engine: %w", secret), Wire{500, "InternalServerError"}, Wire{500, "InternalFailure"},
			"An internal error occurred (request r-1)."},
		{"public text of an internal error stays hidden", &Error{Err: secret, Message: "do not show"},
			Wire{500, "InternalServerError"}, Wire{500, "InternalFailure"}, "An internal error occurred (request r-1)."},
		{"signature", &sigv4.Error{Kind: sigv4.ErrSignatureMismatch, Message: "The request signature we calculated does not match"},
			Wire{403, "InvalidSignatureException"}, Wire{403, "SignatureDoesNotMatch"}, "The request signature we calculated does not match"},
		{"unsupported service", &sigv4.Error{Kind: sigv4.ErrUnsupportedService, Message: "regionfs does not implement the 's3' API."},
			Wire{501, "NotImplemented"}, Wire{501, "NotImplemented"}, "regionfs does not implement the 's3' API."},
		{"replication unreachable", fmt.Errorf("create: %w", replication.ErrUnreachable),
			Wire{409, "ConflictException"}, Wire{409, "ConflictException"}, "The other region of the replication does not answer."},
		{"locked file system", fmt.Errorf("kv: sealing key unavailable: %w", fmt.Errorf("%w: KMS key k-1: %w", engine.ErrKeyUnavailable, secret)),
			Wire{400, "BadRequest"}, Wire{400, "ValidationError"},
			"The file system's KMS key is disabled, pending deletion or deleted; enable the key (or cancel its deletion) to use the file system."},
		{"ec2 column", Errorf(ErrEC2SubnetNotFound, "The subnet ID 'subnet-1' does not exist"),
			Wire{404, "NotFound"}, Wire{404, "ResourceNotFound"}, "The subnet ID 'subnet-1' does not exist"},
	} {
		c, _ := Lookup(tc.err)
		if c.REST != tc.rest || c.Query != tc.query {
			t.Errorf("%s: %+v %+v, want %+v %+v", tc.name, c.REST, c.Query, tc.rest, tc.query)
		}
		if m := Message(tc.err, "r-1"); m != tc.msg {
			t.Errorf("%s: message %q, want %q", tc.name, m, tc.msg)
		}
	}
}

// TestWireShapes writes one error in every protocol and reads it back as
// the clients do.
func TestWireShapes(t *testing.T) {
	err := Errorf(ErrThrottled, "Slow down <now> & \"then\".")
	write := func(p awsproto.Protocol, svc awsproto.Service) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		Responder{Protocol: p, Service: svc, RequestID: "req-9"}.Fail(rec, err)
		if rec.Header().Get("X-Amzn-Requestid") != "req-9" {
			t.Errorf("%v: no request id header", p)
		}
		return rec
	}
	rec := write(awsproto.RESTJSON, awsproto.EFS)
	var rj map[string]string
	json.Unmarshal(rec.Body.Bytes(), &rj)
	if rec.Code != 429 || rec.Header().Get("X-Amzn-Errortype") != "ThrottlingException" || rj["ErrorCode"] != "ThrottlingException" || rj["Message"] != err.Message {
		t.Errorf("rest-json: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	rec = write(awsproto.JSON10, awsproto.Monitoring)
	json.Unmarshal(rec.Body.Bytes(), &rj)
	if rec.Code != 400 || rec.Header().Get("X-Amzn-Query-Error") != "Throttling;Sender" || rj["__type"] != "ThrottlingException" ||
		rj["message"] != err.Message || rec.Header().Get("Content-Type") != "application/x-amz-json-1.0" {
		t.Errorf("json 1.0: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	rec = write(awsproto.JSON11, awsproto.Service{Name: "kms"})
	if rec.Header().Get("X-Amzn-Query-Error") != "" || rec.Header().Get("Content-Type") != "application/x-amz-json-1.1" {
		t.Errorf("json 1.1 of a service that is not query-compatible: %v", rec.Header())
	}
	rec = write(awsproto.CBOR, awsproto.Monitoring)
	v, derr := awsproto.DecodeCBOR(rec.Body.Bytes())
	if derr != nil || v["__type"] != "ThrottlingException" || v["message"] != err.Message || rec.Header().Get("Smithy-Protocol") != "rpc-v2-cbor" {
		t.Errorf("cbor: %v %v %v", v, derr, rec.Header())
	}
	rec = write(awsproto.Query, awsproto.SNS)
	want := `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>Throttling</Code>` +
		`<Message>Slow down &lt;now&gt; &amp; &#34;then&#34;.</Message></Error><RequestId>req-9</RequestId></ErrorResponse>`
	if rec.Code != 400 || rec.Body.String() != want {
		t.Errorf("query: %d %s", rec.Code, rec.Body)
	}
	rec = write(awsproto.EC2, awsproto.EC2Service)
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "<Response><Errors><Error><Code>RequestLimitExceeded</Code>") {
		t.Errorf("ec2: %d %s", rec.Code, rec.Body)
	}
	rec = write(awsproto.RESTXML, awsproto.Service{Name: "s3"})
	if !strings.Contains(rec.Body.String(), "<Error><Code>Throttling</Code>") {
		t.Errorf("rest-xml: %s", rec.Body)
	}
	// A server error is a Receiver fault.
	rec = httptest.NewRecorder()
	Responder{Protocol: awsproto.JSON10, Service: awsproto.Monitoring}.Fail(rec, errors.New("boom"))
	if rec.Header().Get("X-Amzn-Query-Error") != "InternalFailure;Receiver" || strings.Contains(rec.Body.String(), "boom") {
		t.Errorf("internal: %v %s", rec.Header(), rec.Body)
	}
}

func TestFields(t *testing.T) {
	rec := httptest.NewRecorder()
	err := &Error{Err: control.ErrFileSystemAlreadyExists, Message: "exists", Fields: map[string]string{"FileSystemId": "fs-1"}}
	Responder{Protocol: awsproto.RESTJSON, Service: awsproto.EFS}.Fail(rec, err)
	if rec.Body.String() != `{"ErrorCode":"FileSystemAlreadyExists","FileSystemId":"fs-1","Message":"exists"}` {
		t.Errorf("%s", rec.Body)
	}
}

func TestFromREST(t *testing.T) {
	err := FromREST(409, "ConflictException", "peer says no")
	if !errors.Is(err, control.ErrConflict) || Message(err, "") != "peer says no" {
		t.Errorf("%v", err)
	}
	if err := FromREST(404, "FileSystemNotFound", "m"); !errors.Is(err, control.ErrFileSystemNotFound) {
		t.Errorf("%v", err)
	}
	if err := FromREST(418, "Teapot", "m"); !errors.Is(err, ErrInternal) {
		t.Errorf("unknown code: %v", err)
	}
}

func TestNewRequestID(t *testing.T) {
	a, b := NewRequestID(), NewRequestID()
	if a == b || len(a) != 36 || a[14] != '4' || strings.Count(a, "-") != 4 {
		t.Errorf("%s %s", a, b)
	}
}

// failing answers every request with err in the protocol it speaks.
func failing(err error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := make([]byte, 0)
		p := awsproto.Detect(serviceOf(r), r, body)
		svc := awsproto.Service{Name: serviceOf(r)}
		for _, s := range []awsproto.Service{awsproto.Monitoring, awsproto.SNS, awsproto.EC2Service, awsproto.EFS} {
			if s.Name == svc.Name {
				svc = s
			}
		}
		Responder{Protocol: p, Service: svc, RequestID: "req-1"}.Fail(w, err)
	})
}

// serviceOf reads the credential-scope service of a signed request.
func serviceOf(r *http.Request) string {
	a := r.Header.Get("Authorization")
	i := strings.Index(a, "Credential=")
	if i < 0 {
		return ""
	}
	parts := strings.Split(a[i:], "/")
	if len(parts) < 4 {
		return ""
	}
	return parts[3]
}

// TestHandlerError: a resource type reports the domain's refusals with
// their handler code and public message, and nothing else.
func TestHandlerError(t *testing.T) {
	for _, tc := range []struct {
		err       error
		code, msg string
		ok        bool
	}{
		{fmt.Errorf("create: %w", &control.Error{Kind: control.ErrSubnetNotFound, Message: "The subnet 'subnet-1' does not exist."}),
			"InvalidRequest", "The subnet 'subnet-1' does not exist.", true},
		{&network.Error{Kind: network.ErrDependency, Message: "resource sg-1 has a dependent object"}, "ResourceConflict", "resource sg-1 has a dependent object", true},
		{&keys.Error{Kind: keys.ErrAccessDenied, Message: "no"}, "AccessDenied", "no", true},
		{fmt.Errorf("peer: %w", replication.ErrUnreachable), "NetworkFailure", "The other region of the replication does not answer.", true},
		{fmt.Errorf("kv: %w", errors.New("disk on fire")), "", "", false},
		{context.DeadlineExceeded, "", "", false},
	} {
		code, msg, ok := HandlerError(tc.err)
		if code != tc.code || msg != tc.msg || ok != tc.ok {
			t.Errorf("%v: %q %q %v, want %q %q %v", tc.err, code, msg, ok, tc.code, tc.msg, tc.ok)
		}
	}
}

// TestServiceInternalError: a service with its own internal error shape
// (KMS) gets it in JSON; its refusals keep their codes.
func TestServiceInternalError(t *testing.T) {
	rec := httptest.NewRecorder()
	Responder{Protocol: awsproto.JSON11, Service: awsproto.KMS, RequestID: "r-2"}.Fail(rec, errors.New("dial tcp 10.0.0.1:1: refused"))
	var body map[string]string
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 500 || body["__type"] != "KMSInternalException" || strings.Contains(rec.Body.String(), "dial") {
		t.Errorf("internal: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	Responder{Protocol: awsproto.JSON11, Service: awsproto.KMS}.Fail(rec, fmt.Errorf("keys: %w", &keys.Error{Kind: keys.ErrDisabled, Message: "key k is disabled."}))
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 400 || body["__type"] != "DisabledException" || body["message"] != "key k is disabled." {
		t.Errorf("refusal: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	Responder{Protocol: awsproto.Query, Service: awsproto.CloudFormation}.Fail(rec, &cfn.Error{Kind: cfn.ErrValidation, Message: "Stack with id x does not exist"})
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "<Code>ValidationError</Code><Message>Stack with id x does not exist</Message>") ||
		!strings.Contains(rec.Body.String(), `xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"`) {
		t.Errorf("cloudformation: %d %s", rec.Code, rec.Body)
	}
}
