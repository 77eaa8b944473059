package s3blocks_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/blocks/blockstest"
	"github.com/regionfs/regionfs/internal/engine/blocks/s3blocks"
)

// s3Config returns the S3 server the tests use (REGIONFS_TEST_S3_URL, set
// by .ci/run from scripts/backends.sh) with a fresh key prefix.
func s3Config(t testing.TB) s3blocks.Config {
	t.Helper()
	u := os.Getenv("REGIONFS_TEST_S3_URL")
	if u == "" {
		if os.Getenv("REGIONFS_REQUIRE_TOOLS") == "1" {
			t.Fatal("REGIONFS_TEST_S3_URL is not set (eval \"$(scripts/backends.sh up DIR)\" starts a server)")
		}
		t.Skip("no S3 server: set REGIONFS_TEST_S3_URL (scripts/backends.sh up DIR prints one)")
	}
	c, err := s3blocks.ParseURL(strings.ReplaceAll(u, "{region}", "test"))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	c.Prefix += "t-" + hex.EncodeToString(b) + "/"
	return c
}

func client(t testing.TB, c s3blocks.Config) *s3.Client {
	t.Helper()
	cl, err := s3blocks.NewClient(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s3blocks.EnsureBucket(context.Background(), cl, c); err != nil {
		t.Fatal(err)
	}
	return cl
}

func newStore(t testing.TB, c s3blocks.Config, k blocks.Keys, cache *s3blocks.Cache) *s3blocks.Store {
	t.Helper()
	s, err := s3blocks.New(s3blocks.Options{Client: client(t, c), Config: c, Prefix: "dom/", Keys: k, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	c := s3Config(t)
	blockstest.Run(t, func(t *testing.T, k blocks.Keys) blocks.Store {
		c := c
		c.Prefix += t.Name() + "/"
		return newStore(t, c, k, nil)
	})
}

func TestConformanceCached(t *testing.T) {
	c := s3Config(t)
	blockstest.Run(t, func(t *testing.T, k blocks.Keys) blocks.Store {
		cache, err := s3blocks.OpenCache(t.TempDir(), 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		c := c
		c.Prefix += t.Name() + "/"
		return newStore(t, c, k, cache)
	})
}

// TestMultipart: a block above the threshold goes up as a multipart
// upload of 5 MiB parts (the S3 minimum), three at a time, and reads back.
func TestMultipart(t *testing.T) {
	c := s3Config(t)
	c.MultipartThreshold, c.PartSize, c.Concurrency = 6<<20, 5<<20, 3
	for _, sealed := range []bool{false, true} {
		k := blockstest.Keys(t, sealed)
		s := newStore(t, c, k, nil)
		ctx := context.Background()
		data := make([]byte, 13<<20+12345)
		rand.Read(data)
		id := k.Hasher.Sum(data)
		if err := s.Put(ctx, id, data); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, id)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("sealed=%v: read back %d bytes, %v", sealed, len(got), err)
		}
		if st := s.Stats(); st.Puts != 1 || st.PutBytes != uint64(len(data)) {
			t.Fatalf("stats %+v", st)
		}
		if err := s.Put(ctx, id, data); err != nil || s.Stats().Puts != 1 {
			t.Fatalf("second put: %v", err)
		}
	}
}

func TestCacheServesAndHeals(t *testing.T) {
	c := s3Config(t)
	dir := t.TempDir()
	cache, err := s3blocks.OpenCache(dir, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	k := blockstest.Keys(t, true)
	s := newStore(t, c, k, cache)
	ctx := context.Background()
	data := bytes.Repeat([]byte("cached block "), 10000)
	id := k.Hasher.Sum(data)
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	// Every cached file is sealed like the object.
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 1 {
		t.Fatalf("cache holds %d files, want 1", len(files))
	}
	raw, _ := os.ReadFile(files[0])
	if bytes.Contains(raw, []byte("cached block")) {
		t.Fatal("cached copy holds the plaintext")
	}
	before := cache.Stats()
	if got, err := s.Get(ctx, id); err != nil || !bytes.Equal(got, data) {
		t.Fatal(err)
	}
	if cache.Stats().Hits != before.Hits+1 {
		t.Fatal("read did not come from the cache")
	}
	// A damaged cached copy is dropped and the object read again.
	raw[len(raw)/2] ^= 1
	os.WriteFile(files[0], raw, 0o600)
	if got, err := s.Get(ctx, id); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("damaged cache copy: %v", err)
	}
	if s.Stats().CorruptReads != 0 {
		t.Fatal("a damaged cache copy counted as a corrupt block")
	}
	// Bounded: a cache of 200 KiB keeps the newest blocks only.
	small, err := s3blocks.OpenCache(t.TempDir(), 200<<10)
	if err != nil {
		t.Fatal(err)
	}
	s2 := newStore(t, c, k, small)
	for i := range 10 {
		d := bytes.Repeat([]byte{byte(i)}, 64<<10)
		if err := s2.Put(ctx, k.Hasher.Sum(d), d); err != nil {
			t.Fatal(err)
		}
	}
	if st := small.Stats(); st.Bytes > 200<<10 || st.Entries != 3 {
		t.Fatalf("bounded cache: %+v", st)
	}
	// Reopening keeps what is there.
	again, err := s3blocks.OpenCache(dir, 64<<20)
	if err != nil || again.Stats().Entries != 1 {
		t.Fatalf("reopened cache: %+v %v", again.Stats(), err)
	}
}

func TestCorruptObject(t *testing.T) {
	c := s3Config(t)
	k := blockstest.Keys(t, false)
	s := newStore(t, c, k, nil)
	ctx := context.Background()
	data := []byte("will be damaged")
	id := k.Hasher.Sum(data)
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	other := []byte("another block")
	oid := k.Hasher.Sum(other)
	if err := s.Put(ctx, oid, other); err != nil {
		t.Fatal(err)
	}
	// Copy the other block's object over this one: a valid object under
	// the wrong id.
	cl := client(t, c)
	h, oh := id.String(), oid.String()
	key := c.Prefix + "dom/" + h[2:4] + "/" + h
	okey := c.Prefix + "dom/" + oh[2:4] + "/" + oh
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: &c.Bucket, Key: &okey})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: &c.Bucket, Key: &key, Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, id); !errors.Is(err, blocks.ErrCorrupt) {
		t.Fatalf("get of a swapped object: %v", err)
	}
	if s.Stats().CorruptReads != 1 {
		t.Fatal("corrupt read not counted")
	}
}

