// Package rpc is ONC RPC version 2 (RFC 5531) as regionfs's NFS server and
// client use it over TCP: record marking (fragments, a maximum record size),
// call and reply headers, and the AUTH_NONE and AUTH_UNIX (AUTH_SYS)
// credential flavors.
//
// A record is a sequence of fragments, each preceded by a four-byte header
// whose top bit marks the last fragment and whose low 31 bits give the
// fragment's length. ReadRecord refuses a record whose total length exceeds
// the caller's maximum before reading (or allocating) it, so a client
// announcing a 2 GiB record costs nothing but a closed connection.
//
// Over TLS (RFC 9289) BatchConn and RecordWriter put the TLS records of
// one RPC record on the wire together, and after crypto/tls's TLS 1.3
// handshake TLSWriter and TLSReader seal and open the records themselves,
// straight from and into the callers' buffers (tlsread.go), with the
// traffic secrets TakeOver takes from the handshake's key log (tlskey.go;
// both or neither, and crypto/tls never writes again), moving to the next
// secret by KeyUpdate every 2^23 records and when the peer asks.
// TLSWriter.WriteRecord seals a server's replies outside the
// connection's lock, several at once, and writes them in the order their
// sequence numbers were reserved (tlsseal.go).
//
// Decoders return errors wrapping ErrGarbage (the server answers
// GARBAGE_ARGS or closes the connection), ErrRPCVersion (RPC_MISMATCH) or
// ErrBadCred (AUTH_ERROR), and never panic.
package rpc
