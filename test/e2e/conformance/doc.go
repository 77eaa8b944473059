// Package conformance checks regionfs's EFS and CloudWatch APIs against the
// service models of botocore, the models the aws CLI and boto3 are built
// from, with boto3 against two real `regionfs serve` regions on loopback
// (testdata/conformance.py): every response has the model's required
// members, types, enums and bounds; every list pages each item exactly
// once; every invalid input (a required member left out, a value out of the
// model's bounds or pattern, an unknown id of each kind, a wrong state, a
// duplicate) answers the right error, HTTP status and parsable code, and
// changes nothing.
//
// It starts processes and binds ports: run it under flock /work/.ports.lock.
package conformance