func TestParseURL(t *testing.T) {
	c, err := s3blocks.ParseURL("s3://b/some/prefix?endpoint=http://127.0.0.1:9000&access_key_id=k&secret_access_key=s&part_size=6000000&retry_for=30s")
	if err != nil {
		t.Fatal(err)
	}
	if c.Bucket != "b" || c.Prefix != "some/prefix/" || !c.PathStyle || c.PartSize != 6000000 || c.RetryFor != 30*time.Second || c.Region != "us-east-1" {
		t.Fatalf("%+v", c)
	}
	for _, bad := range []string{
		"http://b", "s3://", "s3://b?endpoint=ftp://x", "s3://b?access_key_id=k", "s3://b?part_size=-1",
		"s3://b?retry_for=soon", "s3://b?part_size=1000", "s3://b?path_style=maybe", "s3://b?concurrency=0",
	} {
		if _, err := s3blocks.ParseURL(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if r := s3blocks.Redact("s3://b?secret_access_key=hunter2"); strings.Contains(r, "hunter2") {
		t.Fatal(r)
	}
}

func FuzzParseURL(f *testing.F) {
	f.Add("s3://b/p?endpoint=http://h:1&region=r")
	f.Add("s3://%zz")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := s3blocks.ParseURL(s)
		if err == nil && c.Bucket == "" {
			t.Fatalf("%q: no bucket", s)
		}
	})
}

// proxy forwards TCP to an S3 server and can play an outage: while down,
// every connection is cut and new ones are closed at once.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.setDown(true)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(up, c); up.Close() }()
		go func() { defer p.wg.Done(); io.Copy(c, up); c.Close() }()
	}
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]bool{}
	}
}

// TestOutage: while the object store is unreachable, Put and Get wait and
// succeed once it is back; with a shorter RetryFor they fail with
// ErrUnavailable and a message naming the block.
func TestOutage(t *testing.T) {
	c := s3Config(t)
	host := strings.TrimPrefix(strings.TrimPrefix(c.Endpoint, "http://"), "https://")
	p := newProxy(t, host)
	c.Endpoint = "http://" + p.ln.Addr().String()
	c.RetryFor = 20 * time.Second
	k := blockstest.Keys(t, true)
	s := newStore(t, c, k, nil)
	ctx := context.Background()
	before := []byte("stored before the outage")
	bid := k.Hasher.Sum(before)
	if err := s.Put(ctx, bid, before); err != nil {
		t.Fatal(err)
	}
	p.setDown(true)
	const outage = 2 * time.Second
	time.AfterFunc(outage, func() { p.setDown(false) })
	start := time.Now()
	during := []byte("written during the outage")
	did := k.Hasher.Sum(during)
	if err := s.Put(ctx, did, during); err != nil {
		t.Fatalf("put across an outage: %v", err)
	}
	if waited := time.Since(start); waited < outage/2 {
		t.Fatalf("put returned after %v, during the outage", waited)
	}
	for _, b := range [][]byte{before, during} {
		if got, err := s.Get(ctx, k.Hasher.Sum(b)); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("after the outage: %q %v", got, err)
		}
	}
	// Longer than RetryFor: a clear error, and nothing half-written.
	c.RetryFor = 500 * time.Millisecond
	short := newStore(t, c, k, nil)
	p.setDown(true)
	lost := []byte("never acknowledged")
	err := short.Put(ctx, k.Hasher.Sum(lost), lost)
	if !errors.Is(err, s3blocks.ErrUnavailable) || !strings.Contains(err.Error(), k.Hasher.Sum(lost).String()) {
		t.Fatalf("put past RetryFor: %v", err)
	}
	t.Logf("error past RetryFor: %v", err)
	p.setDown(false)
	if ok, err := s.Has(ctx, k.Hasher.Sum(lost)); err != nil || ok {
		t.Fatalf("failed put left an object: %v %v", ok, err)
	}

}

