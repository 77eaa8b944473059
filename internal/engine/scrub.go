package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/regionfs/regionfs/internal/engine/blocks"
)

// ScrubReport is the outcome of a scrub pass.
type ScrubReport struct {
	Blocks  int         // blocks read and verified
	Corrupt []blocks.ID // blocks that failed verification
}

// Scrub reads and verifies every stored block of every domain. Corrupt
// blocks are reported (and counted by the block store), never repaired
// silently; replication repairs them from a peer.
func (e *Engine) Scrub(ctx context.Context) (ScrubReport, error) {
	start := e.clock()
	rep, err := e.scrub(ctx)
	if ctx.Err() == nil { // a pass cut short by shutdown is not counted
		e.m.observeScrub(rep, err, start, e.clock())
	}
	return rep, err
}

func (e *Engine) scrub(ctx context.Context) (ScrubReport, error) {
	var rep ScrubReport
	e.mu.Lock()
	doms := make([]*domain, 0, len(e.domains))
	for id, d := range e.domains {
		if d.blockStore() != nil && e.ownsLocked(id) {
			doms = append(doms, d)
		}
	}
	e.mu.Unlock()
	for _, d := range doms {
		var ids []blocks.ID
		if err := d.blockStore().Walk(ctx, func(id blocks.ID) error {
			ids = append(ids, id)
			return nil
		}); err != nil {
			return rep, fmt.Errorf("engine: scrub domain %d: %w", d.id, err)
		}
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			_, err := d.blockStore().Get(ctx, id)
			switch {
			case err == nil:
				rep.Blocks++
			case errors.Is(err, blocks.ErrCorrupt):
				rep.Blocks++
				rep.Corrupt = append(rep.Corrupt, id)
				e.log.Error("scrub found a corrupt block", "domain", d.id, "block", id.String(), "err", err)
			case errors.Is(err, blocks.ErrNotFound):
				// Deleted by the collector meanwhile.
			default:
				return rep, fmt.Errorf("engine: scrub block %s: %w", id, err)
			}
		}
	}
	return rep, nil
}

func (e *Engine) scrubLoop() {
	defer e.wg.Done()
	t := time.NewTicker(e.opts.ScrubInterval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-e.stop
		cancel()
	}()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		rep, err := e.Scrub(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Warn("scrub", "err", err)
		}
		e.log.Info("scrub done", "blocks", rep.Blocks, "corrupt", len(rep.Corrupt))
	}
}

// Stats are counters of one file system.
type Stats struct {
	Commits    uint64 // group commits
	Records    uint64 // journal records written
	GroupOps   uint64 // operations in group commits
	Queued     uint64 // operations handed to the committer
	Corruption uint64 // corruption errors met
	DurableSeq uint64
	Blocks     blocks.Stats
	// KeyedHashes counts the keyed hashes of block content computed for
	// the file system's domain (it and its clones share the id key):
	// writes, full checks (scrub, verification) and pushed blocks checked
	// against their ids.
	KeyedHashes uint64
	// MapReads counts the READs served from a file's block map, MapFills
	// the maps read (blockmap.go).
	MapReads, MapFills uint64
}

// Stats returns the file system's counters.
func (fs *FS) Stats() Stats {
	s := Stats{
		Commits: fs.stats.commits.Load(), Records: fs.stats.records.Load(),
		GroupOps: fs.stats.groupOps.Load(), Queued: fs.stats.queued.Load(),
		Corruption: fs.stats.corruption.Load(),
		DurableSeq: fs.durable.Load(),
		MapReads:   fs.maps.hits.Load(), MapFills: fs.maps.fills.Load(),
	}
	if fs.dom.blockStore() != nil {
		s.Blocks = fs.dom.blockStore().Stats()
	}
	if h := fs.dom.blockHasher(); h != nil {
		s.KeyedHashes = h.Sums()
	}
	return s
}
