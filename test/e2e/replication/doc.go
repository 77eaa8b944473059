// Package replicatione2e runs two `regionfs serve` processes with a fault
// proxy between them and checks, with an NFS client, that the replica is
// always exactly the source after some prefix of the source's changes.
package replicatione2e
