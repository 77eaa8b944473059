package nfs

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sort"
	"syscall"
	"testing"

	gonfs "github.com/willscott/go-nfs-client/nfs"
	gorpc "github.com/willscott/go-nfs-client/nfs/rpc"
	goxdr "github.com/willscott/go-nfs-client/nfs/xdr"
)

// goNFSStatus is the nfsstat3 a go-nfs-client error carries.
func goNFSStatus(err error) uint32 {
	var e *gonfs.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.ErrorNum
	case errors.Is(err, os.ErrPermission):
		return gonfs.NFS3ErrPerm
	case errors.Is(err, os.ErrExist):
		return gonfs.NFS3ErrExist
	case errors.Is(err, os.ErrNotExist):
		return gonfs.NFS3ErrNoEnt
	}
	return 1 << 31
}

func wantGoNFS(t *testing.T, what string, err error, want uint32) {
	t.Helper()
	if got := goNFSStatus(err); got != want {
		t.Fatalf("%s: %v (status %d), want status %d", what, err, got, want)
	}
}

// goTarget mounts path with github.com/willscott/go-nfs-client, talking
// MOUNT and NFS on the server's one port (no portmapper).
func (v *testEnv) goTarget(t *testing.T, path string, uid, gid uint32) (*gonfs.Target, error) {
	t.Helper()
	// go-nfs-client binds a random local port of 49152-65535 and, unlike
	// in its privileged mode, does not try another when that one is in
	// use: try again here.
	c, err := gorpc.DialTCP("tcp", v.addr, false)
	for i := 0; err != nil && errors.Is(err, syscall.EADDRINUSE) && i < 20; i++ {
		c, err = gorpc.DialTCP("tcp", v.addr, false)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	m := &gonfs.Mount{Client: c}
	return m.Mount(path, gorpc.NewAuthUnix("gonfs", uid, gid).Auth())
}

func header(proc uint32) gorpc.Header {
	return gorpc.Header{Rpcvers: 2, Prog: gonfs.Nfs3Prog, Vers: gonfs.Nfs3Vers, Proc: proc,
		Cred: gorpc.NewAuthUnix("gonfs", 0, 0).Auth(), Verf: gorpc.AuthNull}
}

// rawStatus sends a call through go-nfs-client's RPC layer and returns
// the reply's status and the rest of it.
func rawStatus(t *testing.T, tg *gonfs.Target, call any) (uint32, io.ReadSeeker) {
	t.Helper()
	res, err := tg.Call(call)
	if err != nil {
		t.Fatal(err)
	}
	st, err := goxdr.ReadUint32(res)
	if err != nil {
		t.Fatal(err)
	}
	return st, res
}

// TestGoNFSClient drives every NFSv3 procedure with go-nfs-client: its
// own API where it has one (MNT, UMNT, FSINFO, LOOKUP, GETATTR, SETATTR,
// ACCESS, MKDIR, CREATE, WRITE, COMMIT, READ, READDIRPLUS, RENAME,
// SYMLINK, READLINK, REMOVE, RMDIR) and its RPC layer and XDR codec for the
// rest (LINK, MKNOD, READDIR, FSSTAT, PATHCONF, exclusive CREATE, UNSTABLE
// WRITE, NULL), with error statuses.
func TestGoNFSClient(t *testing.T) {
	v := newEnv(t, envOpt{})
	if _, err := v.goTarget(t, "/nope", 0, 0); err == nil || err.Error() != "MNT3ERR_NOENT" {
		t.Fatalf("mount of a missing export: %v", err)
	}
	tg, err := v.goTarget(t, "/", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	fsinfo, err := tg.FSInfo()
	if err != nil || fsinfo.WTMax != 1<<20 || fsinfo.RTMax != 1<<20 || fsinfo.Properties != 0x1b {
		t.Fatalf("fsinfo %+v %v", fsinfo, err)
	}
	// MKDIR, CREATE, WRITE (FILE_SYNC, cut at wtpref), COMMIT, READ.
	if _, err := tg.Mkdir("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = tg.Mkdir("dir", 0o755)
	wantGoNFS(t, "mkdir existing", err, gonfs.NFS3ErrExist)
	f, err := tg.OpenFile("dir/file", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("go-nfs-client "), 3<<20/14)
	if n, err := f.Write(data); err != nil || n != len(data) {
		t.Fatalf("write %d %v", n, err)
	}
	if err := f.Close(); err != nil { // COMMIT
		t.Fatal(err)
	}
	rf, err := tg.Open("dir/file")
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(rf)
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("read back %d bytes of %d: %v", len(back), len(data), err)
	}
	// LOOKUP, GETATTR, SETATTR, ACCESS.
	fi, fh, err := tg.Lookup("dir/file")
	if err != nil || fi.Size() != int64(len(data)) || fi.Mode().Perm() != 0o644 {
		t.Fatalf("lookup %v %v", fi, err)
	}
	_, _, err = tg.Lookup("dir/missing")
	wantGoNFS(t, "lookup missing", err, gonfs.NFS3ErrNoEnt)
	if err := tg.Setattr("dir/file", gonfs.Sattr3{Mode: gonfs.SetMode{SetIt: true, Mode: 0o600}, Size: gonfs.SetSize{SetIt: true, Size: 5}}); err != nil {
		t.Fatal(err)
	}
	attr, err := tg.GetAttr(fh)
	if err != nil || attr.Size() != 5 || attr.Mode().Perm() != 0o600 {
		t.Fatalf("getattr after setattr %+v %v", attr, err)
	}
	acc, err := tg.Access("dir/file", gonfs.ACCESS3_READ|gonfs.ACCESS3_MODIFY|gonfs.ACCESS3_EXECUTE)
	if err != nil || acc != gonfs.ACCESS3_READ|gonfs.ACCESS3_MODIFY {
		t.Fatalf("access %#x %v", acc, err)
	}
	bogus := append([]byte(nil), fh...)
	bogus[50] ^= 0xff
	_, err = tg.GetAttr(bogus)
	wantGoNFS(t, "getattr of a forged handle", err, gonfs.NFS3ErrBadHandle)
	// As another user: SETATTR of root's file is refused.
	other, err := v.goTarget(t, "/", 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	err = other.Setattr("dir/file", gonfs.Sattr3{Mode: gonfs.SetMode{SetIt: true, Mode: 0o777}})
	wantGoNFS(t, "setattr by another user", err, gonfs.NFS3ErrPerm)
	_, err = other.Mkdir("dir/mine", 0o755)
	wantGoNFS(t, "mkdir without permission", err, gonfs.NFS3ErrAcces)
	// SYMLINK, READLINK, READDIRPLUS, RENAME.
	if err := tg.Symlink("file", "dir/link"); err != nil {
		t.Fatal(err)
	}
	lf, err := tg.Open("dir/link")
	if err != nil {
		t.Fatal(err)
	}
	if target, err := lf.Readlink(); err != nil || target != "file" {
		t.Fatalf("readlink %q %v", target, err)
	}
	if err := tg.Rename("dir/file", "dir/renamed"); err != nil {
		t.Fatal(err)
	}
	ents, err := tg.ReadDirPlus("dir")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if len(names) != 2 || names[0] != "link" || names[1] != "renamed" {
		t.Fatalf("readdirplus %v", names)
	}
	// Raw procedures through go-nfs-client's RPC layer.
	_, dirFH, err := tg.Lookup("dir")
	if err != nil {
		t.Fatal(err)
	}
	_, renFH, _ := tg.Lookup("dir/renamed")
	type linkArgs struct {
		gorpc.Header
		File []byte
		Link gonfs.Diropargs3
	}
	if st, _ := rawStatus(t, tg, &linkArgs{header(15), renFH, gonfs.Diropargs3{FH: dirFH, Filename: "hard"}}); st != 0 {
		t.Fatalf("LINK status %d", st)
	}
	if st, _ := rawStatus(t, tg, &linkArgs{header(15), renFH, gonfs.Diropargs3{FH: dirFH, Filename: "hard"}}); st != gonfs.NFS3ErrExist {
		t.Fatalf("LINK over an existing name: status %d", st)
	}
	hardAttr, _, err := tg.Lookup("dir/hard", false)
	if err != nil || hardAttr.(*gonfs.Fattr).Nlink != 2 {
		t.Fatalf("hard link attrs %+v %v", hardAttr, err)
	}
	type mknodArgs struct {
		gorpc.Header
		Where gonfs.Diropargs3
		Type  uint32
		Attr  gonfs.Sattr3
	}
	if st, _ := rawStatus(t, tg, &mknodArgs{header(11), gonfs.Diropargs3{FH: dirFH, Filename: "fifo"}, gonfs.NF3FIFO, gonfs.Sattr3{}}); st != 0 {
		t.Fatalf("MKNOD FIFO status %d", st)
	}
	type mknodReg struct {
		gorpc.Header
		Where gonfs.Diropargs3
		Type  uint32
	}
	if st, _ := rawStatus(t, tg, &mknodReg{header(11), gonfs.Diropargs3{FH: dirFH, Filename: "reg"}, gonfs.NF3Reg}); st != gonfs.NFS3ErrBadType {
		t.Fatalf("MKNOD REG status %d", st)
	}
	type readDirArgs struct {
		gorpc.Header
		FH     []byte
		Cookie uint64
		Verf   uint64
		Count  uint32
	}
	st, res := rawStatus(t, tg, &readDirArgs{header(16), dirFH, 0, 0, 4096})
	if st != 0 {
		t.Fatalf("READDIR status %d", st)
	}
	var dirAttr gonfs.PostOpAttr
	var verf uint64
	if err := goxdr.Read(res, &dirAttr); err != nil {
		t.Fatal(err)
	}
	goxdr.Read(res, &verf)
	var listed []string
	for {
		var follows bool
		goxdr.Read(res, &follows)
		if !follows {
			break
		}
		var e struct {
			FileID uint64
			Name   string
			Cookie uint64
		}
		if err := goxdr.Read(res, &e); err != nil {
			t.Fatal(err)
		}
		listed = append(listed, e.Name)
	}
	sort.Strings(listed)
	if want := []string{".", "..", "fifo", "hard", "link", "renamed"}; len(listed) != len(want) {
		t.Fatalf("READDIR listed %v, want %v", listed, want)
	}
	if st, _ := rawStatus(t, tg, &readDirArgs{header(16), dirFH, 1 << 40, verf, 4096}); st != gonfs.NFS3ErrBadCookie {
		t.Fatalf("READDIR bad cookie: status %d", st)
	}
	type fhArgs struct {
		gorpc.Header
		FH []byte
	}
	st, res = rawStatus(t, tg, &fhArgs{header(18), dirFH})
	var fsstat struct {
		Attr                   gonfs.PostOpAttr
		TBytes, FBytes, ABytes uint64
		TFiles, FFiles, AFiles uint64
		Invarsec               uint32
	}
	if err := goxdr.Read(res, &fsstat); st != 0 || err != nil || fsstat.TBytes == 0 || fsstat.TFiles == 0 {
		t.Fatalf("FSSTAT %d %+v %v", st, fsstat, err)
	}
	st, res = rawStatus(t, tg, &fhArgs{header(20), dirFH})
	var pathconf struct {
		Attr                                              gonfs.PostOpAttr
		LinkMax, NameMax                                  uint32
		NoTrunc, ChownRestricted, CaseInsens, CasePreserv bool
	}
	if err := goxdr.Read(res, &pathconf); st != 0 || err != nil || pathconf.NameMax != 255 || !pathconf.NoTrunc {
		t.Fatalf("PATHCONF %d %+v %v", st, pathconf, err)
	}
	type createExcl struct {
		gorpc.Header
		Where gonfs.Diropargs3
		Mode  uint32
		Verf  uint64
	}
	for i, want := range []uint32{0, 0, gonfs.NFS3ErrExist} {
		verf := uint64(42)
		if i == 2 {
			verf = 43
		}
		if st, _ := rawStatus(t, tg, &createExcl{header(8), gonfs.Diropargs3{FH: dirFH, Filename: "excl"}, 2, verf}); st != want {
			t.Fatalf("exclusive CREATE %d: status %d, want %d", i, st, want)
		}
	}
	type writeArgs struct {
		gorpc.Header
		FH     []byte
		Offset uint64
		Count  uint32
		How    uint32
		Data   []byte
	}
	st, res = rawStatus(t, tg, &writeArgs{header(7), renFH, 0, 8, 0, []byte("unstable")})
	var wres struct {
		Wcc       gonfs.WccData
		Count     uint32
		How       uint32
		WriteVerf uint64
	}
	if err := goxdr.Read(res, &wres); st != 0 || err != nil || wres.How != 0 || wres.Count != 8 {
		t.Fatalf("UNSTABLE WRITE %d %+v %v", st, wres, err)
	}
	if _, err := tg.Call(&struct{ gorpc.Header }{header(0)}); err != nil {
		t.Fatalf("NULL: %v", err)
	}
	// REMOVE, RMDIR (not empty, then empty), RemoveAll.
	err = tg.RmDir("dir")
	if !gonfs.IsNotEmptyError(err) {
		t.Fatalf("rmdir of a non-empty dir: %v", err)
	}
	if err := tg.Remove("dir/link"); err != nil {
		t.Fatal(err)
	}
	err = tg.Remove("dir/link")
	wantGoNFS(t, "remove missing", err, gonfs.NFS3ErrNoEnt)
	if err := tg.RemoveAll("dir"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tg.Lookup("dir", false); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dir after RemoveAll: %v", err)
	}
	// The removed file's handle is stale.
	_, err = tg.GetAttr(renFH)
	wantGoNFS(t, "getattr of a removed file", err, gonfs.NFS3ErrStale)
	// Read-only: ROFS for CREATE and MKDIR.
	v.srv.SetExports([]Export{{Path: "/", FS: v.fs, ReadOnly: true}})
	ro, err := v.goTarget(t, "/", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ro.Create("x", 0o644)
	wantGoNFS(t, "create on a read-only export", err, gonfs.NFS3ErrROFS)
	_, err = ro.Mkdir("y", 0o755)
	wantGoNFS(t, "mkdir on a read-only export", err, gonfs.NFS3ErrROFS)
	if err := (&gonfs.Mount{Client: ro.Client}).Unmount(); err != nil {
		t.Fatal(err)
	}
}
