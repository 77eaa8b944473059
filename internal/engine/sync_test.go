package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// syncer runs an initial sync the way a replication sender does: chunks of
// at most chunkKeys keys, a fresh snapshot every snapEvery chunks, missing
// blocks pushed when the replica asks for them.
type syncer struct {
	t         testing.TB
	src, dst  *FS
	chunkKeys int
	snapEvery int
	chunks    int
	// batch: the chunks of each snapshot go to IngestAll together (as a
	// receiver hands it the chunks that arrived together); calls counts
	// the calls that committed something.
	batch bool
	calls int
	// splitInodes: chunks also end at the cuts of Snapshot.Splits with
	// this many inodes per range (as a source that reads ranges at once).
	splitInodes uint64
}

// run ingests chunks until the sync is done or stopAfter chunks were sent
// (0 = no limit), calling between after each snapshot is released.
func (s *syncer) run(ctx context.Context, stopAfter int, between func()) bool {
	s.t.Helper()
	sent := 0
	for {
		cursor := s.dst.Replica().SyncState().Cursor
		snap, err := s.src.Replica().Snapshot(ctx)
		if err != nil {
			s.t.Fatal(err)
		}
		var cs []SyncChunk
		last, stop := false, false
		for range s.snapEvery {
			c := s.chunk(snap, cursor)
			cs = append(cs, c)
			s.chunks++
			sent++
			if c.Hi == nil {
				last = true
				break
			}
			cursor = c.Hi
			if stopAfter > 0 && sent >= stopAfter {
				stop = true
				break
			}
		}
		snap.Close()
		if s.batch {
			s.ingestAll(ctx, cs)
		} else {
			for _, c := range cs {
				s.ingest(ctx, c)
			}
		}
		if last {
			return true
		}
		if stop {
			return false
		}
		if between != nil {
			between()
		}
	}
}

func (s *syncer) chunk(snap *Snapshot, lo []byte) SyncChunk {
	s.t.Helper()
	var end []byte // the range's end (nil: to the end)
	if s.splitInodes > 0 {
		cuts, err := snap.Splits(lo, s.splitInodes)
		if err != nil {
			s.t.Fatal(err)
		}
		if len(cuts) > 0 {
			end = cuts[0]
		}
	}
	it, err := snap.Iter(lo, end)
	if err != nil {
		s.t.Fatal(err)
	}
	defer it.Close()
	c := SyncChunk{Seq: snap.Seq, Epoch: snap.Epoch, Time: snap.Time, Lo: bytes.Clone(lo), Hi: end}
	for ok := it.First(); ok; ok = it.Next() {
		if len(c.Pairs) == s.chunkKeys {
			c.Hi = bytes.Clone(it.Key())
			break
		}
		v, err := it.Value()
		if err != nil {
			s.t.Fatal(err)
		}
		c.Pairs = append(c.Pairs, Mutation{Key: bytes.Clone(it.Key()), Value: bytes.Clone(v)})
	}
	if err := it.Error(); err != nil {
		s.t.Fatal(err)
	}
	return c
}

func (s *syncer) ingest(ctx context.Context, c SyncChunk) {
	s.t.Helper()
	for range 3 {
		_, err := s.dst.Replica().Ingest(ctx, c)
		var mb *MissingBlocksError
		if !errors.As(err, &mb) {
			if err != nil {
				s.t.Fatalf("ingest: %v", err)
			}
			return
		}
		for _, id := range mb.IDs {
			if err := s.dst.Replica().PutBlock(ctx, id, must(s.src.Replica().getBlock(ctx, id))(s.t)); err != nil {
				s.t.Fatal(err)
			}
		}
	}
	s.t.Fatal("blocks still missing after pushing them")
}

// ingestAll ingests cs with IngestAll, pushing the blocks it asks for and
// calling it again with the chunks from the replica's cursor on.
func (s *syncer) ingestAll(ctx context.Context, cs []SyncChunk) {
	s.t.Helper()
	for range 3 * len(cs) {
		_, err := s.dst.Replica().IngestAll(ctx, cs)
		s.calls++
		var mb *MissingBlocksError
		if !errors.As(err, &mb) {
			if err != nil {
				s.t.Fatalf("ingest: %v", err)
			}
			return
		}
		for _, id := range mb.IDs {
			if err := s.dst.Replica().PutBlock(ctx, id, must(s.src.Replica().getBlock(ctx, id))(s.t)); err != nil {
				s.t.Fatal(err)
			}
		}
		cur := s.dst.Replica().SyncState().Cursor
		for len(cs) > 0 && cs[0].Hi != nil && bytes.Compare(cs[0].Hi, cur) <= 0 {
			cs = cs[1:]
		}
	}
	s.t.Fatal("blocks still missing after pushing them")
}

