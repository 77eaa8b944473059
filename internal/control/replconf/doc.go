// Package replconf is the EFS replication-configuration domain of a
// region: CreateReplicationConfiguration in the source region creates (or
// adopts) the destination through the destination region and starts
// shipping; both regions describe the configuration;
// DeleteReplicationConfiguration in either region ends it, the
// destination promoted (failover) and both ends forgetting it; planned
// and forced failovers, the loss report of a failover, failback into the
// original (keeping a copy of anything only it held). It works over the
// region's file systems (package control) and its replication endpoint
// (package replication's Node, through the Node interface); the two
// regions' managers coordinate through the node's unary calls (peer.go).
// Package api/efsrepl serves it; replication itself knows nothing of it
// and nothing of AWS.
//
// # Keys (under 'r' of the server's store; values are JSON)
//
//	'r' 'c' role id    configuration, at this end (role 's' source, 'd' destination)
//	'r' 't' role id    tombstone: this region's end of a configuration it deleted, and why
//	                   (the promotion a source learns of, the loss report)
//
// # Crashes
//
// Each multi-step operation ends, after a crash at any step, either as if
// it had not begun or completed by the next start (Open). A failover
// writes the promotion into the configuration (Config.Promoted) as soon
// as the replica is promoted; Open completes a failover whose replica is
// promoted (from that record, or from the engine's when the process ended
// before it): protection, tombstone (Tombstone.Unanswered: a repeated
// delete gets the same recovery point), the configuration deleted; the
// source learns of it at its next contact. A failover that completed but
// whose answer was lost (the process killed before the reply) is
// answered from its tombstone too: a repeated delete with AWS's
// ReplicationNotFound naming the failover and its recovery point, a
// repeated regionfs failover with that recovery point (Manager.Failover).
// A replication is never resumed into a promoted file system. A planned failover records its intent
// before it fences the source and its point of no return before it asks
// the destination to promote itself: Open undoes one stopped before that
// point (the source writable again) and completes one stopped after it
// (asking the destination again until it answers; the source fenced
// meanwhile). A creation that adopts an existing file system records the
// configuration (Config.Adopting) before it touches the file system: a
// start drops it if the file system is untouched and finishes it if the
// file system is a replica now. A creation that makes a new replica
// records the configuration (Config.Creating) before it: a start drops it
// if the replica was not made and finishes it if it was (never a replica
// that no configuration names). An adoption that fails after the file
// system became a replica keeps its configuration (Adopting); the
// source's retry of the creation finishes it and starts receiving.
//
// # Failover and fencing
//
// A failover's promotion runs outside the manager's lock, under a claim
// of its configuration (Manager.promoting) that keeps any other
// promotion, completion or resumption of it out, so that a promotion
// waiting for the source's lease blocks no other call. A promotion the
// source took no part in (made in the destination region while the
// source was out of reach, or automatically) fences the source however
// it learns of it: its stream's refusal, the destination's call, or the
// answer to its own DeleteReplicationConfiguration (deleteResp.Gone);
// only a delete the source asked for (or was told of in time) leaves
// both file systems writable. A tombstone answers only the
// configuration's source region.
//
// # Errors
//
// Refusals are *control.Error of control's sentinels (ErrReplicationNotFound,
// ErrConflict, ErrValidation, ErrFileSystemNotFound, …), with a public
// message; a refusal of the other region comes back as the same error.
package replconf
