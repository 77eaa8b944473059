// Package awserr is regionfs's one AWS error layer: every service handler
// (EFS, EC2, CloudWatch, SNS, and those to come) and the API server and
// edge answer errors through it, so that a Go error means the same thing
// on every wire.
//
// # The table
//
// One ordered table maps Go errors to wire errors with errors.Is, first
// match wins: context errors first (a canceled request is
// RequestCanceled/499 whatever it wraps), then authentication (package
// sigv4's sentinels), the API layer's own sentinels (ErrUnknownOperation,
// ErrBodyTooLarge, ErrMalformedRequest, …), then each domain's sentinels
// (control.ErrFileSystemNotFound, control.ErrConflict,
// monitor.ErrResourceNotFound, keys.ErrDisabled, cfn.ErrValidation, …). Anything else is an internal failure:
// 500 with a message that names only the request id, while the cause is
// logged with that id. Error text is never matched and never sent unless
// it is public.
//
// Each row has a column per protocol (type Code): restJson1 (EFS:
// x-amzn-ErrorType and {"ErrorCode","Message"}), JSON 1.0/1.1 and Smithy
// RPC v2 CBOR ({"__type","message"}, plus x-amzn-query-error for
// query-compatible services such as CloudWatch), awsQuery
// (<ErrorResponse><Error><Type/><Code/><Message/>) and ec2Query
// (<Response><Errors><Error>). The same sentinel can so be SubnetNotFound
// for EFS and InvalidSubnetID.NotFound for EC2. A last column holds the
// CloudFormation resource handler code (NotFound, AlreadyExists, …) that
// the stack engine's resource types report for the error (HandlerError).
//
// Every service answers through it: EFS (efs, efsrepl), EC2, CloudWatch,
// SNS, KMS and CloudFormation, the API server and the edge. A service with
// its own internal error shape names it in its awsproto.Service (KMS:
// KMSInternalException).
//
// # Public messages
//
// The message sent is that of the first error in the chain implementing
// Public (PublicMessage() string): *Error, control.Error, sigv4.Error,
// replication.Error, monitor.Error, notify.Error, keys.Error, network.Error,
// cfn.Error. A known error without one gets its
// row's message. Wrap domain refusals in such a type; wrap internal
// failures with %w as usual: their text stays in the logs.
//
// # Adding a service or an error
//
// A new service describes itself with an awsproto.Service (signing name,
// XML namespace, JSON target prefix, query compatibility), decodes and
// encodes with package awsproto, and answers every failure with
// Responder.Fail. A new domain error is a sentinel in its domain package
// and one row here, before the rows it could be confused with; the table
// test checks every row is complete.
//
// A correctly signed request for a service regionfs does not implement is
// answered NotImplemented/501 with "regionfs does not implement the 'xyz'
// API." in the protocol the request speaks.
package awserr
