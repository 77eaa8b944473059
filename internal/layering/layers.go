package layering

import "strings"

// module is the module's import path, with the trailing slash.
const module = "github.com/regionfs/regionfs/"

// layer is one rank of the module's packages.
type layer struct {
	name string
	// job says what the layer is for (one line, in the package doc).
	job string
	// packages are import paths relative to the module: "x" is that
	// package, "x/..." is x and every package below it. The longest
	// pattern that matches a package places it.
	packages []string
}

// layers are the module's ranks, lowest first. A package imports only
// packages of lower layers; its tests may also import test helpers
// (packages named …test, and testkit) of its own layer or below, and its
// own helper subpackages.
var layers = []layer{
	{"schedules", "cron-like schedules, below the config that validates them",
		[]string{"internal/cron"}},
	{"sdk http", "the HTTP seam of the AWS SDK clients (products' and tests'), below the test kit",
		[]string{"internal/sdkhttp"}},
	{"foundation", "config, server lifecycle, wire codecs, SigV4, TLS CA, disk and key seams, the block checksum, domain refusals, page tokens, log line limits, UUIDs, test kit, the race detector build flag",
		[]string{"internal/config", "internal/serve", "internal/testkit/...", "internal/uuid", "internal/pagetoken", "internal/race", "internal/loglimit", "internal/layering", "internal/refusal", "internal/nfs/xdr", "internal/api/sigv4", "internal/api/awsproto",
			"internal/engine/disk", "internal/engine/kms", "internal/engine/blocks/crc32c", "internal/nfs/tlsca", "internal/replication/faultproxy"}},
	{"seams", "the engine's storage seams, the data disk's space guard, the NFS wire types, serving on a test port and the TLS tests' CA",
		[]string{"internal/engine/kv", "internal/engine/blocks", "internal/engine/space", "internal/nfs/rpc", "internal/nfs/proto", "internal/serve/servetest", "internal/nfs/tlsca/tlscatest"}},
	{"backends", "seam implementations and conformance suites, test keyrings, the NFS client",
		[]string{"internal/engine/kv/...", "internal/engine/blocks/...", "internal/engine/kms/kmstest", "internal/nfs/client"}},
	{"engine", "file systems, journal, snapshots, clones; no NFS, HTTP or AWS",
		[]string{"internal/engine"}},
	{"domain", "control plane, monitoring, stacks: AWS's rules, not its wire formats; and replication: journal shipping between regions, promotion, fencing, no AWS (neither imports the other); the engine's test checks",
		[]string{"internal/control", "internal/control/keys", "internal/control/network", "internal/monitor/...", "internal/cfn", "internal/replication", "internal/engine/enginetest"}},
	{"over control", "EFS replication configurations (the control plane over the replication node), control's test fakes; the cluster: a region's file systems and their mount targets spread over the nodes sharing its stores",
		[]string{"internal/control/replconf", "internal/control/controltest", "internal/cluster"}},
	{"dr operations", "disaster-recovery drills over the control plane, replication configurations, the NFS client and schedules",
		[]string{"internal/drill"}},
	{"aws errors", "domain errors to AWS codes, statuses and wire shapes (and CloudFormation's handler codes)",
		[]string{"internal/api/awserr"}},
	{"stack resources", "CloudFormation's resource types over the domain",
		[]string{"internal/cfn/resources"}},
	{"api server", "a region's HTTP API server: SigV4, dispatch by service",
		[]string{"internal/api/region"}},
	{"edge", "the one client endpoint, forwarding to the regions",
		[]string{"internal/api/edge"}},
	{"protocols", "NFS data plane, one package per AWS service",
		[]string{"internal/nfs", "internal/api/..."}},
	{"mount client", "regionfs mount: FUSE over the NFS client (its tests run the NFS server)",
		[]string{"internal/fuse/..."}},
	{"harness kits", "what the benchmark harnesses and the end-to-end tests share (processes, the nfs-ganesha baseline, NFS and EFS helpers)",
		[]string{"bench/internal/...", "test/e2e/e2ekit"}},
	{"commands", "the binary, benchmarks and end-to-end tests: wiring",
		[]string{"cmd/...", "bench/...", "test/..."}},
}

// exceptions are imports allowed against the ranks, each with the reason
// and what removes it.
var exceptions = map[string]string{
	"internal/api/region → internal/api/ec2": "region's tests put a real EC2 handler behind the server (its code no longer imports ec2)",
}

// rankOf returns the layer index of a package (relative to the module),
// or -1 when no layer names it.
func rankOf(pkg string) int {
	best, bestLen := -1, -1
	for i, l := range layers {
		for _, p := range l.packages {
			n := len(p)
			base, tree := strings.CutSuffix(p, "/...")
			if !(pkg == base || tree && strings.HasPrefix(pkg, base+"/")) {
				continue
			}
			if tree {
				n -= len("/...") // an exact name beats its own tree
			}
			if n > bestLen {
				best, bestLen = i, n
			}
		}
	}
	return best
}
