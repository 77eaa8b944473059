package scaleoute2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/regionfs/regionfs/internal/engine/blocks/s3blocks"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
	"github.com/regionfs/regionfs/test/e2e/e2ekit"
)

// TestOrphanSweepAfterTakeover: blocks in the shared bucket that no commit
// references (an upload finished, and one left half-way as a multipart
// upload, by a writer killed before its metadata commit) are removed by
// the node that takes the region over after the owner's kill -9; every
// committed block stays, and every acknowledged file reads back.
func TestOrphanSweepAfterTakeover(t *testing.T) {
	metadata, blocksURL := backends(t)
	bin := testkit.BuildRegionfs(t)
	shared := t.TempDir()
	if err := os.WriteFile(filepath.Join(shared, "kms.key"), []byte(strings.Repeat("5f", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := newNode(t, bin, shared, "node-a", metadata, blocksURL)
	b := newNode(t, bin, shared, "node-b", metadata, blocksURL)
	a.start()
	waitAPI(t, a)
	b.start()
	waitLog(t, b, "standby: another node owns the region")
	ip := fileSystemWithTarget(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := e2ekit.Dial(ctx, ip)
	if err != nil {
		t.Fatal(err)
	}
	fhs := map[int]proto.FH{}
	for i := range 4 {
		fh, err := writeData(ctx, c, fmt.Sprintf("f%05d", i), bigContent(i), 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		fhs[i] = fh
	}
	c.Conn.Close()

	cfg, err := s3blocks.ParseURL(blocksURL)
	if err != nil {
		t.Fatal(err)
	}
	s3c, err := s3blocks.NewClient(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	list := func(prefix string) []string {
		t.Helper()
		var keys []string
		p := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: &cfg.Bucket, Prefix: aws.String(prefix)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range out.Contents {
				keys = append(keys, aws.ToString(o.Key))
			}
		}
		return keys
	}
	committed := list(cfg.Prefix + "blocks/")
	if len(committed) < 4 {
		t.Fatalf("%d objects in the bucket after writing four 1 MiB files: %q", len(committed), committed)
	}
	// blocks/<domain>/<xx>/<id>
	dom := path.Dir(path.Dir(committed[0])) + "/"
	alg := path.Base(committed[0])[:2]
	orphanKey := func() string {
		d := make([]byte, 32)
		rand.Read(d)
		h := alg + hex.EncodeToString(d)
		return dom + h[2:4] + "/" + h
	}

	// What a writer killed between its upload and its commit leaves: a
	// whole object, and a multipart upload with one part.
	orphan, partial := orphanKey(), orphanKey()
	junk := bytes.Repeat([]byte("orphan"), 1000)
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: &cfg.Bucket, Key: &orphan, Body: bytes.NewReader(junk)}); err != nil {
		t.Fatal(err)
	}
	up, err := s3c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &cfg.Bucket, Key: &partial})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &cfg.Bucket, Key: &partial, UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(junk)}); err != nil {
		t.Fatal(err)
	}

	a.Kill9()
	waitLog(t, b, "took the region over")
	waitLog(t, b, "removed orphan blocks after an unclean shutdown")
	waitLog(t, b, "removed partial block writes after an unclean shutdown")
	for _, l := range strings.Split(b.logText(), "\n") {
		if strings.Contains(l, "after an unclean shutdown") {
			t.Log(l)
		}
	}
	if got := strings.Join(list(cfg.Prefix+"blocks/"), "\n"); got != strings.Join(committed, "\n") {
		t.Fatalf("objects after the sweep:\n%s\nwant the committed ones:\n%s", got, strings.Join(committed, "\n"))
	}
	ups, err := s3c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &cfg.Bucket, Prefix: aws.String(dom)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Fatalf("%d multipart uploads left after the sweep", len(ups.Uploads))
	}

	var rc *conn
	testkit.Eventually(t, 60*time.Second, func() error {
		var err error
		rc, err = e2ekit.Dial(ctx, ip)
		return err
	})
	defer rc.Conn.Close()
	for i, fh := range fhs {
		want := bigContent(i)
		var got []byte
		for len(got) < len(want) {
			r, err := rc.C.Read(ctx, fh, uint64(len(got)), 1<<20)
			if err != nil {
				t.Fatalf("f%05d: %v", i, err)
			}
			got = append(got, r.Data...)
			if r.EOF || len(r.Data) == 0 {
				break
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("f%05d after the sweep: %d bytes, differs", i, len(got))
		}
	}
}
