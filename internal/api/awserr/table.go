package awserr

import (
	"context"
	"errors"
	"net/http"

	"github.com/regionfs/regionfs/internal/api/sigv4"
	"github.com/regionfs/regionfs/internal/cfn"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/keys"
	"github.com/regionfs/regionfs/internal/drill"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/monitor"
	"github.com/regionfs/regionfs/internal/monitor/notify"
	"github.com/regionfs/regionfs/internal/replication"
)

// Wire is an error as one protocol writes it: the HTTP status and the
// error code.
type Wire struct {
	Status int
	Code   string
}

// Code is one row of the table: how each protocol writes the error, and
// the public message used when the error carries none of its own.
type Code struct {
	// REST is restJson1 (EFS): x-amzn-ErrorType and the body's ErrorCode.
	REST Wire
	// JSON is awsJson1_0/1_1 and rpcv2-cbor: the body's __type (the error
	// shape's name).
	JSON Wire
	// Query is awsQuery (<Error><Code>), and x-amzn-query-error of
	// query-compatible JSON and CBOR services.
	Query Wire
	// EC2 is ec2Query (<Errors><Error><Code>).
	EC2 Wire
	// Message is the public message of an error that carries none.
	Message string
	// Handler is the CloudFormation resource handler error code
	// (NotFound, AlreadyExists, InvalidRequest, ResourceConflict,
	// ServiceLimitExceeded, Throttling, NetworkFailure, AccessDenied) a
	// resource type reports when a call fails with the error; "" for
	// errors a stack reports itself (internal failures, timeouts).
	Handler string
}

// Fault is the query protocol's Type: Sender for client errors, Receiver
// for server errors.
func (c Code) Fault() string {
	if c.Query.Status >= 500 {
		return "Receiver"
	}
	return "Sender"
}

// Wire returns the column of protocol p.
func (c Code) wire(p protocolColumn) Wire {
	switch p {
	case columnJSON:
		return c.JSON
	case columnQuery:
		return c.Query
	case columnEC2:
		return c.EC2
	}
	return c.REST
}

type protocolColumn int

const (
	columnREST protocolColumn = iota
	columnJSON
	columnQuery
	columnEC2
)

// all is a code written the same way by every protocol.
func all(status int, code, msg string) Code {
	w := Wire{status, code}
	return Code{REST: w, JSON: w, Query: w, EC2: w, Message: msg}
}

// row is one entry of the table.
type row struct {
	err  error
	code Code
}

// internal is the safe default, the table's last row.
var internal = Code{
	REST:  Wire{http.StatusInternalServerError, "InternalServerError"},
	JSON:  Wire{http.StatusInternalServerError, "InternalFailure"},
	Query: Wire{http.StatusInternalServerError, "InternalFailure"},
	EC2:   Wire{http.StatusInternalServerError, "InternalError"},
}

var unavailable = Code{
	REST:    Wire{http.StatusServiceUnavailable, "ServiceUnavailableException"},
	JSON:    Wire{http.StatusServiceUnavailable, "ServiceUnavailableException"},
	Query:   Wire{http.StatusServiceUnavailable, "ServiceUnavailable"},
	EC2:     Wire{http.StatusServiceUnavailable, "Unavailable"},
	Message: "The service is unavailable; try again.",
}

func authFailure(rest, query, ec2 string, ec2Status int) Code {
	return Code{
		REST:  Wire{http.StatusForbidden, rest},
		JSON:  Wire{http.StatusForbidden, rest},
		Query: Wire{http.StatusForbidden, query},
		EC2:   Wire{ec2Status, ec2},
	}
}

func unknownOperation(restStatus int) Code {
	return Code{
		REST:    Wire{restStatus, "UnknownOperationException"},
		JSON:    Wire{http.StatusBadRequest, "UnknownOperationException"},
		Query:   Wire{http.StatusBadRequest, "InvalidAction"},
		EC2:     Wire{http.StatusBadRequest, "InvalidAction"},
		Message: "The operation is not valid for this service.",
	}
}

