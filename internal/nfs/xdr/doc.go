// Package xdr is the External Data Representation of RFC 4506 as the NFS
// stack uses it: big-endian 32- and 64-bit integers, booleans, fixed and
// variable-length opaque data and strings, each padded to a multiple of four
// bytes.
//
// An Encoder appends to a byte slice. A Decoder reads from one and keeps the
// first error (sticky): after a short or malformed input every later read
// returns a zero value and Err reports ErrShort or ErrTooLong, so decoders
// can read a whole structure and check once. Decoding never panics and never
// allocates more than the input holds: a length prefix larger than the bytes
// left fails before any allocation.
package xdr
