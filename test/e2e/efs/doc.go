// Package efse2e holds the end-to-end tests of the EFS control plane with
// clients nobody here wrote: the aws CLI and boto3 drive a real `regionfs
// serve` process (after sourcing an env file, as a user would after
// `regionfs dev`), and libnfs's nfs-cp/nfs-cat read and write through its
// mount targets. Each test gets its own loopback range and ports, so it
// runs beside the `regionfs dev` tests.
package efse2e
