package scaleoute2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/efs"

	"github.com/regionfs/regionfs/internal/engine/kv/pgkv"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
	"github.com/regionfs/regionfs/test/e2e/e2ekit"
)

// spreadNodes is regionNodes with cluster.spread on: the region's file
// systems spread over the nodes.
func spreadNodes(t *testing.T, key string, names ...string) []*node {
	t.Helper()
	metadata, blocks := backends(t)
	return spreadNodesOn(t, metadata, blocks, key, names...)
}

// spreadNodesOn is spreadNodes on the given backends.
func spreadNodesOn(t *testing.T, metadata, blocks, key string, names ...string) []*node {
	t.Helper()
	bin := testkit.BuildRegionfs(t)
	shared := sharedKey(t, key)
	var nodes []*node
	for _, name := range names {
		nodes = append(nodes, newNodeConfig(t, bin, name, func(dir string) string {
			return strings.Replace(fmt.Sprintf(nodeConfig, dir, metadata, blocks, name, shared), "lease: 3s}", "lease: 3s, spread: true}", 1)
		}))
	}
	return nodes
}

// TestSpreadKill9: two nodes serve two file systems at once, one each,
// with clients writing to both; the node that is not the leader is killed
// (kill -9) mid-write; the other takes its file system over, binds its
// mount target's address, and the client carries on there with every
// acknowledged write and every handle it held; the other file system's
// client never stops.
func TestSpreadKill9(t *testing.T) {
	nodes := spreadNodes(t, "5d", "node-a", "node-b")
	a, b := nodes[0], nodes[1]
	a.start()
	waitAPI(t, a)
	b.start()
	c := efsClient()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var ids, ips []string
	for _, token := range []string{"spread-1", "spread-2"} {
		fs, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(token)})
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(fs.FileSystemId)
		ids = append(ids, id)
		ips = append(ips, e2ekit.MountTarget(t, c, id, "subnet-05ca1e00000000a1", "sg-05ca1e0000000000a1"))
	}
	// One file system each: node-b serves one mount target.
	onB := -1
	testkit.WaitFor(t, "node-b to serve a mount target", 60*time.Second, func() bool {
		return servesOne(b, ids, &onB)
	})
	onA := 1 - onB
	var aServes int
	if !servesOne(a, ids, &aServes) || aServes != onA {
		t.Fatalf("node-a does not serve %s alone:\n%s", ids[onA], tail(a.logText(), 60))
	}
	t.Logf("node-a serves %s (%s), node-b %s (%s)", ids[onA], ips[onA], ids[onB], ips[onB])

	acks := []*acked{{files: map[int]proto.FH{}}, {files: map[int]proto.FH{}}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range ips {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = writeFiles(ctx, ips[i], stop, func(n int, fh proto.FH, _ bool) { acks[i].add(n, fh) })
		}()
	}
	waitFiles(t, acks[0], 20)
	waitFiles(t, acks[1], 20)
	killedAt := time.Now()
	b.Kill9()
	before := count(acks[onB])
	waitFiles(t, acks[onB], before+20)
	resumed := time.Since(killedAt)
	waitFiles(t, acks[onA], count(acks[onA])+20)
	close(stop)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer of %s: %v\nnode-a log:\n%s", ids[i], err, tail(a.logText(), 60))
		}
	}
	t.Logf("%s: 20 more acknowledged writes %v after kill -9 of its node (lease 3s); %d files before, %d in all",
		ids[onB], resumed.Round(time.Millisecond), before, count(acks[onB]))
	if !strings.Contains(a.logText(), "domain taken") {
		t.Fatalf("node-a did not take the domain over:\n%s", tail(a.logText(), 60))
	}
	matchLog(t, a, "TestSpreadKill9/taken", "domain taken")
	for i := range ips {
		checkAcked(t, ctx, ips[i], acks[i])
	}
}

// servesOne reports whether the mount targets n serves now (by its log)
// are those of one of ids, and which (*which).
func servesOne(n *node, ids []string, which *int) bool {
	served := map[string]bool{}
	for _, l := range strings.Split(n.logText(), "\n") {
		for _, id := range ids {
			switch {
			case !strings.Contains(l, "fs_id="+id):
			case strings.Contains(l, "mount target served here"):
				served[id] = true
			case strings.Contains(l, "mount target no longer served here"):
				served[id] = false
			}
		}
	}
	n1, at := 0, -1
	for i, id := range ids {
		if served[id] {
			n1, at = n1+1, i
		}
	}
	*which = at
	return n1 == 1
}

// TestSpreadStartTogether: three nodes of a new region (an empty
// database) started at once with cluster.spread while another node, which
// took the region's lease first, is slow to format the region and goes
// before it does (the test holds the lease, then releases it). The three
// wait for the format record instead of failing on their own write of it
// (fenced: the lease is not theirs); once the lease is free one of them
// formats the region and leads, the others follow; all three run and
// share three file systems one each.
func TestSpreadStartTogether(t *testing.T) {
	metadata, blocks := backends(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := pgkv.Open(ctx, pgkv.Options{URL: metadata, CreateDatabase: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, ok, err := st.Acquire(ctx, "region/us-east-1", "slow-node", 2*time.Minute); err != nil || !ok {
		t.Fatalf("region lease: %v %v", ok, err)
	}
	nodes := spreadNodesOn(t, metadata, blocks, "5f", "node-a", "node-b", "node-c")
	for _, n := range nodes {
		n.start()
	}
	for _, n := range nodes {
		waitLog(t, n, "a new region: waiting for the node holding the region's lease to format it")
	}
	// The slow node goes without formatting: its lease is free.
	if err := st.Release(ctx, "region/us-east-1"); err != nil {
		t.Fatal(err)
	}
	waitAPI(t, nodes...)
	leaders := 0
	for _, n := range nodes {
		settled := testkit.Until(60*time.Second, func() bool {
			l := n.logText()
			if strings.Contains(l, "region lease acquired") {
				leaders++
				return true
			}
			if n.Exited() {
				t.Fatalf("node %s exited\n%s", n.name, tail(l, 60))
			}
			return strings.Contains(l, "standby: another node owns the region")
		})
		if !settled {
			t.Fatalf("node %s neither leads nor waits after 60 s\n%s", n.name, tail(n.logText(), 60))
		}
	}
	if leaders != 1 {
		t.Fatalf("%d nodes lead the region, want 1", leaders)
	}
	c := efsClient()
	for _, token := range []string{"together-1", "together-2", "together-3"} {
		if _, err := c.CreateFileSystem(ctx, &efs.CreateFileSystemInput{CreationToken: aws.String(token)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		waitLog(t, n, "domain taken")
	}
}
