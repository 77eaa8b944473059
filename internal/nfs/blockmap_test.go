package nfs

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// TestReadBlockMapStale: a sequential reader's READs come from the
// engine's block map of the file (engine/blockmap.go) and the
// read-ahead's chunks, both current only while the file is unchanged.
// Each case reads the first blocks through a client (the map and a
// chunk ahead are then made), changes the file under the server — in
// the engine, as a replica's apply or another server of the file system
// does, so the server's own WRITE bookkeeping does not drop the
// read-ahead — and reads on: the new content, size or permission at
// once. A map served after the change fails it: GetAttr from a stale map
// would vouch for the read-ahead's stale chunk too (checked with the
// store's change count left out of pipelined commits, which the
// engine's transactions use: every case fails).
func TestReadBlockMapStale(t *testing.T) {
	const n = 8
	other := engine.Cred{UID: 1000, GID: 1000}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, f *fixture, ino uint64, want []byte) []byte
		cred   uint32 // the reader's uid
		err    error  // what block 3's READ answers
	}{
		{name: "overwrite", change: func(t *testing.T, f *fixture, ino uint64, want []byte) []byte {
			blk := bytes.Repeat([]byte{0xab}, 1<<20)
			if _, _, err := f.fs.Write(f.ctx, engine.RootCred, ino, 3<<20, blk); err != nil {
				t.Fatal(err)
			}
			return append(append(want[:3<<20:3<<20], blk...), want[4<<20:]...)
		}},
		{name: "truncate", change: func(t *testing.T, f *fixture, ino uint64, want []byte) []byte {
			size := uint64(3<<20 + 5)
			if _, _, err := f.fs.SetAttr(f.ctx, engine.RootCred, ino, engine.SetAttr{Size: &size}, nil); err != nil {
				t.Fatal(err)
			}
			return want[:size]
		}},
		{name: "truncate and grow", change: func(t *testing.T, f *fixture, ino uint64, want []byte) []byte {
			for _, size := range []uint64{3 << 20, n << 20} {
				if _, _, err := f.fs.SetAttr(f.ctx, engine.RootCred, ino, engine.SetAttr{Size: &size}, nil); err != nil {
					t.Fatal(err)
				}
			}
			return append(want[:3<<20:3<<20], make([]byte, (n-3)<<20)...)
		}},
		{name: "chmod", cred: other.UID, err: proto.ErrAcces, change: func(t *testing.T, f *fixture, ino uint64, want []byte) []byte {
			mode := uint32(0o600)
			if _, _, err := f.fs.SetAttr(f.ctx, engine.RootCred, ino, engine.SetAttr{Mode: &mode}, nil); err != nil {
				t.Fatal(err)
			}
			return want
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, envOpt{})
			fh := blocksFile(t, f, n)
			mode := uint32(0o644)
			if _, err := f.c.SetAttr(f.ctx, fh, proto.Sattr{Mode: &mode}, nil); err != nil {
				t.Fatal(err)
			}
			c := f.c
			if tc.cred != 0 {
				c = f.dialAs(tc.cred, tc.cred)
			}
			a, err := f.fs.Lookup(f.ctx, engine.RootCred, engine.RootIno, "f")
			if err != nil {
				t.Fatal(err)
			}
			want := blocksContent(n)
			before := f.fs.Stats()
			for i := range 3 {
				rd, err := c.Read(f.ctx, fh, uint64(i)<<20, 1<<20)
				if err != nil || !bytes.Equal(rd.Data, want[i<<20:(i+1)<<20]) {
					t.Fatalf("READ %d before the change: %d bytes, %v", i, len(rd.Data), err)
				}
			}
			if st := f.fs.Stats(); st.MapReads == before.MapReads {
				t.Fatalf("no READ came from a block map (%d maps read)", st.MapFills-before.MapFills)
			}
			want = tc.change(t, f, a.Ino, want)
			for i := 3; i < n; i++ {
				rd, err := c.Read(f.ctx, fh, uint64(i)<<20, 1<<20)
				if tc.err != nil {
					if !errors.Is(err, tc.err) {
						t.Fatalf("READ %d after the change: %v, want %v", i, err, tc.err)
					}
					return
				}
				lo, hi := min(i<<20, len(want)), min((i+1)<<20, len(want))
				if err != nil || !bytes.Equal(rd.Data, want[lo:hi]) || rd.EOF != (hi == len(want)) ||
					rd.Attr == nil || rd.Attr.Size != uint64(len(want)) {
					t.Fatalf("READ %d after the change: %d bytes (want %d, equal %v), eof %v, %v",
						i, len(rd.Data), hi-lo, bytes.Equal(rd.Data, want[lo:hi]), rd.EOF, err)
				}
			}
		})
	}
}

