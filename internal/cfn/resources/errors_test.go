package resources

import (
	"errors"
	"fmt"
	"testing"

	"github.com/regionfs/regionfs/internal/cfn"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/network"
	"github.com/regionfs/regionfs/internal/control/replconf"
)

// TestHandlerError: domain refusals become handler errors with their code
// and public message (awserr's table); a peer region's answer is read
// back; anything else passes through for the engine to log.
func TestHandlerError(t *testing.T) {
	internal := errors.New("kv: pebble: disk on fire")
	for _, tc := range []struct {
		err       error
		code, msg string
	}{
		{fmt.Errorf("control: %w", &control.Error{Kind: control.ErrFileSystemNotFound, Message: "File system 'fs-1' does not exist."}),
			"NotFound", "File system 'fs-1' does not exist."},
		{&network.Error{Kind: network.ErrPermissionDup, Message: "the rule already exists"}, "AlreadyExists", "the rule already exists"},
		{&replconf.PeerError{Status: 409, Code: "ReplicationAlreadyExists", Message: "fs-2 replicates already", Err: errors.New("ReplicationAlreadyExists: fs-2 replicates already")},
			"ResourceConflict", "fs-2 replicates already"},
	} {
		var he *cfn.HandlerError
		if err := handlerError(tc.err); !errors.As(err, &he) || he.Code != tc.code || he.Message != tc.msg {
			t.Errorf("%v: %v", tc.err, err)
		}
	}
	if err := handlerError(internal); err != internal {
		t.Errorf("an internal failure became %v", err)
	}
	if handlerError(nil) != nil {
		t.Error("nil is not an error")
	}
}
