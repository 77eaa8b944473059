package efs

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine"
)

func TestErrorTable(t *testing.T) {
	wrap := func(kind error) error {
		return fmt.Errorf("layer: %w", &control.Error{Kind: kind, Message: "public message", ResourceID: "fs-0123456789abcdef0"})
	}
	for _, tc := range []struct {
		err    error
		status int
		code   string
		known  bool
	}{
		{context.Canceled, 499, "RequestCanceled", true},
		{fmt.Errorf("op: %w", context.DeadlineExceeded), 504, "DependencyTimeout", true},
		{errorf(ErrBadRequest, "x"), 400, "BadRequest", true},
		{errorf(ErrBodyTooLarge, "x"), 413, "RequestEntityTooLargeException", true},
		{errorf(ErrUnknownOperation, "x"), 404, "UnknownOperationException", true},
		{errorf(ErrMethodNotAllowed, "x"), 405, "UnknownOperationException", true},
		{errorf(ErrUnauthenticated, "x"), 403, "MissingAuthenticationTokenException", true},
		{errorf(ErrWrongRegion, "x"), 403, "InvalidSignatureException", true},
		{wrap(control.ErrBadRequest), 400, "BadRequest", true},
		{wrap(control.ErrFileSystemNotFound), 404, "FileSystemNotFound", true},
		{wrap(control.ErrFileSystemAlreadyExists), 409, "FileSystemAlreadyExists", true},
		{wrap(control.ErrFileSystemInUse), 409, "FileSystemInUse", true},
		{wrap(control.ErrFileSystemLimitExceeded), 403, "FileSystemLimitExceeded", true},
		{wrap(control.ErrIncorrectLifeCycleState), 409, "IncorrectFileSystemLifeCycleState", true},
		{wrap(control.ErrThroughputLimitExceeded), 400, "ThroughputLimitExceeded", true},
		{wrap(control.ErrTooManyRequests), 429, "TooManyRequests", true},
		{wrap(control.ErrReplicationAlreadyExists), 409, "ReplicationAlreadyExists", true},
		{wrap(control.ErrUnsupportedAvailabilityZone), 400, "UnsupportedAvailabilityZone", true},
		{wrap(control.ErrMountTargetNotFound), 404, "MountTargetNotFound", true},
		{wrap(control.ErrIncorrectMountTargetState), 409, "IncorrectMountTargetState", true},
		{wrap(control.ErrMountTargetConflict), 409, "MountTargetConflict", true},
		{wrap(control.ErrAvailabilityZonesMismatch), 400, "AvailabilityZonesMismatch", true},
		{wrap(control.ErrSubnetNotFound), 400, "SubnetNotFound", true},
		{wrap(control.ErrSecurityGroupNotFound), 400, "SecurityGroupNotFound", true},
		{wrap(control.ErrSecurityGroupLimitExceeded), 400, "SecurityGroupLimitExceeded", true},
		{wrap(control.ErrNoFreeAddresses), 409, "NoFreeAddressesInSubnet", true},
		{wrap(control.ErrIPAddressInUse), 409, "IpAddressInUse", true},
		{wrap(control.ErrNetworkInterfaceLimitExceeded), 409, "NetworkInterfaceLimitExceeded", true},
		{wrap(control.ErrAccessPointNotFound), 404, "AccessPointNotFound", true},
		{wrap(control.ErrAccessPointAlreadyExists), 409, "AccessPointAlreadyExists", true},
		{wrap(control.ErrAccessPointLimitExceeded), 403, "AccessPointLimitExceeded", true},
		{wrap(control.ErrPolicyNotFound), 404, "PolicyNotFound", true},
		{wrap(control.ErrInvalidPolicy), 400, "InvalidPolicyException", true},
		{control.ErrClosed, 503, "ServiceUnavailableException", true},
		{fmt.Errorf("control: commit: %w", engine.ErrNoSpace), 500, "InternalServerError", false},
		{errors.New("anything else"), 500, "InternalServerError", false},
		// Context errors win over what they wrap.
		{fmt.Errorf("%w: %w", context.Canceled, wrap(control.ErrFileSystemNotFound)), 499, "RequestCanceled", true},
	} {
		w, body, known := publicError(tc.err, "req-1")
		if w.status != tc.status || w.code != tc.code || known != tc.known || body.ErrorCode != tc.code || body.Message == "" {
			t.Errorf("%v: %d %s known=%v %+v; want %d %s known=%v", tc.err, w.status, w.code, known, body, tc.status, tc.code, tc.known)
		}
		if !known && body.Message != "An internal error occurred (request req-1)." {
			t.Errorf("%v: internal message %q", tc.err, body.Message)
		}
	}
	_, body, _ := publicError(wrap(control.ErrFileSystemAlreadyExists), "r")
	if body.FileSystemID != "fs-0123456789abcdef0" || body.AccessPointID != "" || body.Message != "public message" {
		t.Errorf("FileSystemAlreadyExists body %+v", body)
	}
	_, body, _ = publicError(wrap(control.ErrAccessPointAlreadyExists), "r")
	if body.AccessPointID != "fs-0123456789abcdef0" || body.FileSystemID != "" {
		t.Errorf("AccessPointAlreadyExists body %+v", body)
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
