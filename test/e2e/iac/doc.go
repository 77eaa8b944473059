// Package iace2e runs two `regionfs serve` processes on a loopback range
// of its own (127.71, 127.72) and drives KMS, CloudFormation, EFS and
// replication with the aws CLI and NFS with libnfs, as a team that
// declares its DR as code and brings its own keys would: a key made with
// `aws kms create-key` and `create-alias` encrypts a replication
// destination named by its alias, a disabled or deleted key stops the
// file systems it encrypts with clear errors (never garbled data), and
// the seed's CloudFormation template deploys a replicating file system
// with a working mount target.
package iace2e
