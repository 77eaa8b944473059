// Package efs serves the AWS EFS API (REST-JSON, version 2015-02-01) over
// a region's control plane (package control), as AWS serves it, so that the
// aws CLI, boto3 and aws-sdk-go-v2 work unchanged: one file per operation,
// the model's paths and success codes (201 CreateFileSystem, 202
// UpdateFileSystem, 204 for the deletes, ModifyMountTargetSecurityGroups
// and the deprecated tag calls, 200 otherwise), epoch-second timestamps,
// Marker/MaxItems and NextToken/MaxResults pagination.
//
// Requests arrive verified (package region checks SigV4 and puts the
// identity in the context; a request without one is refused). Routing is on
// the escaped path, so path labels may be ARNs with percent-encoded "/".
//
// Decoding is strict where AWS is and lenient where it is: members are
// matched by exact name, unknown members are ignored, null is absent, every
// member of the current botocore model is accepted, and types, lengths,
// patterns, ranges and required members are checked on the server (clients
// check little), answering BadRequest in AWS's validation wording. Bodies
// larger than MaxBodyBytes are refused.
//
// Errors carry x-amzn-ErrorType (which clients read the code from) and a
// {"ErrorCode","Message"} body (plus FileSystemId or AccessPointId for the
// AlreadyExists errors), mapped by the one ordered table in errors.go.
// Internal failures are logged with the request id and answered
// InternalServerError without their cause.
//
// The replication operations belong to package replication; until it is
// wired in front of this handler they answer UnknownOperationException.
package efs