// caughtUpEqual catches dst up with src's journal (catchUp) and fails
// unless both then have the same checksum at the same seq, which it
// returns. The source may commit on its own between the catching up and
// its checksum (maintenance releasing an unlinked file's data, op
// "release"): a source checksum at a later seq than the replica's
// catches up again, a few times.
func caughtUpEqual(t testing.TB, ctx context.Context, src, dst *FS) uint64 {
	t.Helper()
	for try := 0; ; try++ {
		catchUp(t, ctx, src, dst)
		sseq, ssum := must3(src.Replica().Checksum(ctx))(t)
		dseq, dsum := must3(dst.Replica().Checksum(ctx))(t)
		if sseq == dseq && ssum == dsum {
			return sseq
		}
		if sseq > dseq && try < 10 {
			continue
		}
		t.Fatalf("replica at %d differs from the source at %d", dseq, sseq)
	}
}

// catchUp ships the source's journal from the replica's applied point on.
func catchUp(t testing.TB, ctx context.Context, src, dst *FS) uint64 {
	t.Helper()
	_, applied, _ := dst.Replica().Applied()
	for applied < src.Replica().DurableSeq() {
		recs, err := src.Replica().ReadJournal(ctx, applied+1, 50, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		applied = ship(t, ctx, src, dst, recs)
	}
	return applied
}

func TestInitialSync(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		chunkKeys, snapEvery int
		dstKey               string
		crashAt              int // crash the engine after this many chunks (0 = never)
		batch                bool
		splitInodes          uint64 // chunks end at Snapshot.Splits cuts too
	}{
		{name: "one-snapshot", chunkKeys: 1 << 20, snapEvery: 1},
		{name: "small-chunks-many-snapshots", chunkKeys: 7, snapEvery: 3},
		{name: "encrypted-replica", chunkKeys: 13, snapEvery: 2, dstKey: "alias/aws/elasticfilesystem"},
		{name: "crash-and-resume", chunkKeys: 5, snapEvery: 2, crashAt: 9},
		{name: "batched", chunkKeys: 7, snapEvery: 6, batch: true},
		{name: "batched-encrypted", chunkKeys: 11, snapEvery: 4, dstKey: "alias/aws/elasticfilesystem", batch: true},
		{name: "batched-crash-and-resume", chunkKeys: 5, snapEvery: 4, crashAt: 9, batch: true},
		{name: "split-ranges", chunkKeys: 9, snapEvery: 3, splitInodes: 4},
		{name: "split-ranges-batched-crash-and-resume", chunkKeys: 5, snapEvery: 4, crashAt: 9, batch: true, splitInodes: 8, dstKey: "alias/aws/elasticfilesystem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			v := newEnv(t, modelOpts)
			must(v.e.CreateFS(ctx, "src", FSOptions{BlockSize: MinBlockSize}))(t)
			src := func() *FS { return v.fs("src") }
			seed := uint64(len(tc.name))
			t.Logf("seed %d", seed)
			r := &runner{t: t, rng: rand.New(rand.NewPCG(seed, 2)), fs: src, m: newModel(), bs: MinBlockSize}
			for range 120 {
				r.do(ctx)
			}
			must(v.e.CreateReplica(ctx, "dst", tc.dstKey))(t)
			dst := func() *FS { return v.fs("dst") }
			// The sync pins the source's journal from its first snapshot.
			if err := src().Replica().SetPin("sync", src().Replica().DurableSeq()+1); err != nil {
				t.Fatal(err)
			}
			s := &syncer{t: t, src: src(), dst: dst(), chunkKeys: tc.chunkKeys, snapEvery: tc.snapEvery, batch: tc.batch, splitInodes: tc.splitInodes}
			commits := dst().Stats().Commits
			writes := func() {
				for range 5 {
					r.do(ctx)
				}
				// Not readable, not promotable, refuses records mid-sync.
				if _, err := dst().GetAttr(ctx, RootIno); !errors.Is(err, ErrNotReady) {
					t.Fatalf("replica readable during its initial sync: %v", err)
				}
				_, err := dst().Replica().Promote(ctx)
				wantErr(t, err, ErrNotReady)
			}
			if tc.crashAt > 0 {
				if s.run(ctx, tc.crashAt, writes) {
					t.Fatal("sync finished before the crash point")
				}
				before := dst().Replica().SyncState()
				v.crash()
				after := dst().Replica().SyncState()
				if !after.Active || !bytes.Equal(after.Cursor, before.Cursor) || after.Base != before.Base {
					t.Fatalf("sync state after crash %+v, before %+v", after, before)
				}
				// A chunk that was ingested already is skipped, not an error.
				s = &syncer{t: t, src: src(), dst: dst(), chunkKeys: tc.chunkKeys, snapEvery: tc.snapEvery, batch: tc.batch, splitInodes: tc.splitInodes}
				commits = dst().Stats().Commits
			}
			s.run(ctx, 0, writes)
			// Regression guard: chunks handed over together cost one
			// commit (each cost its own, an fsync each, before).
			if n := dst().Stats().Commits - commits; tc.batch && (n > uint64(s.calls) || s.calls >= s.chunks) {
				t.Fatalf("%d chunks in %d IngestAll calls took %d commits, want at most one per call", s.chunks, s.calls, n)
			}
			st := dst().Replica().SyncState()
			if st.Active || st.Top < st.Base {
				t.Fatalf("sync state after the last chunk: %+v", st)
			}
			if tc.snapEvery > 1 && st.Top == st.Base && s.chunks > tc.snapEvery {
				t.Fatalf("chunks came from several snapshots but base = top = %d", st.Base)
			}
			// Replay to the source's durable point; consistent from Top on.
			if st.Top > st.Base {
				if _, err := dst().GetAttr(ctx, RootIno); !errors.Is(err, ErrNotReady) {
					t.Fatalf("replica readable before its consistent point: %v", err)
				}
			}
			for range 10 {
				r.do(ctx)
			}
			sseq := caughtUpEqual(t, ctx, src(), dst())
			want := must(dumpFS(ctx, src()))(t)
			got := must(dumpFS(ctx, dst()))(t)
			if d := diffDumps(want, got); d != "" {
				t.Fatalf("replica tree differs:\n%s", d)
			}
			if err := dst().Replica().Verify(ctx, true); err != nil {
				t.Fatal(err)
			}
			// A retried last chunk is harmless; promotion works.
			if _, err := dst().Replica().Ingest(ctx, SyncChunk{Seq: st.Base, Epoch: 1}); err != nil {
				t.Fatalf("retried last chunk: %v", err)
			}
			rp := must(dst().Replica().Promote(ctx))(t)
			if rp.Seq != sseq {
				t.Fatalf("recovery point %d, want %d", rp.Seq, sseq)
			}
			must(dst().Mkdir(ctx, RootCred, RootIno, "after-promotion", SetAttr{}))(t)
		})
	}
}

