package scaleoute2e

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/efs/types"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
	"github.com/regionfs/regionfs/test/e2e/e2ekit"
)

const replPairKey = "scale-out-e2e-pair-secret-0123456789"

// replNodeConfig is a node of a region that replicates to (or from) its
// peer. %[4]s is the region's loopback prefix, %[5]s the letter of its
// subnet, security group and key ids.
const replNodeConfig = `
region: %[1]s
account_id: "123456789012"
data_dir: %[2]s/data
metadata: "%[7]s"
blocks: "%[8]s"
cluster: {node: %[3]s, lease: 3s}
api: {listen: "%[4]s.0.1:7070"}
nfs: {port: 12049}
credentials: [{access_key_id: ` + accessKey + `, secret_access_key: ` + secretKey + `}]
subnets:
  - {id: subnet-05ca1e00000000%[5]s1, availability_zone: %[1]sa, cidr: %[4]s.1.0/24}
security_groups:
  - {id: sg-05ca1e0000000000%[5]s1, name: default, ingress: [127.0.0.0/8]}
kms_keys: [{id: 05ca1e00-0e2e-4e2e-8e2e-0e2e0e2e0e%[5]s1, aliases: [alias/aws/elasticfilesystem], key_file: %[6]s/kms.key}]
replication: {listen: "%[4]s.0.1:7443"}
peers: [{name: %[9]s, replication: "%[10]s.0.1:7443", secret: ` + replPairKey + `}]
replicate: {heartbeat: 100ms}
control: {transition_delay: 0s}
log: {level: info}
`

// replRegion is a region of two nodes on its own database and bucket.
type replRegion struct {
	name, net, letter string
	nodes             [2]*node
	efs               *efs.Client
}

// newReplRegion makes the two nodes of region name (none started); with
// spread, they run cluster.spread.
func newReplRegion(t *testing.T, bin, name, netPrefix, letter, peer, peerNet string, spread bool) *replRegion {
	t.Helper()
	metadata, blocks := backends(t)
	shared := sharedKey(t, "5e")
	r := &replRegion{name: name, net: netPrefix, letter: letter,
		efs: efs.NewFromConfig(testkit.AWSConfig("http://"+netPrefix+".0.1:7070", name, accessKey, secretKey))}
	for i, id := range []string{"node-a", "node-b"} {
		r.nodes[i] = newNodeConfig(t, bin, id, func(dir string) string {
			c := fmt.Sprintf(replNodeConfig, name, dir, id, netPrefix, letter, shared, metadata, blocks, peer, peerNet)
			if spread {
				c = strings.Replace(c, "lease: 3s}", "lease: 3s, spread: true}", 1)
			}
			return c
		})
	}
	return r
}

// start starts node-a, waits until it serves the region, then starts the
// standby node-b and waits until it says so.
func (r *replRegion) start(t *testing.T) {
	t.Helper()
	a, b := r.nodes[0], r.nodes[1]
	a.start()
	waitAPIAt(t, r.net, a)
	b.start()
	waitLog(t, b, "standby: another node owns the region")
}

// status is the replication status of fs as r describes it.
func (r *replRegion) status(ctx context.Context, fs string) (types.ReplicationStatus, string) {
	out, err := r.efs.DescribeReplicationConfigurations(ctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(fs)})
	if err != nil {
		return "", fmt.Sprintf("%s: %v", r.name, err)
	}
	if len(out.Replications) != 1 || len(out.Replications[0].Destinations) != 1 {
		return "", fmt.Sprintf("%s: %d replications", r.name, len(out.Replications))
	}
	d := out.Replications[0].Destinations[0]
	return d.Status, fmt.Sprintf("%s: %s (last sync %v) %s", r.name, d.Status, aws.ToTime(d.LastReplicatedTimestamp), aws.ToString(d.StatusMessage))
}

// mountTarget waits until fs is available and returns the address of a new
// mount target of it.
func (r *replRegion) mountTarget(t *testing.T, fs string) string {
	t.Helper()
	return e2ekit.MountTarget(t, r.efs, fs, "subnet-05ca1e00000000"+r.letter+"1", "sg-05ca1e0000000000"+r.letter+"1")
}

