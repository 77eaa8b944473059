// Package edge is the one client endpoint of a regionfs deployment. It is
// stateless (run several behind a load balancer): it reads a request,
// verifies its SigV4 signature, and forwards it by the credential scope's
// region straight to that region's API listener — never through another
// region — byte-exact: method, escaped path, query, body and every
// end-to-end header as received, so that the region verifies the same
// signature again.
//
// A region whose listener does not answer is reported within a second as
// 503 ServiceUnavailableException naming the region (in the request's
// protocol); a region the edge does not know is 403
// InvalidSignatureException ("Credential should be scoped to a valid
// region").
package edge