// TestReadAfterRemoveAndRecreate: a file read sequentially (its block
// map made, a chunk read ahead) is removed and a file of the same name
// and size made again with other data. READs of the old handle answer
// NFS3ERR_STALE, not the new file's data nor the old read-ahead's, and
// READs of the new handle get the new data from the first block on.
func TestReadAfterRemoveAndRecreate(t *testing.T) {
	const n = 8
	f := newFixture(t, envOpt{})
	old := blocksFile(t, f, n)
	for i := range 3 {
		if _, err := f.c.Read(f.ctx, old, uint64(i)<<20, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.c.Remove(f.ctx, f.root, "f"); err != nil {
		t.Fatal(err)
	}
	r, err := f.c.Create(f.ctx, f.root, "f", proto.Guarded, proto.Sattr{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		blk := bytes.Repeat([]byte{byte(0x80 + i)}, 1<<20)
		if _, err := f.c.Write(f.ctx, r.FH, uint64(i)<<20, blk, proto.FileSync); err != nil {
			t.Fatal(err)
		}
	}
	for i := 3; i < n; i++ {
		if rd, err := f.c.Read(f.ctx, old, uint64(i)<<20, 1<<20); !errors.Is(err, proto.ErrStale) {
			t.Fatalf("READ %d of the removed file's handle: %d bytes, %v; want NFS3ERR_STALE", i, len(rd.Data), err)
		}
	}
	for i := range n {
		rd, err := f.c.Read(f.ctx, r.FH, uint64(i)<<20, 1<<20)
		if err != nil || len(rd.Data) != 1<<20 || rd.Data[0] != byte(0x80+i) || rd.Data[len(rd.Data)-1] != byte(0x80+i) {
			t.Fatalf("READ %d of the new file: %d bytes, %v", i, len(rd.Data), err)
		}
	}
}

// TestReplicaReadAfterApply: a client reading a replica's file
// sequentially (the replica's block map made, a chunk read ahead) reads
// on after the replica applied the source's overwrite of the next block:
// it gets the new block at once, and the old data of the blocks the
// overwrite left. The server's own WRITE bookkeeping knows nothing of an
// apply; only the engine's change count and the file's attributes can
// tell.
func TestReplicaReadAfterApply(t *testing.T) {
	const n = 8
	f := newFixture(t, envOpt{})
	if err := f.fs.Replica().SetPin("rep", 1); err != nil {
		t.Fatal(err)
	}
	fh := blocksFile(t, f, n)
	rep, err := f.e.CreateReplica(f.ctx, "rep", "")
	if err != nil {
		t.Fatal(err)
	}
	last := shipRecords(t, f.fs, rep, 0)
	f.srv.SetExports([]Export{{Path: "/", FS: f.fs}, {Path: "/rep", FS: rep, ReadOnly: true}})
	rc := f.dial()
	lr, err := rc.Lookup(f.ctx, f.mount(rc, "/rep"), "f")
	if err != nil {
		t.Fatal(err)
	}
	want := blocksContent(n)
	before := rep.Stats()
	for i := range 3 {
		rd, err := rc.Read(f.ctx, lr.FH, uint64(i)<<20, 1<<20)
		if err != nil || !bytes.Equal(rd.Data, want[i<<20:(i+1)<<20]) {
			t.Fatalf("replica READ %d before the apply: %d bytes, %v", i, len(rd.Data), err)
		}
	}
	if st := rep.Stats(); st.MapReads == before.MapReads {
		t.Fatalf("no replica READ came from a block map (%d maps read)", st.MapFills-before.MapFills)
	}
	blk := bytes.Repeat([]byte{0xef}, 1<<20)
	if _, err := f.c.Write(f.ctx, fh, 3<<20, blk, proto.FileSync); err != nil {
		t.Fatal(err)
	}
	copy(want[3<<20:], blk)
	shipRecords(t, f.fs, rep, last)
	for i := 3; i < n; i++ {
		rd, err := rc.Read(f.ctx, lr.FH, uint64(i)<<20, 1<<20)
		if err != nil || !bytes.Equal(rd.Data, want[i<<20:(i+1)<<20]) {
			t.Fatalf("replica READ %d after the apply: %d bytes (equal %v), %v", i, len(rd.Data), bytes.Equal(rd.Data, want[i<<20:(i+1)<<20]), err)
		}
	}
}

// blocksContent is the content blocksFile writes in a file of n blocks.
func blocksContent(n int) []byte {
	want := make([]byte, 0, n<<20)
	for i := range n {
		b := blockData()
		b[0] = byte(i)
		want = append(want, b...)
	}
	return want
}

// shipRecords applies src's journal records after seq from to the
// replica dst, with the blocks dst lacks, and returns the last seq.
func shipRecords(t *testing.T, src, dst *engine.FS, from uint64) uint64 {
	t.Helper()
	ctx := context.Background()
	recs, err := src.Replica().ReadJournal(ctx, from+1, 1000, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	for range 2*len(recs) + 1 {
		seq, err := dst.Replica().Apply(ctx, recs)
		var mb *engine.MissingBlocksError
		if !errors.As(err, &mb) {
			if err != nil {
				t.Fatal(err)
			}
			return seq
		}
		for _, id := range mb.IDs {
			data, err := src.Replica().BlockView(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := dst.Replica().PutBlock(ctx, id, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatal("blocks still missing after pushing them")
	return 0
}
