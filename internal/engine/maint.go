package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// maintenance is a file system's background worker: it releases the data
// of unlinked large files and the stale tails of huge truncates in bounded
// journaled batches, merges pending extents into blocks when a block has
// been idle for MergeDelay, and once per run recounts what the files of
// an older store hold (sweepHeld). It runs only on a primary (a replica
// receives the same changes from its source's journal).
type maintenance struct {
	fs *FS

	mu      sync.Mutex // guards the fields below
	merges  map[blockRef]time.Time
	running bool
	stopCh  chan struct{}
	done    chan struct{}
	kickCh  chan struct{}
	// passed is closed once the loop's first pass (its scan of pending
	// extents and unlinked files, read from its own goroutine) is done.
	passed chan struct{}
}

type blockRef struct{ ino, idx uint64 }

func (m *maintenance) start(fs *FS) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running {
		return
	}
	m.fs = fs
	m.merges = map[blockRef]time.Time{}
	m.stopCh = make(chan struct{})
	m.done = make(chan struct{})
	m.kickCh = make(chan struct{}, 1)
	m.passed = make(chan struct{})
	m.running = true
	go m.loop(m.passed)
}

func (m *maintenance) stop() {
	m.mu.Lock()
	if !m.running {
		m.mu.Unlock()
		return
	}
	m.running = false
	close(m.stopCh)
	done := m.done
	m.mu.Unlock()
	<-done
}

func (m *maintenance) kick() {
	m.mu.Lock()
	ch := m.kickCh
	m.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (m *maintenance) noteExtent(ino, idx uint64) {
	m.mu.Lock()
	if m.merges != nil {
		m.merges[blockRef{ino, idx}] = m.fs.e.clock()
	}
	m.mu.Unlock()
}

func (m *maintenance) loop(passed chan struct{}) {
	defer close(m.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-m.stopCh
		cancel()
	}()
	m.scanMerges()
	t := time.NewTicker(max(m.fs.e.opts.MergeDelay/2, 10*time.Millisecond))
	defer t.Stop()
	first := true
	swept := false // sweepHeld done in this run
	for {
		if !first {
			select {
			case <-m.stopCh:
				return
			case <-t.C:
			case <-m.kickCh:
			}
		}
		if md, _ := m.fs.Mode(); md == ModePrimary {
			if !swept {
				err := m.sweepHeld(ctx)
				if err != nil && !isShutdown(err) {
					m.fs.log.Warn("recount held bytes", "err", err)
				}
				swept = err == nil
			}
			if err := m.releaseZombies(ctx); err != nil && !isShutdown(err) {
				m.fs.log.Warn("release unlinked data", "err", err)
			}
			if err := m.mergeDue(ctx, false); err != nil && !isShutdown(err) {
				m.fs.log.Warn("merge pending extents", "err", err)
			}
		}
		if first {
			close(passed)
			first = false
		}
	}
}

func isShutdown(err error) bool {
	return errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, ErrFatal)
}

// scanMerges finds blocks with pending extents (after open or promotion).
func (m *maintenance) scanMerges() {
	p := []byte{relMerge}
	r := m.fs.reader(m.fs.e.kv)
	it, err := r.NewIter(p, upper(p))
	if err != nil {
		return
	}
	defer it.Close()
	now := m.fs.e.clock()
	m.mu.Lock()
	defer m.mu.Unlock()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 17 {
			continue
		}
		m.merges[blockRef{binary.BigEndian.Uint64(k[1:]), binary.BigEndian.Uint64(k[9:])}] = now
	}
}

// mergeExtents merges every block's pending extents now (tests, planned
// failover, shutdown).
func (fs *FS) mergeExtents(ctx context.Context) error { return fs.maint.mergeDue(ctx, true) }

func (m *maintenance) mergeDue(ctx context.Context, all bool) error {
	now := m.fs.e.clock()
	var due []blockRef
	m.mu.Lock()
	for br, t := range m.merges {
		if all || now.Sub(t) >= m.fs.e.opts.MergeDelay {
			due = append(due, br)
		}
	}
	m.mu.Unlock()
	for _, br := range due {
		if err := m.fs.e.admit(int64(m.fs.blockSizeOr())); err != nil {
			// Merging writes a block before it frees the extents: wait
			// for space (the extents stay readable meanwhile).
			return nil
		}
		err := m.fs.do(ctx, opMutate, "merge", func(tx *txn) error { return tx.merge(br.ino, br.idx) })
		if err != nil && !errors.Is(err, ErrStale) {
			return err
		}
		m.mu.Lock()
		if t, ok := m.merges[br]; ok && (all || now.Sub(t) >= m.fs.e.opts.MergeDelay) {
			delete(m.merges, br)
		}
		m.mu.Unlock()
	}
	return nil
}

