package nfs

import (
	"bytes"
	"context"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/proto"
)

func TestSmoke(t *testing.T) {
	v := newEnv(t, envOpt{})
	c := v.dial()
	ctx := context.Background()
	root := v.mount(c, "/")
	mode := uint32(0o644)
	cr, err := c.Create(ctx, root, "a.txt", proto.Guarded, proto.Sattr{Mode: &mode})
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Write(ctx, cr.FH, 0, []byte("hello"), proto.Unstable)
	if err != nil || w.Committed != proto.Unstable {
		t.Fatal(err, w.Committed)
	}
	rd, err := c.Read(ctx, cr.FH, 0, 100)
	if err != nil || !bytes.Equal(rd.Data, []byte("hello")) || !rd.EOF {
		t.Fatalf("read %q %v %v", rd.Data, rd.EOF, err)
	}
	cm, err := c.Commit(ctx, cr.FH, 0, 0)
	if err != nil || cm.Verf != w.Verf {
		t.Fatal(err)
	}
	ents, err := c.ReadDirAll(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Logf("%s %d %d", e.Name, e.FileID, e.Cookie)
	}
}
