// Package faults is regionfs's fault-injection suite (issue 9): it runs
// real `regionfs serve` processes, each on its own loopback range and
// ephemeral ports (no shared port lock needed), and reproduces the
// failures a storage service meets in production, asserting what
// regionfs guarantees through them:
//
//   - a data disk that fills up (a small tmpfs, filled by the test as
//     another process would): no acknowledged write is lost, a COMMIT
//     retried by the client never reports lost data stable, UNSTABLE
//     writes fail with NFS3ERR_NOSPC at once, deletions work, writes
//     resume on their own when space returns (fulldisk_test.go);
//   - a restart on a full disk (kill -9, then the disk filled to the last
//     byte): the region serves reads and the API within 10 s, refuses
//     writes with NFS3ERR_NOSPC and InsufficientThroughputCapacity, and
//     lets the operator delete;
//   - clients that do not read their replies: another client's p99
//     latency stays under 100 ms (overload_test.go);
//   - a flood of connections sending most of a large record and stopping:
//     the server's memory stays within its request budget and is given
//     back (the figures are printed);
//   - unclean API paths and access point paths with NUL (api_test.go).
//
// The suite needs root (it mounts tmpfs) and takes a few minutes, so it
// runs only with REGIONFS_FAULTS=1 (.ci/run sets it, as root); without
// root it skips with a message, or fails under REGIONFS_REQUIRE_TOOLS=1.
package faults