// merge rewrites a block with its pending extents applied.
func (tx *txn) merge(ino, idx uint64) error {
	tx.del(mergeKey(ino, idx))
	v, ok, err := tx.get(attrKey(ino))
	if err != nil {
		return err
	}
	if !ok {
		return nil // removed meanwhile; its keys went with it
	}
	n, err := decodeInode(v)
	if err != nil {
		return tx.fs.corrupt(err)
	}
	cnt, _, err := tx.extentStats(ino, idx)
	if err != nil || cnt == 0 {
		return err
	}
	cur, err := tx.fs.loadBlock(tx.ctx(), tx.ov, ino, idx)
	if err != nil {
		return err
	}
	bs := uint64(tx.fs.blockSizeOr())
	start := idx * bs
	valid := 0
	if n.size > start {
		valid = int(min(n.size-start, uint64(len(cur))))
	}
	tx.note([]uint64{ino})
	// The merged block holds what the block and its extents held, less
	// when it is shorter than they reached, or nothing when it is zeros:
	// the inode's held and the usage counter change with it.
	err = tx.counting(ino, n, func() error { return tx.storeBlock(ino, n, idx, cur[:valid]) })
	if err != nil {
		return err
	}
	tx.putInode(ino, n)
	return nil
}

// releaseZombies releases the data of unlinked files and stale tails.
func (m *maintenance) releaseZombies(ctx context.Context) error {
	for {
		p := []byte{relZombie}
		r := m.fs.reader(m.fs.e.kv)
		it, err := r.NewIter(p, upper(p))
		if err != nil {
			return err
		}
		var inos []uint64
		for ok := it.First(); ok && len(inos) < 64; ok = it.Next() {
			if k := it.Key(); len(k) == 9 {
				inos = append(inos, binary.BigEndian.Uint64(k[1:]))
			}
		}
		if err := it.Close(); err != nil {
			return err
		}
		if len(inos) == 0 {
			return nil
		}
		for _, ino := range inos {
			if err := m.releaseOne(ctx, ino); err != nil {
				return err
			}
		}
	}
}

// releaseOne runs bounded release steps for one zombie until it is gone.
func (m *maintenance) releaseOne(ctx context.Context, ino uint64) error {
	for {
		done := false
		err := m.fs.do(ctx, opMutate, "release", func(tx *txn) error {
			var err error
			done, err = tx.releaseStep(ino)
			return err
		})
		if err != nil || done {
			return err
		}
	}
}

// clearTail finishes a pending huge truncate of ino (called by writers that
// must extend the file).
func (m *maintenance) clearTail(ctx context.Context, ino uint64) error {
	return m.releaseOne(ctx, ino)
}

// releaseStep releases one bounded batch of a zombie's data.
func (tx *txn) releaseStep(ino uint64) (bool, error) {
	kind, ok, err := tx.get(zombieKey(ino))
	if err != nil {
		return false, err
	}
	v, found, err := tx.get(attrKey(ino))
	if err != nil {
		return false, err
	}
	if !ok || !found {
		if ok {
			tx.del(zombieKey(ino))
		}
		return true, nil
	}
	n, err := decodeInode(v)
	if err != nil {
		return false, tx.fs.corrupt(err)
	}
	tx.note([]uint64{ino})
	limit := tx.fs.e.opts.BatchEntries
	if len(kind) == 1 && kind[0] == zombieTail && n.nlink > 0 {
		bs := uint64(tx.fs.blockSizeOr())
		var done bool
		err := tx.counting(ino, n, func() error {
			var err error
			done, err = tx.releaseData(ino, n, (n.size+bs-1)/bs, limit)
			return err
		})
		if err != nil {
			return false, err
		}
		if !done {
			tx.putInode(ino, n) // what it holds less
			return false, nil
		}
		n.flags &^= flagTail
		if n.size == 0 && tx.fs.superPub.Load().InlineMax > 0 {
			n.flags |= flagInline
		}
		tx.putInode(ino, n)
		tx.del(zombieKey(ino))
		return true, nil
	}
	done, err := tx.releaseData(ino, n, 0, limit)
	if err != nil {
		return false, err
	}
	if !done {
		tx.putInode(ino, n) // what it holds less (it counts for nothing)
		return false, nil
	}
	tx.del(attrKey(ino))
	tx.del(zombieKey(ino))
	return true, nil
}
