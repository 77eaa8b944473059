// Package region is the HTTP API server of one region: it reads the request
// body (bounded), verifies its SigV4 signature (package sigv4), puts the
// caller's identity in the request context and dispatches on the credential
// scope's service: elasticfilesystem to the EFS REST-JSON handler, ec2 to the
// EC2 query handler, monitoring and sns to their handlers (answering the
// protocol's unknown-operation error while a region has none). It serves
// Prometheus metrics on GET /metrics from the registry it is given.
//
// It also owns the wire shapes of the errors no service handler produces —
// authentication failures, oversized bodies, unknown operations, an
// unavailable region — in each protocol: REST-JSON (x-amzn-ErrorType and a
// JSON body), AWS JSON 1.0 (x-amzn-query-error), the query protocol
// (<ErrorResponse>), Smithy RPC v2 CBOR and EC2 (<Response><Errors>). The
// edge (package edge) answers with the same shapes.
package region
