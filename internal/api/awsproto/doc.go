// Package awsproto speaks the AWS wire protocols that regionfs serves:
// it recognises a request's protocol (Detect, Operation), decodes RPC
// requests (awsQuery and ec2Query parameters, awsJson1_0/1_1 bodies,
// Smithy RPC v2 CBOR bodies, gzip-compressed or not) into Go structs, and
// encodes results as query XML, JSON 1.x or CBOR (WriteResult). Errors
// are package awserr's.
//
// All three decoders produce the same protocol-neutral value (see
// value.go), which Unmarshal stores into a request struct whose fields
// are named like the AWS members (json tags); Marshal turns a result
// struct into a value the encoders write, so one handler serves every
// protocol of a service:
//
//	var in getMetricStatisticsInput
//	if err := awsproto.Decode(p, r, body, &in); err != nil { … } // *DecodeError
//	…
//	awsproto.WriteResult(w, p, awsproto.Monitoring, "GetMetricStatistics", &out, reqID)
//
// Timestamps are time.Time (ISO 8601 in query/XML, epoch seconds in JSON,
// tag 1 in CBOR), blobs []byte, doubles float64 and integers int/int64
// (CBOR keeps them apart, as the Go SDK requires). Decoders bound what a
// hostile request can make them allocate.
package awsproto
