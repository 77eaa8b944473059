package scaleoute2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/efs"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
	"github.com/regionfs/regionfs/test/e2e/e2ekit"
)

const (
	accessKey = "AKIASCALEOUTE2E00001"
	secretKey = "scale-out-e2e-secret-key-0123456789"
	netPrefix = "127.173"
)

const nodeConfig = `
region: us-east-1
account_id: "123456789012"
data_dir: %[1]s/data
metadata: "%[2]s"
blocks: "%[3]s"
cluster: {node: %[4]s, lease: 3s}
api: {listen: "` + netPrefix + `.0.1:7070"}
nfs: {port: 12049}
credentials: [{access_key_id: ` + accessKey + `, secret_access_key: ` + secretKey + `}]
subnets:
  - {id: subnet-05ca1e00000000a1, availability_zone: us-east-1a, cidr: ` + netPrefix + `.1.0/24}
security_groups:
  - {id: sg-05ca1e0000000000a1, name: default, ingress: [127.0.0.0/8]}
kms_keys: [{id: 05ca1e00-0e2e-4e2e-8e2e-0e2e0e2e0ea1, aliases: [alias/aws/elasticfilesystem], key_file: %[5]s/kms.key}]
replication: {listen: "` + netPrefix + `.0.1:7443"}
control: {transition_delay: 0s}
log: {level: info}
`

func backends(t *testing.T) (metadata, blocks string) {
	t.Helper()
	m, b := os.Getenv("REGIONFS_TEST_POSTGRES_URL"), os.Getenv("REGIONFS_TEST_S3_URL")
	if m == "" || b == "" {
		if os.Getenv("REGIONFS_REQUIRE_TOOLS") == "1" {
			t.Fatal("REGIONFS_TEST_POSTGRES_URL and REGIONFS_TEST_S3_URL are required (scripts/backends.sh up DIR)")
		}
		t.Skip("no PostgreSQL/S3: set REGIONFS_TEST_POSTGRES_URL and REGIONFS_TEST_S3_URL (scripts/backends.sh up DIR)")
	}
	r := make([]byte, 5)
	rand.Read(r)
	name := "e2e" + hex.EncodeToString(r) // a fresh database and bucket
	return strings.ReplaceAll(m, "{region}", name), strings.ReplaceAll(b, "{region}", name)
}

// node is one `regionfs serve` process of the region.
type node struct {
	testkit.Process
	t    *testing.T
	name string
	log  string
	cfg  string
}

// regionNodes makes the named nodes of one region on a fresh database and
// bucket, sharing a KMS key (the hex pair key repeated); it starts none.
func regionNodes(t *testing.T, key string, names ...string) (bin string, nodes []*node) {
	t.Helper()
	metadata, blocks := backends(t)
	bin = testkit.BuildRegionfs(t)
	shared := sharedKey(t, key)
	for _, name := range names {
		nodes = append(nodes, newNode(t, bin, shared, name, metadata, blocks))
	}
	return bin, nodes
}