func TestIngestRules(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	src := v.mkfs("src")
	must(src.Mkdir(ctx, RootCred, RootIno, "d", SetAttr{}))(t)
	dst := must(v.e.CreateReplica(ctx, "dst", ""))(t)
	snap := must(src.Replica().Snapshot(ctx))(t)
	defer snap.Close()
	s := &syncer{t: t, src: src, dst: dst, chunkKeys: 2, snapEvery: 1}
	first := s.chunk(snap, nil)
	for _, tc := range []struct {
		name string
		c    SyncChunk
		want error
	}{
		{"no seq", SyncChunk{Epoch: 1}, ErrInvalid},
		{"unsorted", SyncChunk{Seq: 1, Epoch: 1, Pairs: []Mutation{{Key: []byte("M2")}, {Key: []byte("M1")}}}, ErrInvalid},
		{"delete", SyncChunk{Seq: 1, Epoch: 1, Pairs: []Mutation{{Key: []byte("M1"), Delete: true}}}, ErrInvalid},
		{"local key", SyncChunk{Seq: 1, Epoch: 1, Pairs: []Mutation{{Key: []byte("l1")}}}, ErrInvalid},
		{"outside range", SyncChunk{Seq: 1, Epoch: 1, Hi: []byte("M"), Pairs: []Mutation{{Key: []byte("M1")}}}, ErrInvalid},
		{"not at cursor", SyncChunk{Seq: 1, Epoch: 1, Lo: []byte("M"), Hi: []byte("N")}, ErrGap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dst.Replica().Ingest(ctx, tc.c)
			wantErr(t, err, tc.want)
			if st := dst.Replica().SyncState(); st.Active {
				t.Fatalf("a refused chunk started the sync: %+v", st)
			}
		})
	}
	s.ingest(ctx, first)
	// Records are refused while chunks are being ingested.
	recs := must(src.Replica().ReadJournal(ctx, 1, 10, 1<<20))(t)
	_, err := dst.Replica().Apply(ctx, recs)
	wantErr(t, err, ErrInvalid)
	// A replica that already applied records cannot start a sync.
	other := must(v.e.CreateReplica(ctx, "other", ""))(t)
	ship(t, ctx, src, other, recs)
	_, err = other.Replica().Ingest(ctx, first)
	wantErr(t, err, ErrInvalid)
}

