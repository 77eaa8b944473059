package efs

import (
	"errors"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/control"
)

// Errors are answered through package awserr's table. The API layer's own
// refusals use awserr's and sigv4's sentinels; a malformed request is
// control.ErrBadRequest (EFS's BadRequest), like the rules control
// enforces.

// ErrBadRequest: the request is malformed (JSON, types, lengths, patterns,
// required members).
var ErrBadRequest = control.ErrBadRequest

func errorf(kind error, format string, args ...any) *awserr.Error {
	return awserr.Errorf(kind, format, args...)
}

// publicError adds the extra members EFS's AlreadyExists errors carry
// (FileSystemId, AccessPointId) to a control error.
func publicError(err error) error {
	var ce *control.Error
	if !errors.As(err, &ce) || ce.ResourceID == "" {
		return err
	}
	var field string
	switch {
	case errors.Is(err, control.ErrFileSystemAlreadyExists):
		field = "FileSystemId"
	case errors.Is(err, control.ErrAccessPointAlreadyExists):
		field = "AccessPointId"
	default:
		return err
	}
	return &awserr.Error{Err: err, Message: ce.Message, Fields: map[string]string{field: ce.ResourceID}}
}

// fail writes err as an EFS error; internal failures are logged with
// their cause and the request id.
func (c *call) fail(op string, err error) {
	awserr.Responder{Protocol: awsproto.RESTJSON, Service: awsproto.EFS, RequestID: c.reqID, Op: op, Log: c.h.log}.
		Fail(c.w, publicError(err))
}
