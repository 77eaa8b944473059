// Package cluster spreads the file systems of a region over the nodes that
// share its metadata store (PostgreSQL, pgkv) and its object store.
//
// The unit of ownership is a domain (a file system and its clones, which
// share blocks). Each domain has a lease in the database, LeaseName(dom),
// with a fencing token: a node's engine (engine.Options.Shared) commits the
// keys of a domain only under the token of its lease, checked in the
// commit's own transaction (FenceKey), so two nodes never both write one
// file system, and a paused old owner cannot write after a takeover. Keys of
// the whole region (id counters, the control plane's records) are fenced by
// the region's lease, which the node running the control plane holds.
//
// A Manager runs on every node. Every third of the lease time it renews the
// node's leases and sends its heartbeat (one round trip), learns which
// domains it lost, and balances: with L live nodes that are not drained and
// D domains, a node holds at most ceil(D/L); it takes free or expired
// leases (a dead node's: within the lease time plus one round) up to that
// share and gives up what exceeds it, so a node that joins gets its share
// and a drained node gives everything up once another node can take it.
// Taking a domain attaches it in the engine (its file systems open here),
// giving it up detaches it first and then releases the lease, so the next
// owner finds it cleanly detached. OnChange tells the node which domains it
// serves, for its mount targets.
//
// Some domains are pinned to the leader, the node holding the region's
// lease (Options.Leader, Options.Pinned: in regionfs, those of the file
// systems that replicate, whose shipping and apply run with the region's
// replication endpoint on the leader). The leader takes them, reserving
// (pgkv Reserve) those another node holds, which hands them over at its
// next round; the other nodes take none of them; they do not count in the
// shares. Pull brings one domain to the leader at once (a replication
// being set up); Settle runs rounds until the leader holds every pinned
// domain (a new leader, before its replication starts).
//
// Mount targets follow their file system's owner: the control plane runs
// on the node holding the region's lease and starts, updates and stops
// mount targets through Targets, which records each in the store ('t'
// mount-target-id → JSON spec, fenced by the region's lease) and serves it
// on the node only when the node serves the file system; every node's
// Targets.Follow (after each round) serves the recorded mount targets of
// the file systems it serves and stops the others. On one machine every
// mount target has its own loopback address, so nodes serve different
// file systems side by side and a new owner binds the address its
// predecessor held; on a network the address moves with a floating IP or
// DNS.
//
// Block deletion is not fenced by the database: the engine deletes a
// domain's blocks only while Valid reports that the lease has surely not
// run out (the send time of its last renewal plus the lease time, less a
// tenth for clock rate differences).
//
// Without spreading, a region is owned by one node at a time: RegionLease
// is that ownership (a standby waits in AcquireRegionLease, the owner
// renews it, is fenced by its token, and hands it over when drained or
// stopped). With spreading, the holder of the same lease is the leader.
package cluster
