// Package sigv4 verifies AWS Signature Version 4 requests (the Authorization
// header form and the presigned query form) against the credentials a region
// is configured with, and carries the verified caller's identity to the
// handlers through the request context.
//
// Verification recomputes the canonical request as AWS does, derives the
// signing key from the configured secret, compares signatures in constant
// time and enforces a 15-minute clock skew window. Failures are Errors that
// carry AWS's error code for the failure; the protocol packages render them
// in their wire shape (REST-JSON for EFS, query XML for CloudWatch and SNS,
// EC2 XML for EC2).
package sigv4
