// Package deploy tests the deployment files and docs/production.md
// (`go test ./test/deploy`):
//
//   - the systemd units verify (systemd-analyze verify) and their
//     exposure (systemd-analyze security --offline) stays low;
//   - the Dockerfile, without a container runtime: lint rules, its build
//     stage's commands run outside a container, the image's command line;
//     dockerfile-utils lint where installed;
//   - the compose file validates (docker-compose config) and its configs and
//     keygen step work;
//   - two regions on two "hosts": network namespaces joined by a veth pair
//     with addresses from 198.18.0.0/15, each running the systemd unit's
//     command line as an unprivileged user with the capability the unit
//     grants, the configs of docs/production.md and secrets from regionfs
//     keygen; a client in one namespace creates a file system and a mount
//     target through the edge, writes over NFS, replicates to the other
//     region and reads the replica there.
//
// The namespace test needs root and iproute2 (CI runs as root); like the
// tools of other tests, a missing one skips it, except under
// REGIONFS_REQUIRE_TOOLS=1.
package deploy