// TestRemoveTemps: the unfinished multipart uploads of blocks of the
// store's prefix (a writer killed mid-upload) are aborted; uploads under
// another prefix are left alone.
func TestRemoveTemps(t *testing.T) {
	c := s3Config(t)
	ctx := context.Background()
	k := blockstest.Keys(t, false)
	s := newStore(t, c, k, nil)
	cl := client(t, c)
	data := make([]byte, 1000)
	rand.Read(data)
	h := k.Hasher.Sum(data).String()
	start := func(key string) {
		t.Helper()
		out, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &c.Bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		n := int32(1)
		if _, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: &c.Bucket, Key: &key, UploadId: out.UploadId,
			PartNumber: &n, Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
	}
	mine, other := c.Prefix+"dom/"+h[2:4]+"/"+h, c.Prefix+"other/"+h[2:4]+"/"+h
	start(mine)
	start(other)
	uploads := func(prefix string) int {
		t.Helper()
		out, err := cl.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &c.Bucket, Prefix: &prefix})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Uploads)
	}
	if a, b := uploads(c.Prefix+"dom/"), uploads(c.Prefix+"other/"); a != 1 || b != 1 {
		t.Fatalf("uploads before: %d and %d, want 1 and 1", a, b)
	}
	n, err := s.RemoveTemps(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RemoveTemps: %d, %v; want 1", n, err)
	}
	if a, b := uploads(c.Prefix+"dom/"), uploads(c.Prefix+"other/"); a != 0 || b != 1 {
		t.Fatalf("uploads after: %d and %d, want 0 and 1", a, b)
	}
	if n, err := s.RemoveTemps(ctx); err != nil || n != 0 {
		t.Fatalf("second RemoveTemps: %d, %v; want 0", n, err)
	}
	var ids int
	if err := s.Walk(ctx, func(blocks.ID) error { ids++; return nil }); err != nil || ids != 0 {
		t.Fatalf("Walk after aborting: %d ids, %v", ids, err)
	}
}

// TestBlockVersions: a plaintext block is stored as a version 2 block
// file (its header carries a CRC-32C); an object of version 1, written
// before, still reads (checked by its keyed hash), and a damaged one is
// ErrCorrupt.
func TestBlockVersions(t *testing.T) {
	c := s3Config(t)
	k := blockstest.Keys(t, false)
	s := newStore(t, c, k, nil)
	cl := client(t, c)
	ctx := context.Background()
	objKey := func(id blocks.ID) *string {
		h := id.String()
		key := c.Prefix + "dom/" + h[2:4] + "/" + h
		return &key
	}
	data := []byte("a block of version 2")
	id := k.Hasher.Sum(data)
	if err := s.Put(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: &c.Bucket, Key: objKey(id)})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.HasPrefix(body, []byte("RFB\x02\x00\x00\x00\x00")) || len(body) != 12+len(data) {
		t.Fatalf("stored object %q", body)
	}
	old := []byte("a block of version 1")
	oid := k.Hasher.Sum(old)
	v1 := append([]byte("RFB\x01\x00\x00\x00\x00"), old...)
	if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: &c.Bucket, Key: objKey(oid), Body: bytes.NewReader(v1)}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, oid); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("version 1 object: %q %v", got, err)
	}
	bad := []byte("a damaged block of version 1")
	bid := k.Hasher.Sum(bad)
	v1 = append([]byte("RFB\x01\x00\x00\x00\x00"), bad...)
	v1[len(v1)-1] ^= 1
	if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: &c.Bucket, Key: objKey(bid), Body: bytes.NewReader(v1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, bid); !errors.Is(err, blocks.ErrCorrupt) {
		t.Fatalf("damaged version 1 object: %v", err)
	}
}
