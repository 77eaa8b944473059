package control

import (
	"errors"
	"fmt"
)

// Sentinel errors of the control plane. Every error a Region method returns
// for a rule it enforces wraps exactly one of them (in an *Error carrying
// the public message); the API edge maps them to AWS errors in one ordered
// table. Anything else is an internal failure.
var (
	// ErrBadRequest: the request breaks a rule of the API (a value out of
	// range, a conflicting combination, a malformed id).
	ErrBadRequest = errors.New("bad request")

	ErrFileSystemNotFound      = errors.New("file system not found")
	ErrFileSystemAlreadyExists = errors.New("file system already exists")
	ErrFileSystemInUse         = errors.New("file system in use")
	ErrFileSystemLimitExceeded = errors.New("file system limit exceeded")
	// ErrIncorrectLifeCycleState: the file system is not in a state that
	// allows the operation (usually: not available).
	ErrIncorrectLifeCycleState = errors.New("incorrect file system life cycle state")
	ErrThroughputLimitExceeded = errors.New("throughput limit exceeded")
	// ErrTooManyRequests: the throughput mode was changed, or provisioned
	// throughput decreased, too recently.
	ErrTooManyRequests = errors.New("too many requests")
	// ErrReplicationAlreadyExists: the file system is part of a
	// replication configuration.
	ErrReplicationAlreadyExists = errors.New("replication already exists")
	// ErrReplicationNotFound: no replication configuration names the file
	// system (in this region).
	ErrReplicationNotFound = errors.New("replication configuration not found")
	// ErrConflict: the request conflicts with a replication's state (a
	// creation under way, an initial sync not finished, a protected
	// destination).
	ErrConflict = errors.New("conflict")
	// ErrValidation: the request is well formed but not valid (a second
	// destination, a region this one does not replicate with).
	ErrValidation                  = errors.New("validation error")
	ErrUnsupportedAvailabilityZone = errors.New("unsupported availability zone")

	ErrMountTargetNotFound           = errors.New("mount target not found")
	ErrIncorrectMountTargetState     = errors.New("incorrect mount target state")
	ErrMountTargetConflict           = errors.New("mount target conflict")
	ErrAvailabilityZonesMismatch     = errors.New("availability zones mismatch")
	ErrSubnetNotFound                = errors.New("subnet not found")
	ErrSecurityGroupNotFound         = errors.New("security group not found")
	ErrSecurityGroupLimitExceeded    = errors.New("security group limit exceeded")
	ErrNoFreeAddresses               = errors.New("no free addresses in subnet")
	ErrIPAddressInUse                = errors.New("ip address in use")
	ErrNetworkInterfaceLimitExceeded = errors.New("network interface limit exceeded")

	ErrAccessPointNotFound      = errors.New("access point not found")
	ErrAccessPointAlreadyExists = errors.New("access point already exists")
	ErrAccessPointLimitExceeded = errors.New("access point limit exceeded")

	ErrPolicyNotFound = errors.New("policy not found")
	ErrInvalidPolicy  = errors.New("invalid policy")

	// ErrInsufficientCapacity: the region's data disk is below its
	// free-space floor; only deletions are accepted (package space).
	ErrInsufficientCapacity = errors.New("insufficient storage capacity")

	// ErrClosed: the region is closed.
	ErrClosed = errors.New("control: region closed")
)

// Error is a rule the control plane enforced: Kind is one of the sentinels
// above, Message is safe to show to the caller, ResourceID names the
// existing resource for the AlreadyExists errors.
type Error struct {
	Kind       error
	Message    string
	ResourceID string
}

func (e *Error) Error() string { return e.Message }

// PublicMessage is the message for the API's client (package awserr).
func (e *Error) PublicMessage() string { return e.Message }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// Errorf returns an *Error of kind with a public message.
func Errorf(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

func errorf(kind error, format string, args ...any) *Error { return Errorf(kind, format, args...) }

func badRequest(format string, args ...any) *Error { return errorf(ErrBadRequest, format, args...) }

func fsNotFound(id string) *Error {
	return errorf(ErrFileSystemNotFound, "File system '%s' does not exist.", id)
}

func mtNotFound(id string) *Error {
	return errorf(ErrMountTargetNotFound, "Mount target '%s' does not exist.", id)
}

func apNotFound(id string) *Error {
	return errorf(ErrAccessPointNotFound, "Access point '%s' does not exist.", id)
}

func wrongFSState(id string, s LifeCycleState) *Error {
	return errorf(ErrIncorrectLifeCycleState, "File system '%s' is in the '%s' state; it must be available for this operation.", id, s)
}