// replContent is file i's content: every tenth file is a whole block and
// more (it goes to the object store), the others are small.
func replContent(i int) []byte {
	if i%10 == 0 {
		return append(bigContent(i), content(i)...)
	}
	return content(i)
}

// TestReplicationResumesAfterTakeover: us-east-1 and us-west-2 each run two
// nodes on PostgreSQL and S3; a file system of us-east-1 replicates to
// us-west-2 while a client writes files through NFS. The source's owner is
// killed (kill -9): its standby takes the region over and shipping resumes
// from the cursors in the database. Then the destination's owner is
// killed: its standby takes over and apply resumes. The writer goes on
// throughout; at the end the replica is the source, byte for byte, and the
// replication is ENABLED on both sides.
func TestReplicationResumesAfterTakeover(t *testing.T) {
	replicationAcrossHandovers(t, false, func(t *testing.T, r *replRegion, _ string) *node {
		r.nodes[0].Kill9()
		return r.nodes[1]
	})
}

// TestSpreadReplicationResumesAfterTakeover: as
// TestReplicationResumesAfterTakeover with cluster.spread on in both
// regions (two nodes each; the source region also serves two file systems
// that do not replicate, one on each node). The node that owns the
// replicated source file system's domain is killed (kill -9) mid-write,
// then the node that owns the destination's: the other node of each takes
// the domain over and shipping, then apply, resume; the replica ends byte
// for byte the source and the replication stays ENABLED.
func TestSpreadReplicationResumesAfterTakeover(t *testing.T) {
	replicationAcrossHandovers(t, true, func(t *testing.T, r *replRegion, fs string) *node {
		t.Helper()
		i := servingNode(t, r, fs)
		t.Logf("%s: killing %s, which serves %s", r.name, r.nodes[i].name, fs)
		r.nodes[i].Kill9()
		return r.nodes[1-i]
	})
}

// servingNode returns the index of the node of r that serves the mount
// targets of fs now (by the nodes' logs).
func servingNode(t *testing.T, r *replRegion, fs string) int {
	t.Helper()
	at := -1
	testkit.WaitFor(t, r.name+": one node to serve "+fs, 60*time.Second, func() bool {
		at = -1
		for i, n := range r.nodes {
			var which int
			if !n.Exited() && servesOne(n, []string{fs}, &which) {
				if at >= 0 {
					return false
				}
				at = i
			}
		}
		return at >= 0
	})
	return at
}

// TestReplicationResumesAfterDrain: as TestReplicationResumesAfterTakeover,
// but the owners are drained (`regionfs cluster drain`) while the
// replication runs instead of killed: the drained source owner stops
// cleanly in the middle of shipping, the drained destination owner in the
// middle of applying, and their standbys carry on.
func TestReplicationResumesAfterDrain(t *testing.T) {
	replicationAcrossHandovers(t, false, func(t *testing.T, r *replRegion, _ string) *node {
		t.Helper()
		drain(t, r, 0)
		return r.nodes[1]
	})
}

// TestSpreadReplicationResumesAfterDrain: as
// TestSpreadReplicationResumesAfterTakeover, with the node serving the
// replicated file system drained (`regionfs cluster drain`) instead of
// killed, in the source region, then in the destination region.
func TestSpreadReplicationResumesAfterDrain(t *testing.T) {
	replicationAcrossHandovers(t, true, func(t *testing.T, r *replRegion, fs string) *node {
		t.Helper()
		i := servingNode(t, r, fs)
		t.Logf("%s: draining %s, which serves %s", r.name, r.nodes[i].name, fs)
		drain(t, r, i)
		return r.nodes[1-i]
	})
}

// drain drains node i of r and waits until it stopped cleanly.
func drain(t *testing.T, r *replRegion, i int) {
	t.Helper()
	a := r.nodes[i]
	if out, err := exec.Command(a.Args[0], "cluster", "drain", "--config", a.cfg).CombinedOutput(); err != nil {
		t.Fatalf("%s: cluster drain: %v\n%s", r.name, err, out)
	}
	if ended, err := a.Wait(60 * time.Second); !ended {
		t.Fatalf("%s: drained %s still runs after 60 s\n%s", r.name, a.name, tail(a.logText(), 40))
	} else if err != nil {
		t.Fatalf("%s: drained %s exited with %v\n%s", r.name, a.name, err, tail(a.logText(), 40))
	}
}

