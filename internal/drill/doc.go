// Package drill runs disaster-recovery drills that never stop replication.
//
// A drill runs in the destination region of a replication. It measures, at
// the same time:
//
//   - RPO now: a canary transaction is committed on the source (through the
//     source region's replication endpoint) and timed until the replica has
//     applied it. It travels the path every change travels (journal,
//     shipping, ordered apply), so the time is the data a failover at this
//     instant would lose. When the source region does not answer, the drill
//     says so and gives the age of the replica's recovery point instead.
//   - RTO: from the start of the drill to the first acknowledged NFS write
//     on a writable clone of the replica (control.CloneFileSystem: the
//     replica's current consistent prefix, sharing its blocks) through a new
//     mount target in a chosen subnet. This is the path a failover takes
//     (a writable file system at the recovery point, reachable over NFS),
//     without touching the replica: it stays read-only and keeps applying
//     the source's changes; the drill samples its lag and applied seq all
//     along and reports both.
//
// Then a check runs against the clone (the caller's, reported back through
// the API while the drill holds the clone, or the command of a scheduled
// drill, with REGIONFS_DRILL_* in its environment), the objectives (maximum
// RPO and RTO) are compared, and the clone and its mount target are deleted
// unless the drill keeps them. Every step is on the drill's timeline.
//
// Scheduled drills (cron-like) come from the region's configuration. Each
// finished drill updates Prometheus gauges (a failed drill sets
// regionfs_drill_failed, which alerts can watch), goes to the Publisher
// (CloudWatch metrics in the regionfs/Drill namespace, an SNS
// notification) and into the history.
//
// # Keys (under 'd' of the server's store; values are JSON)
//
//	'd' 'r' drill id    a drill (its record, updated at each step)
//
// A drill interrupted by a restart is marked FAILED when the region opens
// again, and its clone is deleted unless it was to be kept; clones tagged
// regionfs:drill whose drill does not know them (a crash between creating
// the clone and recording it) are deleted too.
package drill
