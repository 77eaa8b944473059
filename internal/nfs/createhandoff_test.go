package nfs

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/race"
)

// TestSmallFileCreateHandOffs is the hand-off guard of the create probe
// of issue 16 (counted, not timed): a client making small files one at a
// time (CREATE, a 4 KiB FILE_SYNC WRITE, COMMIT) has its COMMITs, which
// find nothing buffered, answered by the connection's reader, without a
// hand-off to a worker (a worker's wake-up and the reader's park each);
// CREATE and WRITE, which wait for a durable commit, still go to a
// worker, so that the reader keeps reading a pipelining client's
// requests. Over TCP without TLS, the reader reads the next request with
// raw system calls while the only request in process is its own
// connection's (loneReader), which do not wake the Go runtime's monitor:
// at least a raw read and a raw writev per request. It fails when every
// COMMIT is handed off (60 of 60), and when the reads after a hand-off go
// through net.Conn (4 raw calls per file, both tried).
func TestSmallFileCreateHandOffs(t *testing.T) {
	f := newFixture(t, envOpt{dir: t.TempDir()})
	dir := f.mkdir(t, f.root, "d", 0o755)
	data := make([]byte, 4<<10)
	const files = 20
	here, handed, raw := f.srv.answeredHere.Load(), f.srv.handedOff.Load(), f.srv.rawCalls.Load()
	for i := range files {
		binary.LittleEndian.PutUint64(data, uint64(i))
		r, err := f.c.Create(f.ctx, dir, fmt.Sprintf("f%d", i), proto.Guarded, proto.Sattr{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.c.Write(f.ctx, r.FH, 0, data, proto.FileSync); err != nil {
			t.Fatal(err)
		}
		if _, err := f.c.Commit(f.ctx, r.FH, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	here, handed, raw = f.srv.answeredHere.Load()-here, f.srv.handedOff.Load()-handed, f.srv.rawCalls.Load()-raw
	t.Logf("%d files: %d requests answered by the reader, %d handed to workers, %d raw socket calls", files, here, handed, raw)
	if here != files || handed != 2*files {
		t.Errorf("%d files: %d requests answered by the reader and %d handed to workers, want %d (the COMMITs) and %d (CREATE, WRITE)",
			files, here, handed, files, 2*files)
	}
	// One file in ten may see a read through the runtime (a request
	// still counted in process when its reply's client answers).
	if want := 6*files - files/10*2; raw < uint64(want) && !race.Enabled {
		t.Errorf("%d files: %d raw socket calls, want at least %d (a read and a writev per request)", files, raw, want)
	}
}
