package replication

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
)

// TestInitialSyncResumesAcrossRanges: an initial sync read in several
// ranges at once (SyncReaders 2, ranges of 1024 inodes) whose stream is
// cut again and again, and whose destination crashes, resumes each time
// at the replica's cursor, wherever it lies in a range, and ends with a
// replica equal to the source: the chunks reach the destination in key
// order across range boundaries and reconnections.
func TestInitialSyncResumesAcrossRanges(t *testing.T) {
	const files = 3000
	ctx := t.Context()
	a, b, px := proxiedPair(t, func(o *Options) { o.SyncReaders = 2; o.StreamIdle = 700 * time.Millisecond })
	src, err := a.e.CreateFS(ctx, "fs-src", engine.FSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 300)
	for i := range files {
		c, err := src.Create(ctx, engine.RootCred, engine.RootIno, fmt.Sprintf("f%05d", i), engine.CreateGuarded, engine.SetAttr{}, 0)
		if err == nil {
			data[0] = byte(i)
			_, _, err = src.Write(ctx, engine.RootCred, c.Attr.Ino, 0, data)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	px.SetDelay(time.Millisecond)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	// Cut the stream as the replica's cursor passes inodes on either
	// side of the range boundaries (1024, 2048).
	targets := []uint64{300, 1000, 1030, 2040, 2060, 2900}
	cuts := 0
	var last []byte
	for deadline := time.Now().Add(60 * time.Second); cuts < len(targets) && time.Now().Before(deadline); {
		rep := b.rep("fs-dst")
		ss := rep.SyncState()
		if !ss.Active && rep.Consistent() {
			break
		}
		c := ss.Cursor
		if ss.Active && len(c) >= 9 && c[0] == 'I' && binary.BigEndian.Uint64(c[1:9]) >= targets[cuts] || len(c) > 0 && c[0] > 'I' {
			last = c
			if cuts == 2 {
				b.crash()
				b.restart(inboundR1(a))
			} else {
				px.Reset()
			}
			cuts++
			for cuts < len(targets) && len(c) >= 9 && c[0] == 'I' && binary.BigEndian.Uint64(c[1:9]) >= targets[cuts] {
				cuts++ // passed by one chunk
			}
		}
		time.Sleep(2 * time.Millisecond) // poll the cursor
	}
	t.Logf("stream cut %d times during the sync (cursor %x)", cuts, last)
	if cuts < 4 {
		t.Fatalf("the sync was cut only %d times: it ended too fast to test resumption", cuts)
	}
	px.SetDelay(0)
	converged(t, src, b.fs("fs-dst"))
	if err := b.rep("fs-dst").Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
}
