package efs

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/regionfs/regionfs/internal/control"
)

// Errors of the EFS API layer itself (the domain's are package control's).
var (
	// ErrBadRequest: the request is malformed (JSON, types, lengths,
	// patterns, required members).
	ErrBadRequest = errors.New("bad request")
	// ErrUnknownOperation: no EFS operation has this path.
	ErrUnknownOperation = errors.New("unknown operation")
	// ErrMethodNotAllowed: the path exists for other methods.
	ErrMethodNotAllowed = errors.New("method not allowed")
	// ErrBodyTooLarge: the body exceeds MaxBodyBytes.
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrUnauthenticated: the request carries no verified identity (the
	// handler is served without SigV4 verification in front of it).
	ErrUnauthenticated = errors.New("request not authenticated")
	// ErrWrongRegion: the request was signed for another region.
	ErrWrongRegion = errors.New("request signed for another region")
)

// Error is an API-layer failure with its public message.
type Error struct {
	Kind    error
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// wireError is how an error goes on the wire: HTTP status and the code
// sent in x-amzn-ErrorType and the body's ErrorCode.
type wireError struct {
	status int
	code   string
}

// table maps errors to EFS errors, in order: context errors first, the
// safe default (InternalServerError) last.
var table = []struct {
	err  error
	wire wireError
}{
	{context.Canceled, wireError{499, "RequestCanceled"}},
	{context.DeadlineExceeded, wireError{http.StatusGatewayTimeout, "DependencyTimeout"}},
	{ErrUnauthenticated, wireError{http.StatusForbidden, "MissingAuthenticationTokenException"}},
	{ErrWrongRegion, wireError{http.StatusForbidden, "InvalidSignatureException"}},
	{ErrBodyTooLarge, wireError{http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException"}},
	{ErrUnknownOperation, wireError{http.StatusNotFound, "UnknownOperationException"}},
	{ErrMethodNotAllowed, wireError{http.StatusMethodNotAllowed, "UnknownOperationException"}},
	{ErrBadRequest, wireError{http.StatusBadRequest, "BadRequest"}},
	{control.ErrBadRequest, wireError{http.StatusBadRequest, "BadRequest"}},
	{control.ErrFileSystemNotFound, wireError{http.StatusNotFound, "FileSystemNotFound"}},
	{control.ErrFileSystemAlreadyExists, wireError{http.StatusConflict, "FileSystemAlreadyExists"}},
	{control.ErrFileSystemInUse, wireError{http.StatusConflict, "FileSystemInUse"}},
	{control.ErrFileSystemLimitExceeded, wireError{http.StatusForbidden, "FileSystemLimitExceeded"}},
	{control.ErrIncorrectLifeCycleState, wireError{http.StatusConflict, "IncorrectFileSystemLifeCycleState"}},
	{control.ErrThroughputLimitExceeded, wireError{http.StatusBadRequest, "ThroughputLimitExceeded"}},
	{control.ErrTooManyRequests, wireError{http.StatusTooManyRequests, "TooManyRequests"}},
	{control.ErrReplicationAlreadyExists, wireError{http.StatusConflict, "ReplicationAlreadyExists"}},
	{control.ErrUnsupportedAvailabilityZone, wireError{http.StatusBadRequest, "UnsupportedAvailabilityZone"}},
	{control.ErrMountTargetNotFound, wireError{http.StatusNotFound, "MountTargetNotFound"}},
	{control.ErrIncorrectMountTargetState, wireError{http.StatusConflict, "IncorrectMountTargetState"}},
	{control.ErrMountTargetConflict, wireError{http.StatusConflict, "MountTargetConflict"}},
	{control.ErrAvailabilityZonesMismatch, wireError{http.StatusBadRequest, "AvailabilityZonesMismatch"}},
	{control.ErrSubnetNotFound, wireError{http.StatusBadRequest, "SubnetNotFound"}},
	{control.ErrSecurityGroupNotFound, wireError{http.StatusBadRequest, "SecurityGroupNotFound"}},
	{control.ErrSecurityGroupLimitExceeded, wireError{http.StatusBadRequest, "SecurityGroupLimitExceeded"}},
	{control.ErrNoFreeAddresses, wireError{http.StatusConflict, "NoFreeAddressesInSubnet"}},
	{control.ErrIPAddressInUse, wireError{http.StatusConflict, "IpAddressInUse"}},
	{control.ErrNetworkInterfaceLimitExceeded, wireError{http.StatusConflict, "NetworkInterfaceLimitExceeded"}},
	{control.ErrAccessPointNotFound, wireError{http.StatusNotFound, "AccessPointNotFound"}},
	{control.ErrAccessPointAlreadyExists, wireError{http.StatusConflict, "AccessPointAlreadyExists"}},
	{control.ErrAccessPointLimitExceeded, wireError{http.StatusForbidden, "AccessPointLimitExceeded"}},
	{control.ErrPolicyNotFound, wireError{http.StatusNotFound, "PolicyNotFound"}},
	{control.ErrInvalidPolicy, wireError{http.StatusBadRequest, "InvalidPolicyException"}},
	{control.ErrClosed, wireError{http.StatusServiceUnavailable, "ServiceUnavailableException"}},
	// A full data disk: retryable (space may come back), the message says
	// what is wrong.
	{control.ErrInsufficientCapacity, wireError{http.StatusServiceUnavailable, "InsufficientThroughputCapacity"}},
	{nil, wireError{http.StatusInternalServerError, "InternalServerError"}},
}

// lookup returns the wire error of err and whether err is one the table
// names (false: an internal failure, whose cause is not shown).
func lookup(err error) (wireError, bool) {
	for _, e := range table {
		if e.err != nil && errors.Is(err, e.err) {
			return e.wire, true
		}
	}
	return table[len(table)-1].wire, false
}

// errorBody is every EFS error's JSON body.
type errorBody struct {
	ErrorCode     string `json:"ErrorCode"`
	Message       string `json:"Message"`
	FileSystemID  string `json:"FileSystemId,omitempty"`
	AccessPointID string `json:"AccessPointId,omitempty"`
}

// publicError returns the wire error and body of err; known is false for
// internal failures.
func publicError(err error, reqID string) (wireError, errorBody, bool) {
	w, known := lookup(err)
	b := errorBody{ErrorCode: w.code}
	var ce *control.Error
	var ae *Error
	switch {
	case errors.As(err, &ce):
		b.Message = ce.Message
		switch {
		case errors.Is(err, control.ErrFileSystemAlreadyExists):
			b.FileSystemID = ce.ResourceID
		case errors.Is(err, control.ErrAccessPointAlreadyExists):
			b.AccessPointID = ce.ResourceID
		}
	case errors.As(err, &ae):
		b.Message = ae.Message
	case errors.Is(err, context.Canceled):
		b.Message = "The request was canceled."
	case errors.Is(err, context.DeadlineExceeded):
		b.Message = "The request timed out; try again."
	case errors.Is(err, control.ErrClosed):
		b.Message = "The region is shutting down; try again."
	default:
		b.Message = "An internal error occurred (request " + reqID + ")."
	}
	return w, b, known
}