// TestIngestAllFailedChunk: when a chunk after the first fails once it
// has written to the transaction (here a superblock that does not
// decode), IngestAll drops the whole transaction, and the sync state
// stays where the store is: the chunks before it had advanced the mode
// in memory, which claimed a cursor whose keys were never committed (the
// source would have gone on from there and left a hole in the replica).
func TestIngestAllFailedChunk(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	src := v.mkfs("src")
	must(src.Mkdir(ctx, RootCred, RootIno, "d", SetAttr{}))(t)
	dst := must(v.e.CreateReplica(ctx, "dst", ""))(t)
	seq := src.Replica().DurableSeq()
	mid := []byte{relMeta}
	chunks := []SyncChunk{
		{Seq: seq, Epoch: 1, Hi: mid},
		{Seq: seq, Epoch: 1, Lo: mid, Hi: []byte{relMeta + 1}, Pairs: []Mutation{{Key: metaKey(metaSuper), Value: []byte("not a superblock")}}},
	}
	if _, err := dst.Replica().IngestAll(ctx, chunks); err == nil {
		t.Fatal("a chunk with a bad superblock was taken")
	}
	if st := dst.Replica().SyncState(); st.Active || st.Cursor != nil {
		t.Fatalf("sync state after a dropped transaction: %+v, want none", st)
	}
	// The first chunk alone goes through and starts the sync.
	st, err := dst.Replica().IngestAll(ctx, chunks[:1])
	if err != nil || !st.Active || !bytes.Equal(st.Cursor, mid) {
		t.Fatalf("first chunk alone: %+v %v", st, err)
	}
}

func TestSyncWeight(t *testing.T) {
	for _, tc := range []struct {
		k, v          []byte
		files, inline uint64
	}{
		{attrKey(5), []byte("attributes"), 1, 0},
		{inlineKey(5), []byte("abc"), 0, 3},
		{blockKey(5, 0), []byte("entry"), 0, 0},
		{dentryKey(1, "A"), []byte("entry"), 0, 0},
		{metaKey(metaUsage), []byte("usage"), 0, 0},
		{nil, nil, 0, 0},
	} {
		if f, b := SyncWeight(tc.k, tc.v); f != tc.files || b != tc.inline {
			t.Errorf("SyncWeight(%q) = %d, %d; want %d, %d", tc.k, f, b, tc.files, tc.inline)
		}
	}
}

// TestRestartSync: an initial sync interrupted before the superblock
// cannot be resynced (ErrNoState) but starts over: the replica is as new,
// and a fresh sync from a later snapshot makes it equal to the source. A
// replica whose sync is over is refused.
func TestRestartSync(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t, modelOpts)
	must(v.e.CreateFS(ctx, "src", FSOptions{BlockSize: MinBlockSize}))(t)
	src := func() *FS { return v.fs("src") }
	r := &runner{t: t, rng: rand.New(rand.NewPCG(11, 2)), fs: src, m: newModel(), bs: MinBlockSize}
	for range 60 {
		r.do(ctx)
	}
	must(v.e.CreateReplica(ctx, "dst", ""))(t)
	dst := func() *FS { return v.fs("dst") }
	s := &syncer{t: t, src: src(), dst: dst(), chunkKeys: 3, snapEvery: 1}
	if s.run(ctx, 1, nil) {
		t.Fatal("the sync finished in one chunk")
	}
	if cur := dst().Replica().SyncState().Cursor; len(cur) == 0 || cur[0] >= relMeta {
		t.Fatalf("cursor %q: the first chunk reached the superblock", cur)
	}
	err := dst().Replica().BeginResync(ctx, nil)
	wantErr(t, err, ErrNoState)
	wantErr(t, err, ErrInvalid)
	if err := dst().Replica().RestartSync(ctx); err != nil {
		t.Fatal(err)
	}
	if st := dst().Replica().SyncState(); st.Active || st.Base != 0 || st.Cursor != nil {
		t.Fatalf("after the restart the sync state is %+v, want a new replica's", st)
	}
	if _, applied, _ := dst().Replica().Applied(); applied != 0 {
		t.Fatalf("applied %d after the restart", applied)
	}
	for range 10 {
		r.do(ctx)
	}
	// A fresh sync (new base) runs as on a new replica.
	s = &syncer{t: t, src: src(), dst: dst(), chunkKeys: 50, snapEvery: 2}
	s.run(ctx, 0, nil)
	caughtUpEqual(t, ctx, src(), dst())
	if err := dst().Replica().Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	// A replica whose sync is over is refused.
	must(v.e.CreateReplica(ctx, "dst2", ""))(t)
	s = &syncer{t: t, src: src(), dst: v.fs("dst2"), chunkKeys: 1 << 20, snapEvery: 1}
	if !s.run(ctx, 0, nil) {
		t.Fatal("a one-chunk sync did not finish")
	}
	wantErr(t, v.fs("dst2").Replica().RestartSync(ctx), ErrInvalid)
}

