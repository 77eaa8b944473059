package engine

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestWriteSetAttr: data and an attribute change in one transaction are
// one durable commit, the change applied after the data (an explicit
// mtime is not moved on by the write), both held by what a crash
// leaves; a change the caller may not make fails the whole and leaves
// the data unwritten.
func TestWriteSetAttr(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	fs := must(v.e.CreateFS(ctx, "fs", FSOptions{}))(t)
	mode := uint32(0o666)
	ino := must(fs.Create(ctx, RootCred, RootIno, "f", CreateGuarded, SetAttr{Mode: &mode}, 0))(t).Attr.Ino

	data := []byte("small file written with its times")
	mtime := time.Unix(1_600_000_000, 123)
	newMode := uint32(0o640)
	commits := fs.Stats().Commits
	_, after, err := fs.WriteSetAttr(ctx, RootCred, ino, 0, data, false, nil, RootCred,
		SetAttr{Mode: &newMode, Mtime: &TimeSet{Time: mtime}, Atime: &TimeSet{Time: mtime}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fs.Stats().Commits - commits; got != 1 {
		t.Errorf("WriteSetAttr took %d durable commits, want 1", got)
	}
	if after.Size != uint64(len(data)) || !after.Mtime.Equal(mtime) || after.Mode&0o7777 != newMode {
		t.Errorf("after: size %d mtime %v mode %o; want %d, %v, %o", after.Size, after.Mtime, after.Mode&0o7777, len(data), mtime, newMode)
	}

	// The data may be written, but bob may not change the mode: nothing
	// lands.
	if _, _, err := fs.WriteSetAttr(ctx, RootCred, ino, 0, []byte("overwritten"), false, nil, bob, SetAttr{Mode: &mode}); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("a change by a non-owner: %v, want a permission error", err)
	}

	o := v.opts
	o.KV, o.Disk = v.kv.CrashClone(), v.disk.CrashClone()
	e2, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	fs2 := must(e2.FS("fs"))(t)
	got, _, attr, err := fs2.Read(ctx, RootCred, ino, 0, 100)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after a crash the file reads %q, %v; want %q", got, err, data)
	}
	if !attr.Mtime.Equal(mtime) || attr.Mode&0o7777 != newMode {
		t.Errorf("after a crash: mtime %v mode %o; want %v, %o", attr.Mtime, attr.Mode&0o7777, mtime, newMode)
	}
}
