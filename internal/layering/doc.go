// Package layering ranks the module's packages in layers and tests that
// every import, tests' imports included, points down the ranks
// (docs/architecture.md says what each layer owns). A new
// package is placed in the table in layers.go, or the test fails.
//
// # Layers
//
// Lowest first; a package imports only packages of layers earlier in
// this list.
//
//	 0 schedules: cron-like schedules, below the config that validates them
//	     internal/cron
//	 1 sdk http: the HTTP seam of the AWS SDK clients (products' and tests'), below the test kit
//	     internal/sdkhttp
//	 2 foundation: config, server lifecycle, wire codecs, SigV4, TLS CA, disk and key seams, the block checksum, domain refusals, page tokens, log line limits, UUIDs, test kit, the race detector build flag
//	     internal/config internal/serve internal/testkit/... internal/uuid
//	     internal/pagetoken internal/race internal/loglimit internal/layering
//	     internal/refusal internal/nfs/xdr internal/api/sigv4
//	     internal/api/awsproto internal/engine/disk internal/engine/kms
//	     internal/engine/blocks/crc32c internal/nfs/tlsca
//	     internal/replication/faultproxy
//	 3 seams: the engine's storage seams, the data disk's space guard, the NFS wire types, serving on a test port and the TLS tests' CA
//	     internal/engine/kv internal/engine/blocks internal/engine/space
//	     internal/nfs/rpc internal/nfs/proto internal/serve/servetest
//	     internal/nfs/tlsca/tlscatest
//	 4 backends: seam implementations and conformance suites, test keyrings, the NFS client
//	     internal/engine/kv/... internal/engine/blocks/...
//	     internal/engine/kms/kmstest internal/nfs/client
//	 5 engine: file systems, journal, snapshots, clones; no NFS, HTTP or AWS
//	     internal/engine
//	 6 domain: control plane, monitoring, stacks: AWS's rules, not its wire formats; and replication: journal shipping between regions, promotion, fencing, no AWS (neither imports the other); the engine's test checks
//	     internal/control internal/control/keys internal/control/network
//	     internal/monitor/... internal/cfn internal/replication
//	     internal/engine/enginetest
//	 7 over control: EFS replication configurations (the control plane over the replication node), control's test fakes; the cluster: a region's file systems and their mount targets spread over the nodes sharing its stores
//	     internal/control/replconf internal/control/controltest
//	     internal/cluster
//	 8 dr operations: disaster-recovery drills over the control plane, replication configurations, the NFS client and schedules
//	     internal/drill
//	 9 aws errors: domain errors to AWS codes, statuses and wire shapes (and CloudFormation's handler codes)
//	     internal/api/awserr
//	10 stack resources: CloudFormation's resource types over the domain
//	     internal/cfn/resources
//	11 api server: a region's HTTP API server: SigV4, dispatch by service
//	     internal/api/region
//	12 edge: the one client endpoint, forwarding to the regions
//	     internal/api/edge
//	13 protocols: NFS data plane, one package per AWS service
//	     internal/nfs internal/api/...
//	14 mount client: regionfs mount: FUSE over the NFS client (its tests run the NFS server)
//	     internal/fuse/...
//	15 harness kits: what the benchmark harnesses and the end-to-end tests share (processes, the nfs-ganesha baseline, NFS and EFS helpers)
//	     bench/internal/... test/e2e/e2ekit
//	16 commands: the binary, benchmarks and end-to-end tests: wiring
//	     cmd/... bench/... test/...
//
// # Exceptions
//
//   - internal/api/region → internal/api/ec2: region's tests put a real EC2 handler behind the server (its code no longer imports ec2)
package layering