// TestIngestedTableThenCrash: chunks whose pairs are ingested as a table
// (kv.Ingester) are durable before the mode that records the cursor past
// them commits. A crash in between leaves pairs past the durable cursor;
// the sync resumes at the cursor, replaces the range, and the replica
// ends equal to the source.
func TestIngestedTableThenCrash(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t, modelOpts)
	must(v.e.CreateFS(ctx, "src", FSOptions{BlockSize: MinBlockSize}))(t)
	src := func() *FS { return v.fs("src") }
	r := &runner{t: t, rng: rand.New(rand.NewPCG(7, 2)), fs: src, m: newModel(), bs: MinBlockSize}
	for range 300 {
		r.do(ctx)
	}
	must(v.e.CreateReplica(ctx, "dst", "alias/aws/elasticfilesystem"))(t)
	dst := func() *FS { return v.fs("dst") }
	if err := src().Replica().SetPin("sync", src().Replica().DurableSeq()+1); err != nil {
		t.Fatal(err)
	}
	// The crash image is taken when the second table is durable, before
	// the commit of its IngestAll.
	var (
		mu         sync.Mutex
		kvImg      *kv.Memory
		diskImg    *disk.Mem
		cursorThen []byte
	)
	store, blocksDisk := v.kv, v.disk
	store.SetSyncHook(func() {
		mu.Lock()
		defer mu.Unlock()
		if kvImg == nil && store.Ingests() == 2 {
			kvImg, diskImg = store.CrashClone(), blocksDisk.CrashClone()
			cursorThen = dst().Replica().SyncState().Cursor
		}
	})
	s := &syncer{t: t, src: src(), dst: dst(), chunkKeys: 3, snapEvery: 2, batch: true}
	s.run(ctx, 0, nil)
	store.SetSyncHook(nil)
	t.Logf("%d chunks in %d calls, %d tables", s.chunks, s.calls, store.Ingests())
	if store.Ingests() < 3 || kvImg == nil {
		t.Fatalf("%d tables ingested, want several (the sync did not take the table path)", store.Ingests())
	}
	// Crash to the image.
	old := v.e
	v.kv, v.disk = kvImg, diskImg
	v.open()
	old.Close()
	st := dst().Replica().SyncState()
	if !st.Active || !bytes.Equal(st.Cursor, cursorThen) {
		t.Fatalf("sync state after the crash %+v, want active at cursor %x", st, cursorThen)
	}
	// The ingested pairs are there past the cursor.
	it := must(v.e.kv.NewIter(absKey(dst().id, st.Cursor), upper(fsPrefix(dst().id))))(t)
	past := it.First()
	it.Close()
	if !past {
		t.Fatal("no pair past the cursor after the crash: the image was not taken between a table and its commit")
	}
	for range 5 {
		r.do(ctx)
	}
	s = &syncer{t: t, src: src(), dst: dst(), chunkKeys: 3, snapEvery: 2, batch: true}
	s.run(ctx, 0, nil)
	caughtUpEqual(t, ctx, src(), dst())
	if d := diffDumps(must(dumpFS(ctx, src()))(t), must(dumpFS(ctx, dst()))(t)); d != "" {
		t.Fatalf("replica tree differs:\n%s", d)
	}
	if err := dst().Replica().Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotSplits: the cuts of a snapshot's keys into ranges of inodes
