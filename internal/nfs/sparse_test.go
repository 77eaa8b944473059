package nfs

import (
	"bytes"
	"io"
	"testing"

	gonfs "github.com/willscott/go-nfs-client/nfs"
	gorpc "github.com/willscott/go-nfs-client/nfs/rpc"
	goxdr "github.com/willscott/go-nfs-client/nfs/xdr"
)

// TestSparseUsedOverNFS: a client that writes 4 KiB at 1 GiB (dd seek=,
// a VM image) sees the file use 4 KiB in GETATTR and the file system
// 4 KiB in FSSTAT, not 1 GiB (review25 defect 2b).
func TestSparseUsedOverNFS(t *testing.T) {
	v := newEnv(t, envOpt{})
	tg, err := v.goTarget(t, "/", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := tg.OpenFile("vm.img", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(1<<30, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Write(bytes.Repeat([]byte{'v'}, 4096)); err != nil || n != 4096 {
		t.Fatalf("write %d %v", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, fh, err := tg.Lookup("vm.img")
	if err != nil {
		t.Fatal(err)
	}
	a, err := tg.GetAttr(fh)
	if err != nil {
		t.Fatal(err)
	}
	if a.Filesize != 1<<30+4096 || a.Used != 4096 {
		t.Errorf("GETATTR size %d used %d, want size %d used 4096", a.Filesize, a.Used, 1<<30+4096)
	}
	type fhArgs struct {
		gorpc.Header
		FH []byte
	}
	st, res := rawStatus(t, tg, &fhArgs{header(18), fh})
	var fsstat struct {
		Attr                   gonfs.PostOpAttr
		TBytes, FBytes, ABytes uint64
		TFiles, FFiles, AFiles uint64
		Invarsec               uint32
	}
	if err := goxdr.Read(res, &fsstat); st != 0 || err != nil {
		t.Fatalf("FSSTAT %d %+v %v", st, fsstat, err)
	}
	if used := fsstat.TBytes - fsstat.FBytes; used != 4096 {
		t.Errorf("FSSTAT says %d bytes used (total %d, free %d), want 4096", used, fsstat.TBytes, fsstat.FBytes)
	}
}
