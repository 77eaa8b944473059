package nfs

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// dialFrom connects from a given loopback address.
func (v *testEnv) dialFrom(t *testing.T, local string) *client.Client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", v.addr)
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewConn(nc)
	t.Cleanup(func() { c.Close() })
	return c.WithAuth(client.Unix("test", 0, 0))
}

func TestMountPaths(t *testing.T) {
	f := newFixture(t, envOpt{})
	d := f.mkdir(t, f.root, "d", 0o755)
	e := f.mkdir(t, d, "e", 0o755)
	f.create(t, d, "file", "")
	for _, p := range []string{"", "/", "//", "/."} {
		fh, flavors, err := f.c.Mount(f.ctx, p)
		if err != nil || !bytes.Equal(fh, f.root) {
			t.Fatalf("mount %q: %v", p, err)
		}
		if len(flavors) != 2 || flavors[0] != 1 || flavors[1] != 0 {
			t.Fatalf("flavors %v", flavors)
		}
	}
	// A directory below the export: its handle is the one LOOKUP gives.
	fh, _, err := f.c.Mount(f.ctx, "/d/e")
	if err != nil || !bytes.Equal(fh, e) {
		t.Fatalf("mount /d/e: %v", err)
	}
	if _, _, err := f.c.Mount(f.ctx, "/missing"); err != proto.MountErrNoEnt {
		t.Fatalf("mount of a missing dir: %v", err)
	}
	if _, _, err := f.c.Mount(f.ctx, "/d/file"); err != proto.MountErrNotDir {
		t.Fatalf("mount of a file: %v", err)
	}
	dIno := f.lookup(t, f.root, "d").Attr.FileID
	// Named exports.
	f.srv.SetExports([]Export{{Path: "/fs-1", FS: f.fs}, {Path: "/fs-1/ro", FS: f.fs, Dir: "/d", ReadOnly: true}})
	if _, _, err := f.c.Mount(f.ctx, "/"); err != proto.MountErrNoEnt {
		t.Fatalf("mount / without such an export: %v", err)
	}
	if fh, _, err := f.c.Mount(f.ctx, "/fs-1/d"); err != nil {
		t.Fatalf("mount /fs-1/d: %v", err)
	} else if g, _ := f.c.GetAttr(f.ctx, fh); g.Attr.FileID != dIno {
		t.Fatal("/fs-1/d is not d")
	}
	// The longest export wins: /fs-1/ro is d, read-only.
	ro, _, err := f.c.Mount(f.ctx, "/fs-1/ro")
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := f.c.GetAttr(f.ctx, ro); g.Attr.FileID != dIno {
		t.Fatal("/fs-1/ro is not d")
	}
	_, err = f.c.Create(f.ctx, ro, "x", proto.Guarded, proto.Sattr{})
	wantStatus(t, err, proto.ErrROFS)
	// EXPORT lists both; DUMP lists our mounts; UMNT and UMNTALL forget.
	ex, err := f.c.Exports(f.ctx)
	if err != nil || len(ex) != 2 || ex[0].Dir != "/fs-1" || ex[1].Dir != "/fs-1/ro" {
		t.Fatalf("exports %+v %v", ex, err)
	}
	dump, err := f.c.Dump(f.ctx)
	if err != nil || len(dump) == 0 || dump[0].Host != "test" {
		t.Fatalf("dump %+v %v", dump, err)
	}
	n := len(dump)
	if err := f.c.Unmount(f.ctx, "/fs-1/ro"); err != nil {
		t.Fatal(err)
	}
	if dump, _ = f.c.Dump(f.ctx); len(dump) != n-1 {
		t.Fatalf("dump after umnt: %+v", dump)
	}
	if err := f.c.UnmountAll(f.ctx); err != nil {
		t.Fatal(err)
	}
	if dump, _ = f.c.Dump(f.ctx); len(dump) != 0 {
		t.Fatalf("dump after umntall: %+v", dump)
	}
	if err := f.c.Null(f.ctx, proto.ProgMount, proto.VersMount); err != nil {
		t.Fatal(err)
	}
}