// are increasing, after the start, every perRange inode numbers up to the
// next inode number, then one after the inodes; a start past the inodes
// has none.
func TestSnapshotSplits(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t, modelOpts)
	fs := must(v.e.CreateFS(ctx, "src", FSOptions{}))(t)
	for i := range 10 {
		must(fs.Create(ctx, RootCred, RootIno, fmt.Sprintf("f%d", i), CreateGuarded, SetAttr{}, 0))(t)
	}
	// Inodes 1 (root) and 2..11: the next inode number is 12.
	snap := must(fs.Replica().Snapshot(ctx))(t)
	defer snap.Close()
	end := []byte{relInode + 1}
	for _, tc := range []struct {
		name     string
		lo       []byte
		perRange uint64
		want     [][]byte
	}{
		{"from the start", nil, 4, [][]byte{inodePrefix(4), inodePrefix(8), end}},
		{"mid-inode", attrKey(5), 4, [][]byte{inodePrefix(9), end}},
		{"at a cut", inodePrefix(8), 4, [][]byte{end}},
		{"one range", nil, 100, [][]byte{end}},
		{"past the inodes", metaKey(metaSuper), 4, nil},
		{"at the end of the inodes", end, 4, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := snap.Splits(tc.lo, tc.perRange)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Splits(%x, %d) = %x, want %x", tc.lo, tc.perRange, got, tc.want)
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Fatalf("Splits(%x, %d) = %x, want %x", tc.lo, tc.perRange, got, tc.want)
				}
			}
		})
	}
	if _, err := snap.Splits(nil, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Splits with 0 inodes per range: %v, want ErrInvalid", err)
	}
}

// TestInodeCuts: cuts every perRange inode numbers, never more than max
// (a sparse file system gets wider ranges, not a million empty ones).
func TestInodeCuts(t *testing.T) {
	for _, tc := range []struct {
		first, next, perRange uint64
		max                   int
		want                  []uint64
	}{
		{0, 12, 4, 10, []uint64{4, 8}},
		{5, 12, 4, 10, []uint64{9}},
		{0, 4, 4, 10, nil},
		{12, 12, 4, 10, nil},
		{0, 100, 1, 3, []uint64{34, 68}},
		{0, 1 << 40, 1024, 4, []uint64{1<<38 + 1, 2<<38 + 2, 3<<38 + 3}},
		{1<<64 - 8, 1<<64 - 1, 4, 10, []uint64{1<<64 - 4}},
	} {
		got := inodeCuts(tc.first, tc.next, tc.perRange, tc.max)
		if len(got) > tc.max || !slices.Equal(got, tc.want) {
			t.Errorf("inodeCuts(%d, %d, %d, %d) = %v, want %v", tc.first, tc.next, tc.perRange, tc.max, got, tc.want)
		}
	}
}

// holdCountingKV is a store with a cache to hold (kv.CacheHolder) that
// counts the holds taken and not yet released.
type holdCountingKV struct {
	kv.Store
	mu    sync.Mutex // guards the field below
	held  int
	taken int
}

func (h *holdCountingKV) HoldCache() func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held++
	h.taken++
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			h.held--
			h.mu.Unlock()
		})
	}
}

func (h *holdCountingKV) counts() (held, taken int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held, h.taken
}

// TestSnapshotHoldsCache: a snapshot (read in one pass: an initial sync,
// a resync's or a verification's checksums) holds the store's cache,
// through the engine's sealing layer, from its making to its Close, so
// that its reads do not grow the cache into fresh memory (kv.HoldCache,
// pebblekv's TestHoldCacheScan counts the bytes).
func TestSnapshotHoldsCache(t *testing.T) {
	ctx := t.Context()
	st := &holdCountingKV{Store: kv.NewMemory()}
	fs, _ := fileOn(t, ctx, Options{KV: st, Disk: disk.NewMem()})
	_, before := st.counts()
	a := must(fs.Replica().Snapshot(ctx))(t)
	b := must(fs.Replica().Snapshot(ctx))(t)
	if held, taken := st.counts(); held != 2 || taken != before+2 {
		t.Fatalf("two open snapshots: %d holds, %d taken (%d before), want 2 held and 2 more taken", held, taken, before)
	}
	if _, err := a.Checksum(nil, nil); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if held, _ := st.counts(); held != 1 {
		t.Fatalf("one snapshot closed: %d holds, want 1", held)
	}
	b.Close()
	if held, _ := st.counts(); held != 0 {
		t.Fatalf("both snapshots closed: %d holds, want none", held)
	}
}