// sharedKey returns a new directory holding kms.key, the hex pair key
// repeated to 32 bytes.
func sharedKey(t *testing.T, key string) string {
	t.Helper()
	shared := t.TempDir()
	if err := os.WriteFile(filepath.Join(shared, "kms.key"), []byte(strings.Repeat(key, 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return shared
}

func newNode(t *testing.T, bin, shared, name, metadata, blocks string) *node {
	t.Helper()
	return newNodeConfig(t, bin, name, func(dir string) string { return fmt.Sprintf(nodeConfig, dir, metadata, blocks, name, shared) })
}

// newNodeConfig is newNode with the configuration config returns for the
// node's own directory.
func newNodeConfig(t *testing.T, bin, name string, config func(dir string) string) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{t: t, name: name, log: filepath.Join(dir, "serve.log")}
	n.cfg = filepath.Join(dir, "node.yaml")
	n.Process = testkit.Process{Args: []string{bin, "serve", "--config", n.cfg}, Log: n.log}
	if err := os.WriteFile(n.cfg, []byte(config(dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("node %s log (tail):\n%s", n.name, tail(n.logText(), 80))
		}
	})
	return n
}

// start starts the node without waiting: a standby does not answer.
func (n *node) start() {
	n.t.Helper()
	n.Start(n.t, "")
}

func (n *node) logText() string { b, _ := os.ReadFile(n.log); return string(b) }

// waitAPI waits until the region's API answers (on whichever node).
func waitAPI(t *testing.T, nodes ...*node) {
	t.Helper()
	waitAPIAt(t, netPrefix, nodes...)
}

// waitAPIAt waits until the API of the region on loopback prefix net
// answers, failing t if one of nodes exits first.
func waitAPIAt(t *testing.T, net string, nodes ...*node) {
	t.Helper()
	up := testkit.Until(60*time.Second, func() bool {
		if res, err := http.Get("http://" + net + ".0.1:7070/metrics"); err == nil {
			res.Body.Close()
			return true
		}
		for _, n := range nodes {
			if n.Exited() {
				t.Fatalf("node %s exited\n%s", n.name, tail(n.logText(), 80))
			}
		}
		return false
	})
	if !up {
		t.Fatalf("region API (%s) not up after 60 s", net)
	}
}

func efsClient() *efs.Client {
	return efs.New(efs.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + netPrefix + ".0.1:7070"), RetryMaxAttempts: 1,
		HTTPClient:  testkit.SDKHTTPClient(),
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")})
}

func fileSystemWithTarget(t *testing.T) string {
	t.Helper()
	c := efsClient()
	fs, err := c.CreateFileSystem(context.Background(), &efs.CreateFileSystemInput{CreationToken: aws.String("takeover")})
	if err != nil {
		t.Fatal(err)
	}
	return e2ekit.MountTarget(t, c, aws.ToString(fs.FileSystemId), "subnet-05ca1e00000000a1", "sg-05ca1e0000000000a1")
}

// conn is an NFS connection to the root of a mount target.
type conn = e2ekit.Dir

func content(i int) []byte { return bytes.Repeat(fmt.Appendf(nil, "file %d;", i), 1000+i%3000) }

// acked is what the writer was told is durable: each file's handle.
type acked struct {
	mu    sync.Mutex
	files map[int]proto.FH
}

// TestTakeoverAfterKill9: two nodes of one region; the owner is killed
// (kill -9) while a client writes; the standby takes the region over, the
// client reconnects to the same address, every acknowledged write is
// there and every handle it held still works.
func TestTakeoverAfterKill9(t *testing.T) {
	_, nodes := regionNodes(t, "5c", "node-a", "node-b")
	a, b := nodes[0], nodes[1]
	a.start()
	waitAPI(t, a)
	b.start() // a standby: it waits for the region's lease
	ip := fileSystemWithTarget(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ack := &acked{files: map[int]proto.FH{}}
	var killedAt, resumedAt time.Time
	var mu sync.Mutex
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		writerDone <- writeFiles(ctx, ip, stop, func(i int, fh proto.FH, _ bool) {
			ack.add(i, fh)
			mu.Lock()
			if !killedAt.IsZero() && resumedAt.IsZero() {
				resumedAt = time.Now()
			}
			mu.Unlock()
		})
	}()
	waitFiles(t, ack, 30)
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	a.Kill9()
	n := count(ack)
	waitFiles(t, ack, n+30)
	close(stop)
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v\nnode-b log:\n%s", err, b.logText())
	}
	mu.Lock()
	takeover := resumedAt.Sub(killedAt)
	mu.Unlock()
	t.Logf("takeover: first acknowledged write %v after kill -9 (lease 3s); %d files before the kill, %d in all", takeover.Round(time.Millisecond), n, count(ack))
	if !strings.Contains(b.logText(), "took the region over") {
		t.Fatalf("node-b did not take over:\n%s", b.logText())
	}
	matchLog(t, b, "TestTakeoverAfterKill9/took-over", "took the region over")

	// Every acknowledged file: same handle, same content.
	checkAcked(t, ctx, ip, ack)
}

func writeFile(ctx context.Context, c *conn, i int) (proto.FH, error) {
	return writeData(ctx, c, fmt.Sprintf("f%05d", i), content(i), 5*time.Second)
}

// writeData creates name and writes data with FILE_SYNC: when it returns
// nil, the server said the data is durable.
func writeData(ctx context.Context, c *conn, name string, data []byte, timeout time.Duration) (proto.FH, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := c.C.Create(ctx, c.Root, name, proto.Unchecked, proto.Sattr{})
	if err != nil {
		return nil, err
	}
	// A server may write less than asked (RFC 1813 3.3.7): send the rest
	// until all of it is written, as a careful client does.
	for off := 0; off < len(data); {
		w, err := c.C.Write(ctx, r.FH, uint64(off), data[off:], proto.FileSync)
		if err != nil {
			return nil, err
		}
		if w.Committed != proto.FileSync {
			return nil, fmt.Errorf("write of %s at %d: committed %v, asked FILE_SYNC", name, off, w.Committed)
		}
		if w.Count == 0 {
			return nil, fmt.Errorf("write of %s at %d: the server wrote nothing", name, off)
		}
		off += int(w.Count)
	}
	return r.FH, nil
}

func (a *acked) add(i int, fh proto.FH) {
	a.mu.Lock()
	a.files[i] = fh
	a.mu.Unlock()
}

// writeFiles writes file after file (writeFile) through a connection to
// the mount target at ip until stop is closed, reconnecting to the same
// address whenever a write fails (the owner is gone) and writing the file
// again. It calls acked with each acknowledged file, afterFailure when
// the write came after a failed one. It returns nil once stopped.
func writeFiles(ctx context.Context, ip string, stop <-chan struct{}, acked func(i int, fh proto.FH, afterFailure bool)) error {
	return writeEach(ctx, ip, stop, func(c *conn, i int) (proto.FH, error) { return writeFile(ctx, c, i) }, acked)
}

// writeEach is writeFiles with write making file i.
func writeEach(ctx context.Context, ip string, stop <-chan struct{}, write func(c *conn, i int) (proto.FH, error), acked func(i int, fh proto.FH, afterFailure bool)) error {
	c, err := e2ekit.Dial(ctx, ip)
	if err != nil {
		return err
	}
	failed := false
	for i := 0; ; i++ {
		select {
		case <-stop:
			c.Conn.Close()
			return nil
		default:
		}
		for {
			fh, err := write(c, i)
			if err == nil {
				acked(i, fh, failed)
				failed = false
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("file %d: %w", i, err)
			}
			failed = true
			c.Conn.Close()
			if c, err = e2ekit.Redial(ctx, ip, 50*time.Millisecond); err != nil {
				return fmt.Errorf("reconnect: %w", err)
			}
		}
	}
}

func count(a *acked) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.files)
}

func waitFiles(t *testing.T, a *acked, n int) {
	t.Helper()
	if !testkit.Until(90*time.Second, func() bool { return count(a) >= n }) {
		t.Fatalf("only %d of %d files written in 90 s", count(a), n)
	}
}
