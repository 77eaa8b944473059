package fuse

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/testkit"
)

// slowRenames delays the client's RENAME calls on their way out.
type slowRenames struct {
	net.Conn
	delay time.Duration
}

func (c slowRenames) Write(b []byte) (int, error) {
	if len(b) > rpc.RecordHeaderSize {
		if h, _, err := rpc.ParseCall(b[rpc.RecordHeaderSize:]); err == nil && h.Prog == proto.ProgNFS && h.Proc == proto.ProcRename {
			time.Sleep(c.delay)
		}
	}
	return c.Conn.Write(b)
}

// TestUnlinkRacingLastClose: a file unlinked while open is renamed aside
// until its last close; when that close ends while the rename is on its
// way (the kernel releases a file after close(2) returns), the temporary
// name still goes.
func TestUnlinkRacingLastClose(t *testing.T) {
	m := newMountSpace(t, nil, func(m *testMount) {
		m.wrap = func(nc net.Conn) net.Conn { return slowRenames{nc, 300 * time.Millisecond} }
	})
	name := filepath.Join(m.dir, "f")
	if err := os.WriteFile(name, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	removed := make(chan error, 1)
	go func() { removed <- os.Remove(name) }()
	time.Sleep(100 * time.Millisecond) // the RENAME aside is on its way
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the temporary name to go", 10*time.Second, func() bool {
		left, _ := filepath.Glob(filepath.Join(m.dir, ".regionfs-unlinked-*"))
		return len(left) == 0
	})
}
