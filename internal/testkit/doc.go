// Package testkit is what the tests of every package share, so that each
// rule of the test suite is written once:
//
//   - NeedTool and NeedPython: a test that drives an external program (the
//     aws CLI, boto3, libnfs-utils) skips with a message when it is missing,
//     except under REGIONFS_REQUIRE_TOOLS=1 (set by .ci/run), where a
//     missing tool fails the test, so CI never passes by skipping.
//   - Main: a package's TestMain that fails the package when goroutines its
//     tests started are still running after them.
//   - WaitFor and Eventually: poll a condition with a deadline, never a
//     bare sleep.
//   - Repeat: a load or checker a test runs in a goroutine beside what
//     it tests, until stopped or failed.
//   - AWSConfig: an aws-sdk-go-v2 configuration for a test endpoint (static
//     credentials, no retries), for any service client's NewFromConfig.
//   - Clock: a settable clock for code that takes a func() time.Time.
//   - PairedRegion: the config of one region of a two-region end-to-end
//     test (its own ids, one peer).
//   - Process and BuildRegionfs: a server binary a test runs (log file,
//     ready when its URL answers, SIGTERM or kill -9, the log's tail) and
//     the module's regionfs built for it.
//   - RawSyscalls: the raw system calls of the package under test, for the
//     guards that check none of them can block.
//   - OpenFiles: the process's open descriptors of files under a
//     directory, and how many of those files were deleted.
//   - docshape (a subpackage): a program's output compared with what a
//     document shows of it, by shape.
//
// It is imported by tests only, and imports nothing of this module but the
// leaf sdkhttp (the SDK clients' HTTP seam, which imports nothing of it), so
// the tests of every layer may use it.
package testkit
