package nfs

import (
	"bytes"
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
			want := make([]byte, 0, n<<20)
			for i := range n {
				b := blockData()
				b[0] = byte(i)
				want = append(want, b...)
			}
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
