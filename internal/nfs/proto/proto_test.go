package proto

import (
	"bytes"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// argTypes and resTypes make an empty argument and result of each
// procedure: NFS v3 0..21, then MOUNT v3 0..5, then portmap 0..4, then
// REGIONFS_CREATE (its result is a CreateRes) and REGIONFS_CLOSE.
var argTypes = []func() Message{
	func() Message { return Void{} },
	func() Message { return &GetAttrArgs{} },
	func() Message { return &SetAttrArgs{} },
	func() Message { return &LookupArgs{} },
	func() Message { return &AccessArgs{} },
	func() Message { return &ReadlinkArgs{} },
	func() Message { return &ReadArgs{} },
	func() Message { return &WriteArgs{} },
	func() Message { return &CreateArgs{} },
	func() Message { return &MkdirArgs{} },
	func() Message { return &SymlinkArgs{} },
	func() Message { return &MknodArgs{} },
	func() Message { return &RemoveArgs{} },
	func() Message { return &RmdirArgs{} },
	func() Message { return &RenameArgs{} },
	func() Message { return &LinkArgs{} },
	func() Message { return &ReadDirArgs{} },
	func() Message { return &ReadDirPlusArgs{} },
	func() Message { return &FSStatArgs{} },
	func() Message { return &FSInfoArgs{} },
	func() Message { return &PathConfArgs{} },
	func() Message { return &CommitArgs{} },
	func() Message { return Void{} },
	func() Message { return &DirPathArgs{} },
	func() Message { return Void{} },
	func() Message { return &DirPathArgs{} },
	func() Message { return Void{} },
	func() Message { return Void{} },
	func() Message { return Void{} },
	func() Message { return &Mapping{} },
	func() Message { return &Mapping{} },
	func() Message { return &Mapping{} },
	func() Message { return Void{} },
	func() Message { return &ExclusiveCreateArgs{} },
	func() Message { return &CloseArgs{} },
}

var resTypes = []func() Message{
	func() Message { return Void{} },
	func() Message { return &GetAttrRes{} },
	func() Message { return &SetAttrRes{} },
	func() Message { return &LookupRes{} },
	func() Message { return &AccessRes{} },
	func() Message { return &ReadlinkRes{} },
	func() Message { return &ReadRes{} },
	func() Message { return &WriteRes{} },
	func() Message { return &CreateRes{} },
	func() Message { return &MkdirRes{} },
	func() Message { return &SymlinkRes{} },
	func() Message { return &MknodRes{} },
	func() Message { return &RemoveRes{} },
	func() Message { return &RmdirRes{} },
	func() Message { return &RenameRes{} },
	func() Message { return &LinkRes{} },
	func() Message { return &ReadDirRes{} },
	func() Message { return &ReadDirPlusRes{} },
	func() Message { return &FSStatRes{} },
	func() Message { return &FSInfoRes{} },
	func() Message { return &PathConfRes{} },
	func() Message { return &CommitRes{} },
	func() Message { return Void{} },
	func() Message { return &MntRes{} },
	func() Message { return &DumpRes{} },
	func() Message { return Void{} },
	func() Message { return Void{} },
	func() Message { return &ExportRes{} },
	func() Message { return Void{} },
	func() Message { return &BoolRes{} },
	func() Message { return &BoolRes{} },
	func() Message { return &Uint32Res{} },
	func() Message { return &PmapDumpRes{} },
	func() Message { return &CloseRes{} },
}

// samples are valid encodings, one per procedure argument and result
// (seed corpus).
func samples() [][]byte {
	fh := FH(bytes.Repeat([]byte{7}, 64))
	mode := uint32(0o644)
	size := uint64(9)
	sa := Sattr{Mode: &mode, Size: &size, Mtime: SetTime{How: SetToClientTime, Time: Time{Sec: 5, Nsec: 6}}}
	at := &Attr{Type: TypeReg, Mode: 0o644, Nlink: 1, Size: 3, FileID: 9}
	wcc := Wcc{Before: &WccAttr{Size: 1}, After: at}
	msgs := []Message{
		&FHArgs{FH: fh},
		&SetAttrArgs{FH: fh, Attr: sa, Guard: &Time{Sec: 1}},
		&DirOp{Dir: fh, Name: "name"},
		&AccessArgs{FH: fh, Access: 0x3f},
		&ReadArgs{FH: fh, Offset: 1 << 33, Count: 4096},
		&WriteArgs{FH: fh, Offset: 3, Count: 5, Stable: FileSync, Data: []byte("hello")},
		&CreateArgs{Where: DirOp{Dir: fh, Name: "c"}, Mode: Guarded, Attr: sa},
		&CreateArgs{Where: DirOp{Dir: fh, Name: "c"}, Mode: Exclusive, Verf: [8]byte{1}},
		&ExclusiveCreateArgs{Where: DirOp{Dir: fh, Name: "c"}, Verf: [8]byte{1, 2}, Attr: Sattr{Mode: &mode}},
		&CloseArgs{Write: WriteArgs{FH: fh, Offset: 3, Count: 5, Stable: Unstable, Data: []byte("hello")}, Attr: sa},
		&MkdirArgs{Where: DirOp{Dir: fh, Name: "d"}, Attr: sa},
		&SymlinkArgs{Where: DirOp{Dir: fh, Name: "l"}, Target: "/t"},
		&MknodArgs{Where: DirOp{Dir: fh, Name: "n"}, Type: TypeChr, Major: 1, Minor: 2},
		&RenameArgs{From: DirOp{Dir: fh, Name: "a"}, To: DirOp{Dir: fh, Name: "b"}},
		&LinkArgs{FH: fh, Link: DirOp{Dir: fh, Name: "h"}},
		&ReadDirArgs{FH: fh, Cookie: 3, Count: 4096},
		&ReadDirPlusArgs{FH: fh, Cookie: 3, DirCount: 512, MaxCount: 4096},
		&CommitArgs{FH: fh},
		&DirPathArgs{Path: "/export"},
		&Mapping{Prog: ProgNFS, Vers: 3, Prot: IPProtoTCP},
		&GetAttrRes{Attr: *at},
		&WccRes{Status: ErrAcces, Wcc: wcc},
		&LookupRes{FH: fh, Attr: at, DirAttr: at},
		&AccessRes{Attr: at, Access: 3},
		&ReadlinkRes{Attr: at, Target: "x"},
		&ReadRes{Attr: at, Count: 3, EOF: true, Data: []byte("abc")},
		&WriteRes{Wcc: wcc, Count: 3, Committed: Unstable},
		&CreateRes{FH: fh, Attr: at, DirWcc: wcc},
		&RenameRes{FromWcc: wcc, ToWcc: wcc},
		&LinkRes{Attr: at, DirWcc: wcc},
		&ReadDirRes{DirAttr: at, Entries: []DirEntry{{FileID: 1, Name: ".", Cookie: 1}}, EOF: true},
		&ReadDirPlusRes{DirAttr: at, Entries: []DirEntry{{FileID: 1, Name: "x", Cookie: 3, Attr: at, FH: fh}}},
		&FSStatRes{Attr: at, TBytes: 1},
		&FSInfoRes{Attr: at, RTMax: 1 << 20},
		&PathConfRes{Attr: at, NameMax: 255},
		&CommitRes{Wcc: wcc},
		&MntRes{FH: fh, Flavors: []uint32{1, 0}},
		&DumpRes{Entries: []MountEntry{{Host: "h", Path: "/"}}},
		&ExportRes{Entries: []ExportEntry{{Dir: "/", Groups: []string{"10.0.0.0/8"}}}},
		&PmapDumpRes{Mappings: []Mapping{{Prog: 1, Vers: 2, Prot: 6, Port: 3}}},
		&CloseRes{Write: WriteRes{Wcc: wcc, Count: 3, Committed: Unstable}, SetAttr: SetAttrRes{Status: ErrPerm, Wcc: wcc}, Commit: CommitRes{Wcc: wcc}},
	}
	var out [][]byte
	for _, m := range msgs {
		out = append(out, Marshal(nil, m))
	}
	return out
}

// TestRoundTrips: every sample decodes as its own type and re-encodes to
// the same bytes.
func TestRoundTrips(t *testing.T) {
	found := 0
	for _, b := range samples() {
		for _, types := range [][]func() Message{argTypes, resTypes} {
			for _, mk := range types {
				m := mk()
				if Unmarshal(b, m) != nil {
					continue
				}
				if bytes.Equal(Marshal(nil, m), b) {
					found++
				}
			}
		}
	}
	if found < len(samples()) {
		t.Fatalf("only %d round trips for %d samples", found, len(samples()))
	}
}

// FuzzDecode decodes arbitrary bytes as every argument and result type:
// never a panic, and whatever decodes re-encodes to something that
// decodes to the same encoding again.
func FuzzDecode(f *testing.F) {
	for _, b := range samples() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, types := range [][]func() Message{argTypes, resTypes} {
			for i, mk := range types {
				m := mk()
				d := xdr.NewDecoder(in)
				m.Decode(d)
				if d.Err() != nil {
					continue
				}
				if d.Offset() > len(in) {
					t.Fatalf("type %d read past the input", i)
				}
				enc := Marshal(nil, m)
				m2 := mk()
				if err := Unmarshal(enc, m2); err != nil {
					t.Fatalf("type %d: re-encoding does not decode: %v", i, err)
				}
				if !bytes.Equal(Marshal(nil, m2), enc) {
					t.Fatalf("type %d: encoding not stable", i)
				}
			}
		}
	})
}

// TestTimeRange: nfstime3's seconds are unsigned 32 bits. TimeExact
// converts the times it can hold exactly and refuses the others (the
// mount's SETATTR answers EINVAL); TimeOf clamps them (the server's own
// times).
func TestTimeRange(t *testing.T) {
	for _, c := range []struct {
		t     time.Time
		exact bool
		clamp Time
	}{
		{time.Unix(0, 0), true, Time{}},
		{time.Unix(1<<31, 5), true, Time{Sec: 1 << 31, Nsec: 5}},
		{time.Unix(1<<32-1, 999999999), true, Time{Sec: 1<<32 - 1, Nsec: 999999999}},
		{time.Unix(-1, 999999999), false, Time{}},
		{time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), false, Time{}},
		{time.Unix(1<<32, 0), false, Time{Sec: 1<<32 - 1, Nsec: 999999999}},
	} {
		got, ok := TimeExact(c.t)
		if ok != c.exact || ok && got != c.clamp {
			t.Errorf("TimeExact(%v) = %v, %v; want exact %v", c.t, got, ok, c.exact)
		}
		if got := TimeOf(c.t); got != c.clamp {
			t.Errorf("TimeOf(%v) = %v, want %v", c.t, got, c.clamp)
		}
	}
}
