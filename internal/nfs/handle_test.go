package nfs

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

func TestHandleEncoding(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	h := handle{ino: 42, gen: 7, root: 1, tag: 0xdeadbeef}
	copy(h.lineage[:], "lineage-16-bytes")
	b := h.encode(key)
	if len(b) != 64 || len(b)%4 != 0 {
		t.Fatalf("handle of %d bytes", len(b))
	}
	got, err := parseHandle(b)
	if err != nil || got != h {
		t.Fatalf("parse %+v %v", got, err)
	}
	if err := verifyHandle(b, key); err != nil {
		t.Fatal(err)
	}
	// Any changed bit fails the MAC; a wrong key fails; odd sizes and
	// versions are malformed.
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x10
		if _, perr := parseHandle(c); perr == nil && verifyHandle(c, key) == nil {
			t.Fatalf("bit flip in byte %d accepted", i)
		}
	}
	if verifyHandle(b, []byte("another key")) == nil {
		t.Fatal("wrong key accepted")
	}
	for _, bad := range [][]byte{nil, b[:63], append(bytes.Clone(b), 0, 0, 0, 0)} {
		if _, err := parseHandle(bad); !errors.Is(err, errBadHandle) {
			t.Fatalf("%d bytes: %v", len(bad), err)
		}
	}
}

// TestHandleStatuses: forged handles are BADHANDLE, handles of removed
// files or of another file system's lineage are STALE.
func TestHandleStatuses(t *testing.T) {
	f := newFixture(t, envOpt{})
	fh := f.create(t, f.root, "f", "")
	// Another file system's handle (another lineage): no export → STALE.
	other, err := f.e.CreateFS(f.ctx, "other", engineFSOptions())
	if err != nil {
		t.Fatal(err)
	}
	h, _ := parseHandle(fh)
	copy(h.lineage[:], other.Lineage())
	_, err = f.c.GetAttr(f.ctx, h.encode(other.MACKey()))
	wantStatus(t, err, proto.ErrStale)
	// Both exported: each handle works only with its own key.
	f.srv.SetExports([]Export{{Path: "/", FS: f.fs}, {Path: "/other", FS: other}})
	oroot := f.mount(f.c, "/other")
	if _, err := f.c.GetAttr(f.ctx, oroot); err != nil {
		t.Fatal(err)
	}
	h2, _ := parseHandle(oroot)
	h2.ino = h.ino
	_, err = f.c.GetAttr(f.ctx, h2.encode(f.fs.MACKey()))
	wantStatus(t, err, proto.ErrBadHandle)
	// A handle whose generation is not the inode's: STALE.
	hg := h
	copy(hg.lineage[:], f.fs.Lineage())
	hg.gen++
	_, err = f.c.GetAttr(f.ctx, hg.encode(f.fs.MACKey()))
	wantStatus(t, err, proto.ErrStale)
	// A handle of an inode that never existed: STALE.
	hn := h
	copy(hn.lineage[:], f.fs.Lineage())
	hn.ino = 1 << 40
	_, err = f.c.GetAttr(f.ctx, hn.encode(f.fs.MACKey()))
	wantStatus(t, err, proto.ErrStale)
}

