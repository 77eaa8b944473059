package replication

import (
	"bytes"
	"sync"
	"sync/atomic"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Reading an initial sync's chunks on the source.
//
// The snapshot is cut into ranges of about syncRangeInodes inodes
// (engine.Snapshot.Splits); up to Options.SyncReaders of them are read at
// once, each with one iterator held open over its range, and their chunks
// are handed to the sender in key order, so the destination sees the same
// stream of consecutive chunks as from one reader (the last chunk of a
// range ends at the cut; a range without keys is one empty chunk). Reading
// a snapshot is the longest stage of a sync of many small files: every
// data block is loaded from its table into the block cache, and the values
// are opened.

// syncRangeInodes is about how many inodes one range holds (4 MiB of 4 KiB
// files: a few chunks).
const syncRangeInodes = 1024

// syncRangeAhead bounds the chunks a range reader holds for the sender.
const syncRangeAhead = 8

// chunkMaxPairs bounds the pairs of a chunk the source sends (besides
// Options.ChunkBytes); the destination sizes a decoded chunk by it.
const chunkMaxPairs = 8192

// chunkReader reads the chunks of a snapshot, in order, ahead of the
// sending.
type chunkReader struct {
	chunks <-chan readChunk
	done   chan struct{}
	wg     sync.WaitGroup
	// bufs keeps the buffers of sent chunks for the chunks read after
	// them (each is about ChunkBytes; fresh memory is dear here: its page
	// faults cost more than the copy into it); made counts the buffers
	// allocated (outbound.syncBufs: a test counts them).
	bufs chan []byte
	made *atomic.Uint64
	// sums: the chunks are msgChunkSum's (stream.chunkSums).
	sums bool
}

// readChunk is a chunk as outbound.chunk returns it.
type readChunk struct {
	parts         [][]byte
	hi            []byte
	files, inline uint64
	err           error
}

// syncRange is [lo, hi) of a snapshot (hi nil: to the end), read into q.
type syncRange struct {
	lo, hi []byte
	q      chan readChunk
}

// readChunks starts reading the chunks of snap from lo on, ahead of the
// sending: Options.SyncReaders ranges at once; with sums, as msgChunkSum
// payloads. The reading ends after the last chunk or an error, or with
// stop.
func (o *outbound) readChunks(snap *engine.Snapshot, lo []byte, sums bool) *chunkReader {
	out := make(chan readChunk, 1)
	readers := o.n.opts.SyncReaders
	r := &chunkReader{chunks: out, done: make(chan struct{}), bufs: make(chan []byte, readers*(syncRangeAhead+1)+4), made: &o.syncBufs, sums: sums}
	cuts, err := snap.Splits(lo, syncRangeInodes)
	if err != nil {
		out <- readChunk{err: err}
		return r
	}
	ranges := make([]syncRange, 0, len(cuts)+1)
	for _, c := range cuts {
		ranges = append(ranges, syncRange{lo: lo, hi: c, q: make(chan readChunk, syncRangeAhead)})
		lo = c
	}
	ranges = append(ranges, syncRange{lo: lo, q: make(chan readChunk, syncRangeAhead)})
	// A range takes a slot from the start of its reading until the
	// sender has taken its last chunk, so at most SyncReaders ranges are
	// read or held at once (memory), and readers start in key order: the
	// range the sender waits for always has its reader.
	slots := make(chan struct{}, readers)
	r.wg.Go(func() {
		for _, rg := range ranges {
			select {
			case slots <- struct{}{}:
			case <-r.done:
				return
			}
			r.wg.Go(func() { o.readRange(snap, rg, r) })
		}
	})
	r.wg.Go(func() {
		for _, rg := range ranges {
			for {
				var c readChunk
				var ok bool
				select {
				case c, ok = <-rg.q:
				case <-r.done:
					return
				}
				if !ok {
					break
				}
				select {
				case out <- c:
				case <-r.done:
					return
				}
				if c.err != nil {
					return
				}
			}
			<-slots
		}
	})
	return r
}

// buf returns a buffer for a chunk's pairs.
func (r *chunkReader) buf(size int) []byte {
	select {
	case b := <-r.bufs:
		return b[:0]
	default:
		r.made.Add(1)
		return make([]byte, 0, size)
	}
}

// release keeps the buffer of a chunk's pairs (parts[1]) once it is sent.
func (r *chunkReader) release(c readChunk) {
	if len(c.parts) < 2 {
		return
	}
	select {
	case r.bufs <- c.parts[1]:
	default:
	}
}

// stop ends the reading and waits for it (the snapshot may be closed
// then).
func (r *chunkReader) stop() {
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	r.wg.Wait()
}

// readRange reads the chunks of rg into rg.q, with one iterator, and
// closes it after the last or an error (or when r stops).
func (o *outbound) readRange(snap *engine.Snapshot, rg syncRange, r *chunkReader) {
	defer close(rg.q)
	send := func(c readChunk) bool {
		select {
		case rg.q <- c:
			return true
		case <-r.done:
			return false
		}
	}
	it, err := snap.Iter(rg.lo, rg.hi)
	if err != nil {
		send(readChunk{err: err})
		return
	}
	o.syncIters.Add(1)
	defer it.Close()
	cur := rangeIter{it: it, ok: it.First()}
	lo := rg.lo
	for {
		var c readChunk
		c.parts, c.hi, c.files, c.inline, c.err = o.chunk(snap, &cur, lo, rg.hi, r.buf(o.n.opts.ChunkBytes+o.n.opts.ChunkBytes/8), r.sums)
		if !send(c) || c.err != nil || c.hi == nil || bytes.Equal(c.hi, rg.hi) {
			return
		}
		lo = c.hi
	}
}

// rangeIter is an iterator over a range and whether it stands at a pair
// not yet taken.
type rangeIter struct {
	it  kv.Iterator
	ok  bool
	val []byte // the current value, opened into memory reused for each
}

// chunk reads the next chunk of a range from lo (where it stands) on: up
// to ChunkBytes of pairs, or to end, the range's end, when fewer are left.
// It is encoded (as encodeChunk would, or with sums as a msgChunkSum)
// straight from the iterator in two parts, the pairs in buf's memory;
// files and inline are the files and inline data bytes it holds
// (engine.SyncWeight).
func (o *outbound) chunk(snap *engine.Snapshot, cur *rangeIter, lo, end, buf []byte, sums bool) (parts [][]byte, hi []byte, files, inline uint64, err error) {
	it := cur.it
	pairs := enc{b: buf[:0]}
	n := 0
	full := false
	for ; cur.ok; cur.ok = it.Next() {
		if len(pairs.b) >= o.n.opts.ChunkBytes || n >= chunkMaxPairs {
			hi, full = bytes.Clone(it.Key()), true
			break
		}
		v, err := kv.AppendValue(it, cur.val[:0])
		if err != nil {
			return nil, nil, 0, 0, err
		}
		cur.val = v
		k := it.Key()
		f, b := engine.SyncWeight(k, v)
		files, inline = files+f, inline+b
		pairs.bytes(k)
		pairs.bytes(v)
		n++
	}
	if err := it.Error(); err != nil {
		return nil, nil, 0, 0, err
	}
	if !full {
		hi = end
	}
	head := chunkHead(snap.Seq, snap.Epoch, snap.Time, lo, hi, n)
	if sums {
		head = chunkSumHead(make([]byte, 0, len(head)+8), head, pairs.b)
	}
	return [][]byte{head, pairs.b}, hi, files, inline, nil
}
