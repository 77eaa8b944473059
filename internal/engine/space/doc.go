// Package space keeps a server's data disk usable when it fills up, so
// that a full disk never loses an acknowledged write, never stops a
// restart and never blocks the deletions that free space.
//
// A Guard watches the file system holding the data directory (statfs
// through the disk seam) and keeps two things:
//
//   - A free-space floor (MinFreeBytes). Writes that grow what the server
//     stores (file data, new files and directories, replica apply, new
//     file systems and control-plane objects) are admitted (Admit) only
//     while the disk keeps at least the floor free; below it they fail
//     with ErrLow, which the engine answers as ErrNoSpace (NFS3ERR_NOSPC,
//     an AWS InsufficientThroughputCapacity error). Removals, truncations,
//     renames, attribute changes, deletions of file systems and
//     control-plane objects, and the engine's and metadata store's own
//     work (journal, compactions, control records) are not asked: the floor
//     is the space they run in. The server's own small bookkeeping that
//     must go on when the disk is full (alarm state and history, alarm
//     notifications and their delivery state) asks CheckInternal, which
//     admits it down to half the floor: an alarm that should say the disk
//     is full can still change state and notify, and the lower half stays
//     for the stores.
//   - A reserve file (DataDir/reserved-space, ReserveBytes), allocated
//     while the disk has room. It is given back when the floor is gone
//     anyway — at start-up (a restart after a crash on a full disk: the
//     metadata store needs room to replay its log), or when something else
//     fills the disk — so that the metadata store can work and deletions
//     can run; it is allocated again once the disk has the floor and the
//     reserve free.
//
// The guard re-reads statfs at most every RefreshInterval (and after every
// RefreshBytes admitted in between), so admission costs a mutex, not a
// system call. Its state is exported as Prometheus gauges
// (regionfs_disk_*) and by Status for `regionfs status`.
package space