// replicationAcrossHandovers runs a replication from us-east-1 to
// us-west-2 (two nodes each) under a writer, hands the source region over
// (handover ends the node of r serving fs and returns the other one, which
// is to take the region over), then the destination region, and checks
// that shipping and apply resumed on the new owners and that the replica
// converges to the source, with the replication ENABLED throughout. With
// spread, the regions run cluster.spread and the source region serves two
// more file systems that do not replicate.
func replicationAcrossHandovers(t *testing.T, spread bool, handover func(t *testing.T, r *replRegion, fs string) *node) {
	bin := testkit.BuildRegionfs(t)
	src := newReplRegion(t, bin, "us-east-1", "127.174", "c", "us-west-2", "127.175", spread)
	dst := newReplRegion(t, bin, "us-west-2", "127.175", "d", "us-east-1", "127.174", spread)
	src.start(t)
	dst.start(t)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if spread {
		// Two file systems that do not replicate, spread one per node.
		for _, token := range []string{"spread-other-1", "spread-other-2"} {
			if _, err := src.efs.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(token)}); err != nil {
				t.Fatal(err)
			}
		}
		waitLog(t, src.nodes[1], "domain taken")
	}
	fs, err := src.efs.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String("takeover-replication")})
	if err != nil {
		t.Fatal(err)
	}
	srcFS := aws.ToString(fs.FileSystemId)
	sip := src.mountTarget(t, srcFS)
	rc, err := src.efs.CreateReplicationConfiguration(ctx, &efs.CreateReplicationConfigurationInput{
		SourceFileSystemId: aws.String(srcFS), Destinations: []types.DestinationToCreate{{Region: aws.String("us-west-2")}}})
	if err != nil {
		t.Fatal(err)
	}
	dstFS := aws.ToString(rc.Destinations[0].FileSystemId)
	// Both ends: the source learns that the initial sync is done from the
	// destination's acknowledgement, a moment after the replica is whole.
	testkit.Eventually(t, 60*time.Second, func() error {
		if s, msg := dst.status(ctx, dstFS); s != types.ReplicationStatusEnabled {
			return errors.New(msg)
		}
		if s, msg := src.status(ctx, srcFS); s != types.ReplicationStatusEnabled {
			return errors.New(msg)
		}
		return nil
	})
	dip := dst.mountTarget(t, dstFS)

	// The replication's status, as both regions describe it, stays ENABLED
	// throughout (a region without an owner for a moment does not answer).
	var smu sync.Mutex
	var statuses []string
	samples := 0
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			for _, r := range []struct {
				r  *replRegion
				fs string
			}{{src, srcFS}, {dst, dstFS}} {
				sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
				out, err := r.r.efs.DescribeReplicationConfigurations(sctx, &efs.DescribeReplicationConfigurationsInput{FileSystemId: aws.String(r.fs)})
				scancel()
				if err != nil {
					continue
				}
				smu.Lock()
				samples++
				if len(out.Replications) != 1 || len(out.Replications[0].Destinations) != 1 {
					statuses = append(statuses, fmt.Sprintf("%s: %d replications", r.r.name, len(out.Replications)))
				} else if d := out.Replications[0].Destinations[0]; d.Status != types.ReplicationStatusEnabled {
					statuses = append(statuses, fmt.Sprintf("%s: %s %s", r.r.name, d.Status, aws.ToString(d.StatusMessage)))
				}
				smu.Unlock()
			}
		}
	}()

	// The writer: file after file with FILE_SYNC, reconnecting to the same
	// address when the source's owner is gone.
	var written sync.Map // index → true once acknowledged
	var n int
	var nmu sync.Mutex
	acked := func() int { nmu.Lock(); defer nmu.Unlock(); return n }
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		write := func(c *conn, i int) (proto.FH, error) {
			return writeData(ctx, c, fmt.Sprintf("f%05d", i), replContent(i), 10*time.Second)
		}
		writerDone <- writeEach(ctx, sip, stop, write, func(i int, _ proto.FH, _ bool) {
			written.Store(i, true)
			nmu.Lock()
			n++
			nmu.Unlock()
		})
	}()
	waitAcked := func(want int) {
		t.Helper()
		if !testkit.Until(90*time.Second, func() bool { return acked() >= want }) {
			t.Fatalf("only %d of %d files written in 90 s", acked(), want)
		}
	}
	// replicaHas waits until the replica lists at least want files.
	replicaHas := func(want int) {
		t.Helper()
		testkit.Eventually(t, 90*time.Second, func() error {
			l, err := listingOf(ctx, dip)
			if err != nil {
				return err
			}
			if got := len(strings.Fields(l)); got < want {
				return fmt.Errorf("the replica lists %d files, want at least %d", got, want)
			}
			return nil
		})
	}

	// Replication runs before the handover.
	waitAcked(30)
	replicaHas(10)

	// The source's owner goes mid-write.
	killed := time.Now()
	survivor := handover(t, src, srcFS)
	before := acked()
	waitAcked(before + 30)
	waitLog(t, survivor, "took the region over")
	t.Logf("source takeover: writes resumed; %d files acknowledged before the owner went, %d %v later", before, acked(), time.Since(killed).Round(time.Millisecond))
	// Shipping resumed on the new owner: the replica gets files written
	// after the handover.
	replicaHas(before + 20)
	t.Logf("replica has files written after the source's takeover %v after the owner went", time.Since(killed).Round(time.Millisecond))

	// The destination's owner goes while changes arrive.
	killed = time.Now()
	survivor = handover(t, dst, dstFS)
	before = acked()
	waitAcked(before + 30)
	waitLog(t, survivor, "took the region over")
	replicaHas(before + 20)
	t.Logf("destination takeover: replica has files written after it %v after the owner went", time.Since(killed).Round(time.Millisecond))

	close(stop)
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v", err)
	}

	// The replica converges to the source, byte for byte.
	testkit.Eventually(t, 90*time.Second, func() error {
		sl, err1 := listingOf(ctx, sip)
		dl, err2 := listingOf(ctx, dip)
		if err1 == nil && err2 == nil && sl == dl {
			return nil
		}
		_, s1 := src.status(ctx, srcFS)
		_, s2 := dst.status(ctx, dstFS)
		return fmt.Errorf("replica did not converge: %v %v (%d vs %d files)\n%s\n%s", err1, err2, len(strings.Fields(sl)), len(strings.Fields(dl)), s1, s2)
	})
	files := e2ekit.CompareContents(t, ctx, sip, dip)
	written.Range(func(k, _ any) bool {
		i := k.(int)
		if h, ok := files[fmt.Sprintf("f%05d", i)]; !ok || h != sha256.Sum256(replContent(i)) {
			t.Errorf("acknowledged f%05d is not on the source as written (present: %v)", i, ok)
		}
		return true
	})
	close(stopSampling)
	<-sampled
	smu.Lock()
	if len(statuses) > 0 {
		t.Errorf("replication not ENABLED in %d of %d samples:\n%s", len(statuses), samples, strings.Join(statuses, "\n"))
	}
	t.Logf("replication status sampled %d times", samples)
	smu.Unlock()
	for _, r := range []struct {
		r  *replRegion
		fs string
	}{{src, srcFS}, {dst, dstFS}} {
		if s, msg := r.r.status(ctx, r.fs); s != types.ReplicationStatusEnabled {
			t.Errorf("replication after the takeovers: %s", msg)
		}
	}
	t.Logf("%d files (%d acknowledged) identical on the replica", len(files), acked())
}

// listingOf returns the root directory of the mount target at ip as sorted
// "name:size" lines.
func listingOf(ctx context.Context, ip string) (string, error) {
	c, err := e2ekit.Dial(ctx, ip)
	if err != nil {
		return "", err
	}
	defer c.Conn.Close()
	ents, err := c.C.ReadDirAll(ctx, c.Root)
	if err != nil {
		return "", err
	}
	var lines []string
	for _, e := range ents {
		if e.Name == "." || e.Name == ".." {
			continue
		}
		l, err := c.C.Lookup(ctx, c.Root, e.Name)
		if err != nil {
			return "", err
		}
		lines = append(lines, fmt.Sprintf("%s:%d", e.Name, l.Attr.Size))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n"), nil
}