// FuzzProcedures sends arbitrary arguments to every procedure of every
// program on a running server (seeded with valid calls): each gets a
// reply, never a crash, and the server keeps answering.
func FuzzProcedures(f *testing.F) {
	v := newEnv(f, envOpt{})
	c := v.dial()
	ctx := context.Background()
	root := v.mount(c, "/")
	fileRes, err := c.Create(ctx, root, "file", proto.Guarded, proto.Sattr{})
	if err != nil {
		f.Fatal(err)
	}
	file := fileRes.FH
	mode := uint32(0o600)
	seeds := map[uint32][]proto.Message{
		proto.ProcGetAttr:     {&proto.FHArgs{FH: root}},
		proto.ProcSetAttr:     {&proto.SetAttrArgs{FH: file, Attr: proto.Sattr{Mode: &mode}}},
		proto.ProcLookup:      {&proto.DirOp{Dir: root, Name: "file"}},
		proto.ProcAccess:      {&proto.AccessArgs{FH: file, Access: 0x3f}},
		proto.ProcReadlink:    {&proto.FHArgs{FH: file}},
		proto.ProcRead:        {&proto.ReadArgs{FH: file, Count: 100}},
		proto.ProcWrite:       {&proto.WriteArgs{FH: file, Count: 3, Data: []byte("abc")}},
		proto.ProcCreate:      {&proto.CreateArgs{Where: proto.DirOp{Dir: root, Name: "c"}, Mode: proto.Exclusive}},
		proto.ProcMkdir:       {&proto.MkdirArgs{Where: proto.DirOp{Dir: root, Name: "d"}}},
		proto.ProcSymlink:     {&proto.SymlinkArgs{Where: proto.DirOp{Dir: root, Name: "s"}, Target: "t"}},
		proto.ProcMknod:       {&proto.MknodArgs{Where: proto.DirOp{Dir: root, Name: "n"}, Type: proto.TypeFIFO}},
		proto.ProcRemove:      {&proto.DirOp{Dir: root, Name: "c"}},
		proto.ProcRmdir:       {&proto.DirOp{Dir: root, Name: "d"}},
		proto.ProcRename:      {&proto.RenameArgs{From: proto.DirOp{Dir: root, Name: "s"}, To: proto.DirOp{Dir: root, Name: "s2"}}},
		proto.ProcLink:        {&proto.LinkArgs{FH: file, Link: proto.DirOp{Dir: root, Name: "h"}}},
		proto.ProcReadDir:     {&proto.ReadDirArgs{FH: root, Count: 4096}},
		proto.ProcReadDirPlus: {&proto.ReadDirPlusArgs{FH: root, DirCount: 512, MaxCount: 4096}},
		proto.ProcFSStat:      {&proto.FHArgs{FH: root}},
		proto.ProcFSInfo:      {&proto.FHArgs{FH: root}},
		proto.ProcPathConf:    {&proto.FHArgs{FH: root}},
		proto.ProcCommit:      {&proto.CommitArgs{FH: file}},
	}
	for proc, msgs := range seeds {
		for _, m := range msgs {
			f.Add(uint8(0), uint8(proc), proto.Marshal(nil, m))
		}
	}
	f.Add(uint8(1), uint8(proto.MountProcMnt), proto.Marshal(nil, &proto.DirPathArgs{Path: "/"}))
	f.Add(uint8(1), uint8(proto.MountProcUmnt), proto.Marshal(nil, &proto.DirPathArgs{Path: "/"}))
	f.Add(uint8(2), uint8(proto.PmapProcGetPort), proto.Marshal(nil, &proto.Mapping{Prog: proto.ProgNFS, Vers: 3, Prot: 6}))
	f.Add(uint8(3), uint8(proto.ProcRegionFSCreate), proto.Marshal(nil, &proto.ExclusiveCreateArgs{Where: proto.DirOp{Dir: root, Name: "r"}, Attr: proto.Sattr{Mode: &mode}}))
	f.Add(uint8(3), uint8(proto.ProcRegionFSCreateVisible), proto.Marshal(nil, &proto.ExclusiveCreateArgs{Where: proto.DirOp{Dir: root, Name: "v"}, Attr: proto.Sattr{Mode: &mode}}))
	f.Add(uint8(3), uint8(proto.ProcRegionFSClose), proto.Marshal(nil, &proto.CloseArgs{Write: proto.WriteArgs{FH: file, Count: 3, Data: []byte("abc")}, Attr: proto.Sattr{Mode: &mode}}))
	progs := []struct{ prog, vers, procs uint32 }{
		{proto.ProgNFS, 3, proto.NumProcs}, {proto.ProgMount, 3, proto.MountNumProcs}, {proto.ProgPortmap, 2, 5},
		{proto.ProgRegionFS, proto.VersRegionFS, uint32(len(proto.RegionFSProcNames))},
	}
	f.Fuzz(func(t *testing.T, prog, proc uint8, args []byte) {
		p := progs[int(prog)%len(progs)]
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		res, err := c.CallRaw(ctx, rpc.CallHeader{Prog: p.prog, Vers: p.vers, Proc: uint32(proc) % p.procs, Cred: client.Unix("fuzz", 0, 0)}, args)
		var re *rpc.ReplyError
		if errors.Is(err, context.DeadlineExceeded) {
			buf := make([]byte, 1<<20)
			t.Fatalf("prog %d proc %d args %x: no reply in 20 s\n%s", p.prog, proc, args, buf[:runtime.Stack(buf, true)])
		}
		if err != nil && !(errors.As(err, &re) && re.Accepted && re.AcceptStat == rpc.GarbageArgs) {
			t.Fatalf("prog %d proc %d: %v", p.prog, proc, err)
		}
		_ = res
		if err := c.Null(ctx, proto.ProgNFS, 3); err != nil {
			t.Fatalf("server stopped answering: %v", err)
		}
	})
}

// FuzzHandle sends arbitrary handles in GETATTR: BADHANDLE, STALE or a
// real file's attributes, nothing else.
func FuzzHandle(f *testing.F) {
	v := newEnv(f, envOpt{})
	c := v.dial()
	ctx := context.Background()
	root := v.mount(c, "/")
	f.Add([]byte(root))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{1}, 64))
	f.Fuzz(func(t *testing.T, fh []byte) {
		if len(fh) > proto.FHSize {
			fh = fh[:proto.FHSize]
		}
		_, err := c.GetAttr(ctx, fh)
		switch {
		case err == nil:
			if _, perr := parseHandle(fh); perr != nil || verifyHandle(fh, v.fs.MACKey()) != nil {
				t.Fatalf("a malformed or forged handle was accepted")
			}
		case errors.Is(err, proto.ErrBadHandle), errors.Is(err, proto.ErrStale):
		default:
			t.Fatalf("handle %x: %v", fh, err)
		}
	})
}
