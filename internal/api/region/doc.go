// Package region is the HTTP API server of one region: it reads the request
// body (bounded), verifies its SigV4 signature (package sigv4), puts the
// caller's identity in the request context and dispatches on the credential
// scope's service: elasticfilesystem to the EFS REST-JSON handler, ec2 to the
// EC2 query handler, monitoring and sns to their handlers (answering the
// protocol's unknown-operation error while a region has none). A correctly
// signed request for any other service is told that regionfs does not
// implement it. It serves Prometheus metrics on GET /metrics from the
// registry it is given.
//
// The errors no service handler produces — authentication failures,
// oversized bodies, unknown operations, an unavailable region — are
// written by package awserr in the protocol the request speaks (package
// awsproto recognises it); the edge (package edge) answers the same way.
package region