func TestExportClients(t *testing.T) {
	f := newFixture(t, envOpt{})
	f.srv.SetExports([]Export{{Path: "/", FS: f.fs, Clients: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}})
	// 127.0.0.1 may not mount, nor use the handle it already has.
	if _, _, err := f.c.Mount(f.ctx, "/"); err != proto.MountErrAcces {
		t.Fatalf("mount from a disallowed client: %v", err)
	}
	_, err := f.c.GetAttr(f.ctx, f.root)
	wantStatus(t, err, proto.ErrAcces)
	c2 := f.dialFrom(t, "127.0.0.2")
	fh, _, err := c2.Mount(f.ctx, "/")
	if err != nil || !bytes.Equal(fh, f.root) {
		t.Fatalf("mount from 127.0.0.2: %v", err)
	}
	if _, err := c2.GetAttr(f.ctx, fh); err != nil {
		t.Fatal(err)
	}
	ex, _ := f.c.Exports(f.ctx)
	if len(ex) != 1 || len(ex[0].Groups) != 1 || ex[0].Groups[0] != "127.0.0.2/32" {
		t.Fatalf("exports %+v", ex)
	}
	// Removing the export makes its handles stale.
	f.srv.SetExports(nil)
	_, err = c2.GetAttr(f.ctx, fh)
	wantStatus(t, err, proto.ErrStale)
}

func TestAdmit(t *testing.T) {
	v := newEnv(t, envOpt{opts: Options{Admit: func(ap netip.AddrPort) bool { return ap.Addr() == netip.MustParseAddr("127.0.0.3") }}})
	bad := v.dialFrom(t, "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bad.Null(ctx, proto.ProgNFS, proto.VersNFS); err == nil {
		t.Fatal("a connection refused at accept answered")
	}
	good := v.dialFrom(t, "127.0.0.3")
	if err := good.Null(ctx, proto.ProgNFS, proto.VersNFS); err != nil {
		t.Fatal(err)
	}
}

// TestAccessPoint: an export of a sub-directory with its own identity,
// created at the first MOUNT; its handles keep both.
func TestAccessPoint(t *testing.T) {
	f := newFixture(t, envOpt{})
	other := f.mkdir(t, f.root, "other", 0o777)
	f.srv.SetExports([]Export{
		{Path: "/", FS: f.fs},
		{Path: "/ap", FS: f.fs, Dir: "/apps/app1", PosixUser: &engine.Cred{UID: 1001, GID: 1001, Groups: []uint32{5000}},
			CreateDir: &DirCreation{UID: 1001, GID: 1001, Mode: 0o750}},
	})
	// A client claiming root through the access point acts as 1001.
	ap, _, err := f.c.Mount(f.ctx, "/ap")
	if err != nil {
		t.Fatal(err)
	}
	g, _ := f.c.GetAttr(f.ctx, ap)
	if g.Attr.UID != 1001 || g.Attr.GID != 1001 || g.Attr.Mode != 0o750 {
		t.Fatalf("created access point dir %+v", g.Attr)
	}
	cr, err := f.c.Create(f.ctx, ap, "f", proto.Guarded, proto.Sattr{})
	if err != nil || cr.Attr.UID != 1001 || cr.Attr.GID != 1001 {
		t.Fatalf("create through the access point %+v %v", cr.Attr, err)
	}
	// The identity sticks to handles: chown to root is refused, a file
	// of another user cannot be changed.
	_, err = f.c.SetAttr(f.ctx, cr.FH, proto.Sattr{UID: ptr(uint32(0))}, nil)
	wantStatus(t, err, proto.ErrPerm)
	// ".." of the access point root is the access point root.
	if up := f.lookup(t, ap, ".."); !bytes.Equal(up.FH, ap) {
		t.Fatal(".. leaves the access point")
	}
	sub, err := f.c.Mkdir(f.ctx, ap, "sub", proto.Sattr{})
	if err != nil {
		t.Fatal(err)
	}
	if up := f.lookup(t, sub.FH, ".."); !bytes.Equal(up.FH, ap) {
		t.Fatal(".. of sub is not the access point root")
	}
	// A directory moved out of the access point (through the root
	// export) cannot lead back out through "..".
	apsub := f.lookup(t, f.lookup(t, f.lookup(t, f.root, "apps").FH, "app1").FH, "sub").FH
	if _, err := f.c.Rename(f.ctx, f.lookup(t, f.lookup(t, f.root, "apps").FH, "app1").FH, "sub", other, "sub"); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.Lookup(f.ctx, sub.FH, "..")
	wantStatus(t, err, proto.ErrAcces)
	rd, err := f.c.ReadDirPlus(f.ctx, sub.FH, 0, [8]byte{}, 4096, 8192)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rd.Entries {
		if e.Name == ".." && (e.FH != nil || e.Attr != nil) {
			t.Fatal("READDIRPLUS gives out the handle of a parent outside the access point")
		}
	}
	if bytes.Equal(apsub, sub.FH) {
		t.Fatal("the access point's handle equals the root export's handle")
	}
	// A root-export handle used by the access point's clients is the
	// root export's (not the access point's identity): the tag differs.
	rootF := f.lookup(t, f.lookup(t, f.lookup(t, f.root, "apps").FH, "app1").FH, "f")
	if bytes.Equal(rootF.FH, cr.FH) {
		t.Fatal("same handle through two exports")
	}
	// Mounting again resolves the same directory (no new one).
	ap2, _, err := f.c.Mount(f.ctx, "/ap")
	if err != nil || !bytes.Equal(ap, ap2) {
		t.Fatalf("second mount %v", err)
	}
	// The directory replaced by another: old handles stale.
	apps := f.lookup(t, f.root, "apps").FH
	f.c.Remove(f.ctx, f.lookup(t, apps, "app1").FH, "f")
	f.c.Rename(f.ctx, apps, "app1", f.root, "app1-old")
	ap3, _, err := f.c.Mount(f.ctx, "/ap")
	if err != nil || bytes.Equal(ap3, ap) {
		t.Fatalf("mount after replacing the dir: %v", err)
	}
	_, err = f.c.GetAttr(f.ctx, ap)
	wantStatus(t, err, proto.ErrStale)
}