// table maps errors to wire errors, first match (errors.Is) wins: context
// errors first, then authentication, the API layer, the domains, EC2's
// own errors (ec2Rows); the safe default (internal, also ErrInternal) when
// nothing matches.
var table = []row{
	{context.Canceled, all(499, "RequestCanceled", "The request was canceled.")},
	{context.DeadlineExceeded, Code{
		REST:    Wire{http.StatusGatewayTimeout, "DependencyTimeout"},
		JSON:    Wire{http.StatusGatewayTimeout, "RequestTimeoutException"},
		Query:   Wire{http.StatusGatewayTimeout, "RequestTimeout"},
		EC2:     Wire{http.StatusGatewayTimeout, "RequestTimeout"},
		Message: "The request timed out; try again.",
	}},

	{sigv4.ErrMissingAuthentication, authFailure("MissingAuthenticationTokenException", "MissingAuthenticationToken", "AuthFailure", http.StatusUnauthorized)},
	{sigv4.ErrIncompleteSignature, authFailure("IncompleteSignatureException", "IncompleteSignature", "AuthFailure", http.StatusUnauthorized)},
	{sigv4.ErrUnknownAccessKey, authFailure("UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure", http.StatusUnauthorized)},
	{sigv4.ErrExpired, authFailure("InvalidSignatureException", "SignatureDoesNotMatch", "RequestExpired", http.StatusBadRequest)},
	{sigv4.ErrSignatureMismatch, authFailure("InvalidSignatureException", "SignatureDoesNotMatch", "AuthFailure", http.StatusUnauthorized)},
	{sigv4.ErrInvalidRegion, authFailure("InvalidSignatureException", "SignatureDoesNotMatch", "AuthFailure", http.StatusUnauthorized)},
	{sigv4.ErrUnsupportedService, all(http.StatusNotImplemented, "NotImplemented", "regionfs does not implement this API.")},

	{ErrBodyTooLarge, Code{
		REST:    Wire{http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException"},
		JSON:    Wire{http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException"},
		Query:   Wire{http.StatusRequestEntityTooLarge, "RequestEntityTooLarge"},
		EC2:     Wire{http.StatusRequestEntityTooLarge, "RequestEntityTooLarge"},
		Message: "The request body is too large.",
	}},
	{ErrMalformedRequest, Code{
		REST:    Wire{http.StatusBadRequest, "BadRequest"},
		JSON:    Wire{http.StatusBadRequest, "SerializationException"},
		Query:   Wire{http.StatusBadRequest, "MalformedQueryString"},
		EC2:     Wire{http.StatusBadRequest, "InvalidQueryParameter"},
		Message: "The request could not be parsed.",
	}},
	{ErrMissingAction, Code{
		REST:    Wire{http.StatusNotFound, "UnknownOperationException"},
		JSON:    Wire{http.StatusBadRequest, "UnknownOperationException"},
		Query:   Wire{http.StatusBadRequest, "MissingAction"},
		EC2:     Wire{http.StatusBadRequest, "MissingAction"},
		Message: "The request must contain the parameter Action.",
	}},
	{ErrMethodNotAllowed, withEC2(unknownOperation(http.StatusMethodNotAllowed), Wire{http.StatusBadRequest, "InvalidRequest"})},
	{ErrUnknownOperation, unknownOperation(http.StatusNotFound)},
	{ErrRegionUnavailable, unavailable},
	{ErrThrottled, Code{
		REST:    Wire{http.StatusTooManyRequests, "ThrottlingException"},
		JSON:    Wire{http.StatusBadRequest, "ThrottlingException"},
		Query:   Wire{http.StatusBadRequest, "Throttling"},
		EC2:     Wire{http.StatusServiceUnavailable, "RequestLimitExceeded"},
		Message: "Rate exceeded.",
	}},

	// EFS (package control).
	{control.ErrBadRequest, Code{
		REST:    Wire{http.StatusBadRequest, "BadRequest"},
		JSON:    Wire{http.StatusBadRequest, "ValidationException"},
		Query:   Wire{http.StatusBadRequest, "ValidationError"},
		EC2:     Wire{http.StatusBadRequest, "InvalidParameterValue"},
		Handler: "InvalidRequest",
	}},
	{control.ErrFileSystemNotFound, handler(all(http.StatusNotFound, "FileSystemNotFound", "The file system does not exist."), "NotFound")},
	{control.ErrFileSystemAlreadyExists, handler(all(http.StatusConflict, "FileSystemAlreadyExists", "The file system already exists."), "AlreadyExists")},
	{control.ErrFileSystemInUse, handler(all(http.StatusConflict, "FileSystemInUse", "The file system is in use."), "ResourceConflict")},
	{control.ErrFileSystemLimitExceeded, handler(all(http.StatusForbidden, "FileSystemLimitExceeded", "Too many file systems."), "ServiceLimitExceeded")},
	{control.ErrIncorrectLifeCycleState, handler(all(http.StatusConflict, "IncorrectFileSystemLifeCycleState", "The file system is not available."), "ResourceConflict")},
	{control.ErrThroughputLimitExceeded, handler(all(http.StatusBadRequest, "ThroughputLimitExceeded", "The throughput limit is exceeded."), "ServiceLimitExceeded")},
	{control.ErrTooManyRequests, handler(all(http.StatusTooManyRequests, "TooManyRequests", "Too many requests."), "Throttling")},
	{control.ErrReplicationAlreadyExists, handler(all(http.StatusConflict, "ReplicationAlreadyExists", "The file system is part of a replication configuration."), "ResourceConflict")},
	{control.ErrUnsupportedAvailabilityZone, handler(all(http.StatusBadRequest, "UnsupportedAvailabilityZone", "The availability zone is not supported."), "InvalidRequest")},
	{control.ErrMountTargetNotFound, handler(all(http.StatusNotFound, "MountTargetNotFound", "The mount target does not exist."), "NotFound")},
	{control.ErrIncorrectMountTargetState, handler(all(http.StatusConflict, "IncorrectMountTargetState", "The mount target is not available."), "ResourceConflict")},
	{control.ErrMountTargetConflict, handler(all(http.StatusConflict, "MountTargetConflict", "The mount target conflicts with an existing one."), "ResourceConflict")},
	{control.ErrAvailabilityZonesMismatch, handler(all(http.StatusBadRequest, "AvailabilityZonesMismatch", "The availability zones do not match."), "InvalidRequest")},
	{control.ErrSubnetNotFound, handler(all(http.StatusBadRequest, "SubnetNotFound", "The subnet does not exist."), "InvalidRequest")},
	{control.ErrSecurityGroupNotFound, handler(all(http.StatusBadRequest, "SecurityGroupNotFound", "The security group does not exist."), "InvalidRequest")},
	{control.ErrSecurityGroupLimitExceeded, handler(all(http.StatusBadRequest, "SecurityGroupLimitExceeded", "Too many security groups."), "ServiceLimitExceeded")},
	{control.ErrNoFreeAddresses, handler(all(http.StatusConflict, "NoFreeAddressesInSubnet", "The subnet has no free addresses."), "ResourceConflict")},
	{control.ErrIPAddressInUse, handler(all(http.StatusConflict, "IpAddressInUse", "The IP address is in use."), "ResourceConflict")},
	{control.ErrNetworkInterfaceLimitExceeded, handler(all(http.StatusConflict, "NetworkInterfaceLimitExceeded", "Too many network interfaces."), "ServiceLimitExceeded")},
	{control.ErrAccessPointNotFound, handler(all(http.StatusNotFound, "AccessPointNotFound", "The access point does not exist."), "NotFound")},
	{control.ErrAccessPointAlreadyExists, handler(all(http.StatusConflict, "AccessPointAlreadyExists", "The access point already exists."), "AlreadyExists")},
	{control.ErrAccessPointLimitExceeded, handler(all(http.StatusForbidden, "AccessPointLimitExceeded", "Too many access points."), "ServiceLimitExceeded")},
	{control.ErrPolicyNotFound, handler(all(http.StatusNotFound, "PolicyNotFound", "The file system has no policy."), "NotFound")},
	{control.ErrInvalidPolicy, handler(all(http.StatusBadRequest, "InvalidPolicyException", "The policy is not valid."), "InvalidRequest")},
	{control.ErrClosed, withMessage(unavailable, "The region is shutting down; try again.")},
	// A full data disk: retryable (space may come back); the message says
	// what is wrong.
	{control.ErrInsufficientCapacity, Code{
		REST:    Wire{http.StatusServiceUnavailable, "InsufficientThroughputCapacity"},
		JSON:    Wire{http.StatusServiceUnavailable, "InsufficientThroughputCapacity"},
		Query:   Wire{http.StatusServiceUnavailable, "InsufficientCapacity"},
		EC2:     Wire{http.StatusServiceUnavailable, "InsufficientCapacity"},
		Message: "The region's storage is full.",
	}},

	// EFS replication configurations (package control/replconf, with
	// control's sentinels).
	{control.ErrReplicationNotFound, handler(all(http.StatusNotFound, "ReplicationNotFound", "The replication configuration does not exist."), "NotFound")},
	{control.ErrConflict, handler(all(http.StatusConflict, "ConflictException", "The request conflicts with the replication's state."), "ResourceConflict")},
	{control.ErrValidation, handler(all(http.StatusBadRequest, "ValidationException", "The request is not valid."), "InvalidRequest")},
	// Replication's transport (package replication).
	// A peer region that does not answer: the caller is told at once (a
	// 4xx, so that clients do not retry for a minute) and can act, e.g.
	// delete the configuration in the destination region instead.
	{replication.ErrUnreachable, handler(all(http.StatusConflict, "ConflictException", "The other region of the replication does not answer."), "NetworkFailure")},
	{replication.ErrUnknownRegion, handler(all(http.StatusBadRequest, "ValidationException", "The region is not one this region replicates with."), "InvalidRequest")},

	// CloudWatch (package monitor): JSON/CBOR shapes and query codes as in
	// its model.
	{monitor.ErrInvalidParameterValue, handler(cw(http.StatusBadRequest, "InvalidParameterValueException", "InvalidParameterValue", "A parameter is not valid."), "InvalidRequest")},
	{monitor.ErrMissingParameter, handler(cw(http.StatusBadRequest, "MissingRequiredParameterException", "MissingParameter", "A required parameter is missing."), "InvalidRequest")},
	{monitor.ErrInvalidParameterCombination, handler(cw(http.StatusBadRequest, "InvalidParameterCombinationException", "InvalidParameterCombination", "The parameters cannot be combined."), "InvalidRequest")},
	{monitor.ErrResourceNotFound, handler(cw(http.StatusNotFound, "ResourceNotFound", "ResourceNotFound", "The alarm does not exist."), "NotFound")},
	{monitor.ErrTagResourceNotFound, handler(cw(http.StatusNotFound, "ResourceNotFoundException", "ResourceNotFoundException", "The resource does not exist."), "NotFound")},
	{monitor.ErrAlreadyExists, handler(cw(http.StatusBadRequest, "AlreadyExists", "AlreadyExists", "The alarm already exists."), "AlreadyExists")},
	{monitor.ErrLimitExceeded, handler(cw(http.StatusBadRequest, "LimitExceededFault", "LimitExceeded", "A limit is exceeded."), "ServiceLimitExceeded")},
	{monitor.ErrInvalidNextToken, cw(http.StatusBadRequest, "InvalidNextToken", "InvalidNextToken", "The NextToken is not valid.")},
	{monitor.ErrInvalidFormat, cw(http.StatusBadRequest, "InvalidFormatFault", "InvalidFormat", "The value is not in the expected format.")},
	{monitor.ErrValidation, handler(cw(http.StatusBadRequest, "ValidationException", "ValidationError", "The request is not valid."), "InvalidRequest")},
	{monitor.ErrDashboardInvalid, handler(cw(http.StatusBadRequest, "DashboardInvalidInputError", "InvalidParameterInput", "The dashboard body is invalid."), "InvalidRequest")},
	{monitor.ErrDashboardNotFound, handler(cw(http.StatusNotFound, "DashboardNotFoundError", "ResourceNotFound", "The dashboard does not exist."), "NotFound")},
	{monitor.ErrClosed, withMessage(unavailable, "The region is shutting down; try again.")},
	{monitor.ErrNoSpace, withMessage(unavailable, "The region's data disk is full: metric data and alarm changes are not stored until space is freed or added.")},

	// SNS (package monitor/notify).
	{notify.ErrInvalidParameter, handler(cw(http.StatusBadRequest, "InvalidParameterException", "InvalidParameter", "Invalid parameter."), "InvalidRequest")},
	{notify.ErrNotFound, handler(cw(http.StatusNotFound, "NotFoundException", "NotFound", "The resource does not exist."), "NotFound")},
	{notify.ErrAuthorization, cw(http.StatusForbidden, "AuthorizationErrorException", "AuthorizationError", "Not authorized.")},
	{notify.ErrTopicLimit, handler(cw(http.StatusForbidden, "TopicLimitExceededException", "TopicLimitExceeded", "Topic limit exceeded."), "ServiceLimitExceeded")},
	{notify.ErrSubscriptionLimit, handler(cw(http.StatusForbidden, "SubscriptionLimitExceededException", "SubscriptionLimitExceeded", "Subscription limit exceeded."), "ServiceLimitExceeded")},
	{notify.ErrAlreadyExists, handler(cw(http.StatusBadRequest, "AlreadyExists", "AlreadyExists", "The topic already exists."), "AlreadyExists")},
	{notify.ErrClosed, withMessage(unavailable, "The region is shutting down; try again.")},
	{notify.ErrNoSpace, withMessage(unavailable, "The region's data disk is full: messages, topics and subscriptions are not taken until space is freed or added.")},

	// KMS (package control/keys): every refusal is a 400 with the shape
	// name of KMS's model.
	{keys.ErrNotFound, handler(all(http.StatusBadRequest, "NotFoundException", "The key does not exist."), "NotFound")},
	{keys.ErrInvalidArn, handler(all(http.StatusBadRequest, "InvalidArnException", "The ARN is not valid."), "InvalidRequest")},
	{keys.ErrAlreadyExists, handler(all(http.StatusBadRequest, "AlreadyExistsException", "The resource already exists."), "AlreadyExists")},
	{keys.ErrInvalidState, handler(all(http.StatusBadRequest, "KMSInvalidStateException", "The key is not in a valid state for the operation."), "ResourceConflict")},
	{keys.ErrDisabled, handler(all(http.StatusBadRequest, "DisabledException", "The key is disabled."), "ResourceConflict")},
	{keys.ErrValidation, handler(all(http.StatusBadRequest, "ValidationException", "The request is not valid."), "InvalidRequest")},
	{keys.ErrInvalidAlias, handler(all(http.StatusBadRequest, "InvalidAliasNameException", "The alias name is not valid."), "InvalidRequest")},
	{keys.ErrTag, handler(all(http.StatusBadRequest, "TagException", "The tags are not valid."), "InvalidRequest")},
	{keys.ErrMalformedPolicy, handler(all(http.StatusBadRequest, "MalformedPolicyDocumentException", "The key policy is not valid."), "InvalidRequest")},
	{keys.ErrLimitExceeded, handler(all(http.StatusBadRequest, "LimitExceededException", "A limit is exceeded."), "ServiceLimitExceeded")},
	{keys.ErrUnsupported, handler(all(http.StatusBadRequest, "UnsupportedOperationException", "The operation is not supported."), "InvalidRequest")},
	{keys.ErrAccessDenied, handler(all(http.StatusBadRequest, "AccessDeniedException", "Access denied."), "AccessDenied")},
	{keys.ErrClosed, withMessage(unavailable, "The region is shutting down; try again.")},

	// CloudFormation (package cfn): query codes as in its model.
	{cfn.ErrValidation, all(http.StatusBadRequest, "ValidationError", "The request is not valid.")},
	{cfn.ErrAlreadyExists, all(http.StatusBadRequest, "AlreadyExistsException", "The stack already exists.")},
	{cfn.ErrTokenAlreadyExists, all(http.StatusBadRequest, "TokenAlreadyExistsException", "The client request token was used for another request.")},
	{cfn.ErrChangeSetNotFound, all(http.StatusNotFound, "ChangeSetNotFound", "The change set does not exist.")},
	{cfn.ErrInvalidChangeSetStatus, all(http.StatusBadRequest, "InvalidChangeSetStatus", "The change set cannot be used in its status.")},
	{cfn.ErrInsufficientCapabilities, all(http.StatusBadRequest, "InsufficientCapabilitiesException", "The template needs capabilities that were not acknowledged.")},
	{cfn.ErrLimitExceeded, all(http.StatusBadRequest, "LimitExceededException", "Too many stacks.")},
	{cfn.ErrStackSetNotFound, all(http.StatusNotFound, "StackSetNotFoundException", "The stack set does not exist.")},
	{cfn.ErrClosed, withMessage(unavailable, "The region is shutting down; try again.")},

	// Drills (package drill, regionfs's own operations).
	{drill.ErrDrillNotFound, all(http.StatusNotFound, "DrillNotFound", "The drill does not exist.")},
	{drill.ErrNotDestination, all(http.StatusNotFound, "ReplicationNotFound", "The file system is not a replication destination in this region.")},
	{drill.ErrInProgress, all(http.StatusConflict, "ConflictException", "A drill of the file system is running.")},
	{drill.ErrNotChecking, all(http.StatusConflict, "ConflictException", "The drill does not wait for a check.")},
	{drill.ErrNotReady, all(http.StatusConflict, "ConflictException", "The replica has no consistent state yet.")},
	{drill.ErrBadRequest, all(http.StatusBadRequest, "BadRequest", "The request is not valid.")},
	{drill.ErrClosed, withMessage(unavailable, "The region is shutting down; try again.")},

	// The engine, as replication and control let its errors through.
	{engine.ErrNotReady, all(http.StatusConflict, "ConflictException", "The replica has no consistent state yet.")},
	{engine.ErrFSNotFound, all(http.StatusNotFound, "FileSystemNotFound", "The file system does not exist.")},
	{engine.ErrClosed, withMessage(unavailable, "The region is shutting down; try again.")},
	// A file system whose KMS key is disabled, pending deletion or gone:
	// the caller can act (enable the key, cancel its deletion).
	{engine.ErrKeyUnavailable, handler(Code{
		REST:    Wire{http.StatusBadRequest, "BadRequest"},
		JSON:    Wire{http.StatusBadRequest, "ValidationException"},
		Query:   Wire{http.StatusBadRequest, "ValidationError"},
		EC2:     Wire{http.StatusBadRequest, "InvalidParameterValue"},
		Message: "The file system's KMS key is disabled, pending deletion or deleted; enable the key (or cancel its deletion) to use the file system.",
	}, "InvalidRequest")},
}

// cw is an error of a query-compatible service (CloudWatch, SNS): its
// shape name in the JSON column, its query code elsewhere.
func cw(status int, shape, code, msg string) Code {
	return Code{REST: Wire{status, code}, JSON: Wire{status, shape}, Query: Wire{status, code}, EC2: Wire{status, code}, Message: msg}
}

// handler sets the CloudFormation resource handler code of a row.
func handler(c Code, code string) Code {
	c.Handler = code
	return c
}

func withEC2(c Code, w Wire) Code {
	c.EC2 = w
	return c
}

func withMessage(c Code, msg string) Code {
	c.Message = msg
	return c
}

// Lookup returns the table row of err and whether err is one the table
// names (false: an internal failure, answered with the safe default).
func Lookup(err error) (Code, bool) {
	r, ok := find(err)
	return r.code, ok
}

func find(err error) (row, bool) {
	for _, rows := range [][]row{table, ec2Rows} {
		for _, r := range rows {
			if errors.Is(err, r.err) {
				return r, true
			}
		}
	}
	return row{code: internal}, false
}

// Message returns the public message of err: the message of the first
// Public error in its chain that is itself of the matched row's kind (a
// canceled request is "canceled", whatever it wraps), the row's own
// message otherwise; an internal failure gets a message that only names
// the request, so that its cause can be found in the logs.
func Message(err error, requestID string) string {
	r, known := find(err)
	if !known {
		if requestID == "" {
			return "An internal error occurred."
		}
		return "An internal error occurred (request " + requestID + ")."
	}
	if m := publicMessage(err, r.err); m != "" {
		return m
	}
	if r.code.Message != "" {
		return r.code.Message
	}
	return "The request is not valid."
}

// publicMessage walks err's tree (depth first, as errors.Is does) for a
// Public error that is of kind.
func publicMessage(err, kind error) string {
	if err == nil {
		return ""
	}
	if p, ok := err.(Public); ok && errors.Is(p, kind) && p.PublicMessage() != "" {
		return p.PublicMessage()
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return publicMessage(u.Unwrap(), kind)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if m := publicMessage(e, kind); m != "" {
				return m
			}
		}
	}
	return ""
}

// HandlerError returns the CloudFormation resource handler error code of
// err and its public message, for a resource type to report; ok is false
// when the table gives err no handler code (internal failures, canceled
// or timed-out calls), which the stack engine reports itself.
func HandlerError(err error) (code, message string, ok bool) {
	r, known := find(err)
	if !known || r.code.Handler == "" {
		return "", "", false
	}
	return r.code.Handler, Message(err, ""), true
}

// FromREST turns an error that another region answered in restJson1 back
// into a local error, so that it is written again in the caller's
// protocol: the first row whose REST code is code gives the kind. An
// unknown code is an internal error.
func FromREST(status int, code, message string) error {
	for _, rows := range [][]row{table, ec2Rows} {
		for _, r := range rows {
			if r.code.REST.Code == code && (status == 0 || r.code.REST.Status == status) {
				return &Error{Err: r.err, Message: message}
			}
		}
	}
	return &Error{Err: ErrInternal, Message: message}
}
