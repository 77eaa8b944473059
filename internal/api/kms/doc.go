// Package kms serves the AWS KMS API of a region (AWS JSON 1.1, target
// prefix TrentService) over the region's KMS domain (package
// control/keys): keys, aliases, enable/disable, scheduled deletion,
// rotation, tags and key policies. Timestamps are epoch seconds. Errors
// are written through package awserr's table: HTTP 400 with
// {"__type","message"} for refusals, KMSInternalException (500) for
// internal failures, whose cause is only logged.
//
// Operations are grouped by the resource they touch (keys, aliases,
// rotation, tags, policies) rather than one file each: each is a few lines
// of decoding over one domain call.
//
// Requests reach the handler authenticated (package region verifies SigV4
// with service kms).
package kms