func TestPortmap(t *testing.T) {
	f := newFixture(t, envOpt{})
	for _, prog := range []uint32{proto.ProgNFS, proto.ProgMount} {
		p, err := f.c.GetPort(f.ctx, prog, 3)
		if err != nil || int(p) != f.port {
			t.Fatalf("getport %d: %d %v", prog, p, err)
		}
	}
	if p, _ := f.c.GetPort(f.ctx, proto.ProgNLM, 4); p != 0 {
		t.Fatalf("NLM port %d", p)
	}
	if p, _ := f.c.GetPort(f.ctx, proto.ProgNFS, 4); p != 0 {
		t.Fatalf("NFSv4 port %d", p)
	}
	var udp proto.Uint32Res
	if err := f.c.Call(f.ctx, proto.ProgPortmap, 2, proto.PmapProcGetPort, &proto.Mapping{Prog: proto.ProgNFS, Vers: 3, Prot: proto.IPProtoUDP}, &udp); err != nil || udp.V != 0 {
		t.Fatalf("udp port %d %v", udp.V, err)
	}
	var dump proto.PmapDumpRes
	if err := f.c.Call(f.ctx, proto.ProgPortmap, 2, proto.PmapProcDump, proto.Void{}, &dump); err != nil || len(dump.Mappings) != 3 {
		t.Fatalf("pmap dump %+v %v", dump, err)
	}
	var set proto.BoolRes
	if err := f.c.Call(f.ctx, proto.ProgPortmap, 2, proto.PmapProcSet, &proto.Mapping{Prog: 1, Vers: 1, Prot: 6, Port: 1}, &set); err != nil || set.V {
		t.Fatalf("pmap set %v %v", set.V, err)
	}
	_, err := f.c.CallRaw(f.ctx, rpcHeader(proto.ProgPortmap, 2, proto.PmapProcCallIt), nil)
	wantReplyError(t, err, "PROC_UNAVAIL")
	_, err = f.c.CallRaw(f.ctx, rpcHeader(proto.ProgPortmap, 4, 0), nil)
	wantReplyError(t, err, "PROG_MISMATCH (versions 2-2)")
}
