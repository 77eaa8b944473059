// Package replication ships file-system journals between regions and
// applies them to replicas: initial sync from snapshots, steady-state
// streaming, heartbeats and lag, acknowledgements that move the source's
// journal pin, failover (promotion at a transaction boundary) and the
// authenticated transport that the control planes of two regions use to
// coordinate.
//
// # Transport
//
// A region's Node serves HTTP/2 and HTTP/1.1 (cleartext on loopback, TLS
// with optional client certificates in production). Every replication has
// one long-lived stream from its source to its destination: GET
// /replication/v1/stream?id=… on an HTTP/1.1 connection of its own with
// Connection: Upgrade, Upgrade: regionfs-stream/1; the destination answers
// 101 and from then on the connection carries the frames below both ways
// as a plain byte stream (inside TLS when the link uses it), written from
// and read into the frames' own buffers. A destination that does not
// upgrade (an older version answers the GET 405) gets the stream as POST
// /replication/v1/stream?id=… over HTTP/2, frames in the request and
// response bodies, and is asked again after a few minutes. (Over HTTP/2 a
// replicated byte was copied into and out of net/http's buffers and an
// io.Pipe on each side and waited for its flow-control windows: ~0.4 CPU-s
// per replicated GiB of the two regions', bench/replication repl12.) So
// streams no longer share one connection per region pair, as DESIGN §9
// has them: each has its own TCP (and TLS) connection, one per
// replication, and the unary calls share the pair's HTTP/2 connection.
// Unary calls between control planes use POST /replication/v1/call/<method>
// with JSON bodies.
//
// Peers prove they hold the pair's secret: a stream's request carries the
// source region, a fresh nonce, the time and an HMAC over them; the reply
// carries the destination's nonce and an HMAC over both; every frame after
// that is authenticated (keyed BLAKE3, under a key derived from the secret
// and both nonces) and numbered,
// so a damaged, forged, reordered or replayed frame ends the stream before
// anything in it is applied. Unary calls carry an HMAC over the method,
// path, time, nonce and body hash, and nonces are remembered.
//
// # Lifecycle
//
// A Node has two lifetimes. Its endpoint has package serve's, the one of
// every regionfs server (net/http's): Serve(ctx, ln) answers peers until
// Shutdown, which closes the open inbound streams. The node itself — its
// outbound streams, replicas, pins, journal retention and saved progress —
// lives from New (with Start for the background work) to Close, which
// stops every stream and saves where each stood. The two are not folded
// into one: one node serves several listeners in turn (a regional outage,
// Suspend then Shutdown, and the way back, Resume and a new Serve, keep the
// replications and their pins); a command shuts the endpoint down first
// and closes the node after it (cmd/regionfs's replicationPlane).
//
// # Frames (wire version 1)
//
//	length (4, big-endian: type ‖ counter ‖ payload) ‖ type (1) ‖ counter (8) ‖ payload ‖ keyed BLAKE3[:16]
//
// Payloads are uvarints and length-prefixed byte strings:
//
//	records   n ‖ n × engine record (its own versioned, CRC-checked form)
//	blocks    header length (4) ‖ n ‖ n × (id ‖ length) ‖ the data, concatenated;
//	          the MAC covers the header, each block is verified by its id
//	          (keyed BLAKE3 under the lineage's secret id key)
//	blocks+   (type 10, to destinations that answer the stream with
//	          X-Regionfs-Features: block-sums) the same with n × (id ‖ length ‖
//	          CRC-32C of id ‖ data) in the header: over an authenticated
//	          channel (TLS, or loopback at both ends) the destination checks
//	          the CRC instead of the keyed hash (receiver.putBlock,
//	          docs/design.md §6)
//	chunk     seq ‖ epoch ‖ time ‖ lo ‖ has-hi ‖ hi ‖ n ‖ n × (key ‖ value)
//	chunk+    (type 11, to destinations that answer the stream with
//	          X-Regionfs-Features: chunk-sums, which they do only over an
//	          authenticated channel) header length (4) ‖ seq ‖ … ‖ n ‖
//	          CRC-32C of the pairs (4) ‖ n × (key ‖ value); the MAC covers
//	          the header, the destination checks the CRC (docs/design.md §6)
//	heartbeat durable seq ‖ time (read before the durable seq) ‖ epoch
//	ack       applied epoch ‖ applied seq ‖ applied time ‖ synced time ‖
//	          syncing ‖ sync base ‖ cursor ‖ rewind ‖ missing ids ‖ fatal ‖
//	          resync ‖ fork ‖ need ‖ differ [‖ echo: to sources whose request
//	          says X-Regionfs-Features: lease-echo, answered with the same]
//
// # Protocol
//
// The destination answers a new stream with an ack of its durable state,
// and says its store's format in X-Regionfs-Store-Format: a source ships
// nothing to a destination older than engine.ReplicaFormat (or that does
// not say it), whose release could not read the records it ships; the
// replication shows ERROR ("upgrade the destination region first") until
// the destination is upgraded.
// A fresh replica gets an initial sync: chunks of the source's replicated
// keys in key order, each from a snapshot at the durable mark (a new
// snapshot every few seconds, so none is held for long); the source's
// journal is pinned from the first snapshot's seq on, and the replica
// replays every record after it, so it converges and is consistent from
// the last chunk's seq on (engine.Replica.Ingest). Then the source streams
// durable records from the replica's applied seq on, pushing the blocks
// they reference first (a recently-pushed set avoids resending), and a
// heartbeat every 100 ms. The destination applies whole transactions,
// many per commit, its applied point in the same batch, and acks after
// each commit and heartbeat. When it lacks a block or sees a gap it asks
// for a rewind (with the missing ids); the source pushes them and resends
// from the applied point. Acks move the source's journal pin; a
// destination that falls further behind than the retention limits loses
// its pin and needs a resync. So does one that now holds less than it had
// acknowledged (restored from an older copy): the blocks the records it
// lacks reference may have been collected since the pin moved past them,
// so the source resyncs it (by range checksums) instead of replaying.
//
// The heartbeats go out from a goroutine of their own, between two frames
// of the shipping loop, and acks are taken as they arrive, whatever the
// loop is doing. With hard fencing (Options.Lease) each ack renews the
// lease from the source's own reading of the time it echoes, frames are
// at most 1 MiB, and the source holds frames back while the echoes fall
// behind its sending (by an eighth of the lease, or that much of the link
// as the echoes show it delivered): a heartbeat queued behind seconds of
// buffered data would renew the lease too late on a saturated link.
//
// LastReplicated is the source time of the newest heartbeat whose durable
// seq the replica has applied: everything the source committed before
// that time is on the replica.
package replication
