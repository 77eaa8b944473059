// Package sdkhttp is the HTTP client seam of regionfs's aws-sdk-go-v2
// clients (the S3 blocks store's, the tests'): CopyBodies sends each
// request with an in-memory copy of its body, which takes out a race
// between the SDK and net/http that costs a connection or fails a call.
//
// The race: the SDK closes its request body as soon as the response
// headers arrive, and net/http's connection writer may not be done with
// that body yet. Once the last body byte is on the wire the server may
// answer; if the writer goroutine is descheduled before its final read of
// the body (it checks that no bytes follow Content-Length), it reads the
// closed body, whose WriteTo answers io.EOF (smithy-go's safeReadCloser,
// v1.28.11 and before). net/http takes that for a failed write and closes
// the connection while the caller is reading the response: "StatusCode:
// 200, … use of closed network connection" (aws/aws-sdk-go-v2#1825,
// #2737), or at least a kept-alive connection lost and a new one dialled
// for the next request. Only calls with a request body whose answer has a
// body are exposed (S3's CompleteMultipartUpload, not PutObject: net/http
// hands a bodiless answer over only once the request is written). The SDK's
// retryer hides the failures by retrying the call; a single-attempt client
// (the tests', the S3 blocks store's, which retries by itself) sees them.
//
// With the copy, net/http writes the headers and the body from its buffer
// after it has read that copy to its end, and the body the SDK closes is
// not the one it reads. Bodies of unknown length (event streams) are
// passed through.
//
// Its guard, TestSDKHTTPClientBodyClosedEarly, is in testkit (whose
// SDKHTTPClient is CopyBodies over the SDK's default client), beside the
// connection that holds net/http's writer.
package sdkhttp
