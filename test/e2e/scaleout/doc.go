// Package scaleoute2e runs several `regionfs serve` nodes of one region on
// a shared PostgreSQL database and S3 bucket (REGIONFS_TEST_POSTGRES_URL,
// REGIONFS_TEST_S3_URL: scripts/backends.sh up DIR starts both) and checks
// takeovers with a real NFS client. The nodes use loopback addresses of
// their own (127.173.0.0/16; the two regions of
// TestReplicationResumesAfterTakeover 127.174.0.0/16 and 127.175.0.0/16),
// not the standard ones.
package scaleoute2e
