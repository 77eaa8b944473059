package replication

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/blocks/crc32c"
	"github.com/zeebo/blake3"
)

// WireVersion is the version of the stream protocol this code speaks.
const WireVersion = 1

// Frame limits.
const (
	maxFrame  = 16 << 20 // bytes of type ‖ counter ‖ payload
	macSize   = 16
	frameHead = 4 + 1 + 8 // length ‖ type ‖ counter
)

// Message types. Source → destination: records, blocks, chunks,
// heartbeats. Destination → source: acks.
const (
	msgRecords   byte = 1
	msgBlocks    byte = 2
	msgChunk     byte = 3
	msgHeartbeat byte = 4
	msgAck       byte = 5
	// msgBlocksSum is msgBlocks with each block's checksum in the
	// (authenticated) header, sent to destinations that announce
	// featureBlockSums.
	msgBlocksSum byte = 10
	// msgChunkSum is msgChunk whose MAC covers a header carrying a
	// CRC-32C of the pairs, sent to destinations that announce
	// featureChunkSums (only over an authenticated channel).
	msgChunkSum byte = 11
)

// isBlocks says whether a frame of type typ carries blocks.
func isBlocks(typ byte) bool { return typ == msgBlocks || typ == msgBlocksSum }

// isChunk says whether a frame of type typ carries an initial sync's
// chunk.
func isChunk(typ byte) bool { return typ == msgChunk || typ == msgChunkSum }

// macHeadOnly says whether the MAC of a frame of type typ covers only the
// header its payload starts with (header length (4) ‖ header): the rest
// is checked against what the header says — each block by its id or
// checksum, a chunk's pairs by their checksum.
func macHeadOnly(typ byte) bool { return isBlocks(typ) || typ == msgChunkSum }

// chunkChecksum is the CRC-32C of a chunk's pairs (msgChunkSum), the
// same value as hash/crc32's with the Castagnoli table, by crc32c.Update,
// which folds long inputs with AVX-512 where the CPU has it: a chunk's
// pairs are ~1 MiB, and hash/crc32 took 0.22 CPU-s of the destination's
// ~2.7 for the 409 MiB of a sync of 100 000 small files (sync22), on the
// source as much again.
func chunkChecksum(pairs []byte) uint32 { return crc32c.Update(0, pairs) }

// Directions, bound into every frame's MAC so that a frame cannot be
// reflected back to its sender.
const (
	dirToDest   byte = 'd'
	dirToSource byte = 's'
)

var (
	// ErrFrame is a damaged, forged, replayed or oversized frame. The
	// stream carrying it is closed; nothing in it is applied.
	ErrFrame = errors.New("replication: bad frame")
)

// framer seals and opens the frames of one direction of a stream: length
// ‖ type ‖ counter ‖ payload ‖ keyed BLAKE3(session key, direction ‖ type ‖
// counter ‖ payload)[:16]. Counters start at 1 and must increase by one, so
// a replayed, dropped or reordered frame is refused.
type framer struct {
	key     []byte
	dir     byte
	counter uint64
	keyed   *blake3.Hasher // keyed by key (hashed to 32 bytes if it is not)
	// alloc, when set, returns the buffer of a frame of type typ whose
	// body (payload and MAC) takes n bytes (read; nil: a new one), or an
	// error that ends the read.
	alloc func(typ byte, n int) ([]byte, error)
	// macked counts the bytes MAC'd (a test counts them).
	macked uint64
}

func (f *framer) mac(typ byte, counter uint64, parts ...[]byte) []byte {
	if f.keyed == nil {
		k := f.key
		if len(k) != 32 {
			sum := blake3.Sum256(k)
			k = sum[:]
		}
		var err error
		if f.keyed, err = blake3.NewKeyed(k); err != nil {
			panic(err) // the key is 32 bytes
		}
	}
	h := f.keyed.Clone()
	var hdr [10]byte
	hdr[0] = f.dir
	hdr[1] = typ
	binary.BigEndian.PutUint64(hdr[2:], counter)
	h.Write(hdr[:])
	for _, p := range parts {
		h.Write(p)
		f.macked += uint64(len(p))
	}
	return h.Sum(nil)[:macSize]
}

// write sends one frame whose payload is the concatenation of parts
// (block data is sent from where it lies, not copied into a payload).
func (f *framer) write(w io.Writer, typ byte, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n+9 > maxFrame {
		return fmt.Errorf("%w: %d-byte payload", ErrFrame, n)
	}
	f.counter++
	var hdr [frameHead]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(9+n))
	hdr[4] = typ
	binary.BigEndian.PutUint64(hdr[5:], f.counter)
	authed := parts
	if macHeadOnly(typ) && len(parts) > 0 {
		authed = parts[:1] // the header; the rest is checked against it
	}
	tag := f.mac(typ, f.counter, authed...)
	if n <= 64<<10 {
		// Small frames in one write.
		buf := make([]byte, 0, frameHead+n+macSize)
		buf = append(buf, hdr[:]...)
		for _, p := range parts {
			buf = append(buf, p...)
		}
		_, err := w.Write(append(buf, tag...))
		return err
	}
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	_, err := w.Write(tag)
	return err
}

// read receives one frame and checks its length, MAC and counter.
func (f *framer) read(r io.Reader) (byte, []byte, error) {
	var hdr [frameHead]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 9 || n > maxFrame {
		return 0, nil, fmt.Errorf("%w: length %d", ErrFrame, n)
	}
	typ := hdr[4]
	counter := binary.BigEndian.Uint64(hdr[5:])
	var body []byte
	if f.alloc != nil {
		var err error
		if body, err = f.alloc(typ, int(n)-9+macSize); err != nil {
			return 0, nil, err
		}
	} else {
		body = make([]byte, int(n)-9+macSize)
	}
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, fmt.Errorf("%w: truncated: %w", ErrFrame, err)
	}
	payload, tag := body[:len(body)-macSize], body[len(body)-macSize:]
	authed := payload
	if macHeadOnly(typ) {
		// Block data is outside the MAC: each block is verified against its
		// id (keyed by the lineage's secret id key), which the MAC covers,
		// or, over an authenticated channel, against the checksum the
		// header carries (see receiver.putBlocks). A msgChunkSum's pairs
		// are checked against their checksum (decodeChunk; the receiver
		// takes the frame over an authenticated channel only).
		if len(payload) < 4 {
			return 0, nil, fmt.Errorf("%w: short frame of type %d", ErrFrame, typ)
		}
		h := binary.BigEndian.Uint32(payload)
		if uint64(h) > uint64(len(payload)-4) {
			return 0, nil, fmt.Errorf("%w: header past the frame", ErrFrame)
		}
		authed = payload[:4+h]
	}
	if subtle.ConstantTimeCompare(tag, f.mac(typ, counter, authed)) != 1 {
		return 0, nil, fmt.Errorf("%w: authentication failed", ErrFrame)
	}
	if counter != f.counter+1 {
		return 0, nil, fmt.Errorf("%w: counter %d after %d (replayed or reordered)", ErrFrame, counter, f.counter)
	}
	f.counter = counter
	return typ, payload, nil
}

// enc builds a payload: uvarints and length-prefixed byte strings.
type enc struct{ b []byte }

func (e *enc) u(v uint64)     { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) i(v int64)      { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) bytes(p []byte) { e.u(uint64(len(p))); e.b = append(e.b, p...) }
func (e *enc) flag(v bool) {
	if v {
		e.u(1)
	} else {
		e.u(0)
	}
}

// dec reads a payload; the first error sticks and every later read
// returns zero values, so decoders check err once at the end.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrFrame, what)
	}
}

func (d *dec) u() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) i() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) bytes() []byte {
	n := d.u()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("byte string past the end")
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) flag() bool { return d.u() != 0 }

// count reads a list length, refusing one that cannot fit in what is left
// (each element takes at least min bytes).
func (d *dec) count(min int) int {
	n := d.u()
	if d.err == nil && n > uint64(len(d.b)/min) {
		d.fail("list longer than the frame")
		return 0
	}
	return int(n)
}

func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

func (d *dec) id() blocks.ID {
	p := d.bytes()
	if d.err != nil {
		return blocks.ID{}
	}
	id, err := blocks.IDFromBytes(p)
	if err != nil {
		d.fail("bad block id")
	}
	return id
}

// recordsMsg carries whole journal records in seq order: n ‖ n × record,
// then, to a destination that announced featureDurableTimes, n × (when the
// source made the record durable, in ns after the record's Time, plus 1;
// 0 when the source no longer knew).
type recordsMsg struct {
	recs []*engine.Record
	// durable, when not nil, holds each record's durable time at the
	// source (zero: not known).
	durable []time.Time
}

func (m *recordsMsg) encode() []byte {
	var e enc
	e.u(uint64(len(m.recs)))
	for _, r := range m.recs {
		e.bytes(r.Encode())
	}
	if m.durable != nil {
		for i, r := range m.recs {
			e.u(durableDelta(r.Time, m.durable[i]))
		}
	}
	return e.b
}

// durableDelta encodes durable as ns after t, plus 1 (0: unknown).
func durableDelta(t, durable time.Time) uint64 {
	if durable.IsZero() {
		return 0
	}
	return uint64(max(durable.Sub(t), 0)) + 1
}

func decodeRecords(p []byte) (*recordsMsg, error) {
	d := &dec{b: p}
	n := d.count(1)
	m := &recordsMsg{recs: make([]*engine.Record, 0, n)}
	for range n {
		b := d.bytes()
		if d.err != nil {
			break
		}
		r, err := engine.DecodeRecord(b)
		if err != nil {
			return nil, fmt.Errorf("%w: record: %w", ErrFrame, err)
		}
		if len(m.recs) > 0 && r.Seq != m.recs[len(m.recs)-1].Seq+1 {
			return nil, fmt.Errorf("%w: records out of order", ErrFrame)
		}
		m.recs = append(m.recs, r)
	}
	if d.err == nil && len(d.b) > 0 {
		m.durable = make([]time.Time, len(m.recs))
		for i, r := range m.recs {
			if v := d.u(); v > 0 && v-1 <= math.MaxInt64 {
				m.durable[i] = r.Time.Add(time.Duration(v - 1))
			}
		}
	}
	return m, d.end()
}

// blocksMsg carries block plaintexts; the receiver verifies each id. Its
// payload is: header length (4) ‖ header ‖ the blocks' data,
// concatenated; the frame MAC covers the header only. The header is
// n ‖ n × (id ‖ length) in a msgBlocks frame, n ‖ n × (id ‖ length ‖
// checksum) in a msgBlocksSum frame (sums set: blocks.Checksum of each).
type blocksMsg struct {
	ids  []blocks.ID
	data [][]byte
	sums []uint32 // nil: a msgBlocks frame
}

// typ is the frame type that carries m.
func (m *blocksMsg) typ() byte {
	if m.sums != nil {
		return msgBlocksSum
	}
	return msgBlocks
}

func (m *blocksMsg) encode() []byte {
	var b []byte
	for _, p := range m.parts() {
		b = append(b, p...)
	}
	return b
}

// parts is the payload with the block data by reference; parts[0] is the
// authenticated header.
func (m *blocksMsg) parts() [][]byte {
	e := enc{b: make([]byte, 4, 4+8+len(m.ids)*(blocks.IDSize+16))}
	e.u(uint64(len(m.ids)))
	for i, id := range m.ids {
		e.bytes(id[:])
		e.u(uint64(len(m.data[i])))
		if m.sums != nil {
			e.u(uint64(m.sums[i]))
		}
	}
	binary.BigEndian.PutUint32(e.b, uint32(len(e.b)-4))
	return append([][]byte{e.b}, m.data...)
}

// decodeBlocks decodes the payload of a blocks frame of type typ.
func decodeBlocks(typ byte, p []byte) (*blocksMsg, error) {
	if len(p) < 4 {
		return nil, fmt.Errorf("%w: short blocks message", ErrFrame)
	}
	h := binary.BigEndian.Uint32(p)
	if uint64(h) > uint64(len(p)-4) {
		return nil, fmt.Errorf("%w: blocks header past the message", ErrFrame)
	}
	d := &dec{b: p[4 : 4+h]}
	data := p[4+h:]
	withSums := typ == msgBlocksSum
	minEntry := 2 + blocks.IDSize
	if withSums {
		minEntry++
	}
	n := d.count(minEntry)
	m := &blocksMsg{}
	if withSums {
		m.sums = make([]uint32, 0, n)
	}
	for range n {
		id := d.id()
		l := d.u()
		var sum uint64
		if withSums {
			sum = d.u()
		}
		if d.err != nil {
			break
		}
		if sum > 0xffffffff {
			d.fail("block checksum out of range")
			break
		}
		if l > uint64(len(data)) {
			d.fail("block data past the message")
			break
		}
		m.ids = append(m.ids, id)
		m.data = append(m.data, data[:l:l])
		if withSums {
			m.sums = append(m.sums, uint32(sum))
		}
		data = data[l:]
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%w: trailing block data", ErrFrame)
	}
	return m, nil
}

func encodeChunk(c *engine.SyncChunk) []byte {
	var pairs enc
	for _, p := range c.Pairs {
		pairs.bytes(p.Key)
		pairs.bytes(p.Value)
	}
	head := chunkHead(c.Seq, c.Epoch, c.Time, c.Lo, c.Hi, len(c.Pairs))
	return append(head, pairs.b...)
}

// chunkHead is the part of a msgChunk payload before its pairs.
func chunkHead(seq, epoch uint64, at time.Time, lo, hi []byte, n int) []byte {
	var e enc
	e.u(seq)
	e.u(epoch)
	e.i(at.UnixNano())
	e.bytes(lo)
	e.flag(hi != nil)
	e.bytes(hi)
	e.u(uint64(n))
	return e.b
}

// chunkSumHead turns a msgChunk's head (chunkHead) into a msgChunkSum's:
// header length (4) ‖ head ‖ CRC-32C of the pairs (4), appended to dst.
func chunkSumHead(dst, head, pairs []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(head)+4))
	dst = append(dst, head...)
	return binary.BigEndian.AppendUint32(dst, chunkChecksum(pairs))
}

// decodeChunk decodes the payload of a frame of type typ (isChunk).
func decodeChunk(typ byte, p []byte) (*engine.SyncChunk, error) {
	d := &dec{b: p}
	pairs := d // the pairs follow the head
	if typ == msgChunkSum {
		if len(p) < 8 {
			return nil, fmt.Errorf("%w: short chunk frame", ErrFrame)
		}
		h := int(binary.BigEndian.Uint32(p)) // within p: framer.read
		if h < 4 || 4+h > len(p) {
			return nil, fmt.Errorf("%w: chunk header of %d bytes", ErrFrame, h)
		}
		head, sum, rest := p[4:h], binary.BigEndian.Uint32(p[h:]), p[4+h:]
		if chunkChecksum(rest) != sum {
			return nil, fmt.Errorf("%w: the chunk's pairs fail their checksum (damaged on their way)", ErrFrame)
		}
		d, pairs = &dec{b: head}, &dec{b: rest}
	}
	c := &engine.SyncChunk{Seq: d.u(), Epoch: d.u(), Time: time.Unix(0, d.i()).UTC()}
	c.Lo = d.bytes()
	hasHi := d.flag()
	hi := d.bytes()
	if hasHi {
		c.Hi = append([]byte{}, hi...)
	}
	n := d.u()
	if d != pairs {
		if err := d.end(); err != nil {
			return nil, err
		}
	}
	d = pairs
	if d.err == nil && n > uint64(len(d.b)/2) {
		d.fail("list longer than the frame")
		n = 0
	}
	// Sized once (a sync of small files decodes ~100 pairs per MiB of
	// chunks: growing the slice pair by pair copied each of them about
	// twice), but by no more than a chunk holds (chunkMaxPairs): a frame
	// of empty pairs would otherwise ask 24 bytes of slice per byte.
	c.Pairs = make([]engine.Mutation, 0, min(n, chunkMaxPairs))
	for range n {
		k, v := d.bytes(), d.bytes()
		if d.err != nil {
			break
		}
		c.Pairs = append(c.Pairs, engine.Mutation{Key: k, Value: v})
	}
	return c, d.end()
}

// heartbeat: the source's clock read before its durable mark, so that
// everything committed before Time has a seq at most Durable.
type heartbeat struct {
	Durable uint64
	Time    time.Time
	Epoch   uint64
}

func (h *heartbeat) encode() []byte {
	var e enc
	e.u(h.Durable)
	e.i(h.Time.UnixNano())
	e.u(h.Epoch)
	return e.b
}

func decodeHeartbeat(p []byte) (*heartbeat, error) {
	d := &dec{b: p}
	h := &heartbeat{Durable: d.u(), Time: time.Unix(0, d.i()).UTC(), Epoch: d.u()}
	return h, d.end()
}

// ack is the destination's durable state, sent after each apply, ingest
// and heartbeat.
type ack struct {
	AppliedEpoch uint64
	AppliedSeq   uint64
	AppliedTime  time.Time
	// Synced is the source time up to which everything is durably applied
	// (from heartbeats); zero until the replica is consistent.
	Synced time.Time
	// Initial sync: chunks are being ingested from Cursor on; records
	// replay from SyncBase+1 afterwards.
	Syncing  bool
	SyncBase uint64
	Cursor   []byte
	// Rewind asks the source to resend from AppliedSeq+1 (or the chunk at
	// Cursor), after pushing Missing.
	Rewind  bool
	Missing []blocks.ID
	// Fatal is set when the replica cannot continue (status ERROR).
	Fatal string
	// Resync: the destination is an existing file system being made a
	// copy of the source. Fork is the last seq both histories share (0 =
	// unknown: compare range checksums); Need lists keys its own journal
	// touched after the fork, Differ ranges whose checksums differ: the
	// source sends its content for both.
	Resync bool
	Fork   uint64
	Need   [][]byte
	Differ []engine.SyncRange
	// Echo is the source's own time on the newest message from it the
	// destination had received when it sent this ack: the stream's
	// request (its signed time, in whole seconds) or the latest heartbeat
	// (its Time). The source's lease runs from when it sent that
	// (outbound.leaseFrom): a lease granted by an answer starts when the
	// source sent what it answers, so a delay either way shortens it and
	// never lengthens it.
	// Sent to sources that ask for it (featureLeaseEcho), after Differ
	// (sources before it refuse trailing bytes); zero: not sent.
	Echo time.Time
	// Waiting says, in public words, why the destination is not applying
	// what it receives ("": it is, or does not say). Sent to sources that
	// ask for it (featureWaitReason), after Echo (written then, zero or
	// not).
	Waiting string
}

func (a *ack) encode() []byte {
	var e enc
	e.u(a.AppliedEpoch)
	e.u(a.AppliedSeq)
	e.i(a.AppliedTime.UnixNano())
	e.i(timeNanos(a.Synced))
	e.flag(a.Syncing)
	e.u(a.SyncBase)
	e.bytes(a.Cursor)
	e.flag(a.Rewind)
	e.u(uint64(len(a.Missing)))
	for _, id := range a.Missing {
		e.bytes(id[:])
	}
	e.bytes([]byte(a.Fatal))
	e.flag(a.Resync)
	e.u(a.Fork)
	e.u(uint64(len(a.Need)))
	for _, k := range a.Need {
		e.bytes(k)
	}
	e.u(uint64(len(a.Differ)))
	for _, r := range a.Differ {
		e.bytes(r.Lo)
		e.hi(r.Hi)
	}
	if !a.Echo.IsZero() || a.Waiting != "" {
		e.i(timeNanos(a.Echo))
	}
	if a.Waiting != "" {
		e.bytes([]byte(a.Waiting))
	}
	return e.b
}

func decodeAck(p []byte) (*ack, error) {
	d := &dec{b: p}
	a := &ack{AppliedEpoch: d.u(), AppliedSeq: d.u(), AppliedTime: time.Unix(0, d.i()).UTC()}
	a.Synced = nanosTime(d.i())
	a.Syncing = d.flag()
	a.SyncBase = d.u()
	if c := d.bytes(); len(c) > 0 {
		a.Cursor = append([]byte{}, c...)
	}
	a.Rewind = d.flag()
	n := d.count(1 + blocks.IDSize)
	for range n {
		a.Missing = append(a.Missing, d.id())
	}
	a.Fatal = string(d.bytes())
	a.Resync = d.flag()
	a.Fork = d.u()
	n = d.count(1)
	for range n {
		a.Need = append(a.Need, append([]byte{}, d.bytes()...))
	}
	n = d.count(3)
	for range n {
		lo := append([]byte{}, d.bytes()...)
		a.Differ = append(a.Differ, engine.SyncRange{Lo: lo, Hi: d.hi()})
	}
	if d.err == nil && len(d.b) > 0 {
		a.Echo = nanosTime(d.i())
	}
	if d.err == nil && len(d.b) > 0 {
		a.Waiting = string(d.bytes())
	}
	return a, d.end()
}

func timeNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func nanosTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Resync messages (failback into an existing file system).
const (
	msgRanges     byte = 6 // ranges to replace: seq ‖ epoch ‖ time ‖ n ‖ n × (lo ‖ has-hi ‖ hi ‖ m ‖ m × (key ‖ value))
	msgRangeSums  byte = 7 // n ‖ n × (lo ‖ has-hi ‖ hi ‖ checksum)
	msgResyncDone byte = 8 // base ‖ top ‖ epoch ‖ time
	// msgResyncBegin (empty) asks a destination that fell behind the
	// retained journal to start a resync of its state.
	msgResyncBegin byte = 9
)

type rangesMsg struct {
	seq, epoch uint64
	time       time.Time
	ranges     []engine.SyncRange
}

func (e *enc) hi(hi []byte) {
	e.flag(hi != nil)
	e.bytes(hi)
}

func (d *dec) hi() []byte {
	has := d.flag()
	b := d.bytes()
	if !has {
		return nil
	}
	return append([]byte{}, b...)
}

func (m *rangesMsg) encode() []byte {
	var e enc
	e.u(m.seq)
	e.u(m.epoch)
	e.i(m.time.UnixNano())
	e.u(uint64(len(m.ranges)))
	for _, r := range m.ranges {
		e.bytes(r.Lo)
		e.hi(r.Hi)
		e.u(uint64(len(r.Pairs)))
		for _, p := range r.Pairs {
			e.bytes(p.Key)
			e.bytes(p.Value)
		}
	}
	return e.b
}

func decodeRanges(p []byte) (*rangesMsg, error) {
	d := &dec{b: p}
	m := &rangesMsg{seq: d.u(), epoch: d.u(), time: time.Unix(0, d.i()).UTC()}
	n := d.count(3)
	for range n {
		r := engine.SyncRange{Lo: d.bytes(), Hi: d.hi()}
		k := d.count(2)
		for range k {
			key, v := d.bytes(), d.bytes()
			if d.err != nil {
				break
			}
			r.Pairs = append(r.Pairs, engine.Mutation{Key: key, Value: v})
		}
		if d.err != nil {
			break
		}
		m.ranges = append(m.ranges, r)
	}
	return m, d.end()
}

// rangeSum is one range's checksum on the source.
type rangeSum struct {
	lo, hi []byte
	sum    [32]byte
}

func encodeRangeSums(sums []rangeSum) []byte {
	var e enc
	e.u(uint64(len(sums)))
	for _, s := range sums {
		e.bytes(s.lo)
		e.hi(s.hi)
		e.bytes(s.sum[:])
	}
	return e.b
}

func decodeRangeSums(p []byte) ([]rangeSum, error) {
	d := &dec{b: p}
	n := d.count(35)
	var out []rangeSum
	for range n {
		s := rangeSum{lo: d.bytes(), hi: d.hi()}
		sum := d.bytes()
		if d.err != nil {
			break
		}
		if len(sum) != 32 {
			d.fail("checksum size")
			break
		}
		copy(s.sum[:], sum)
		out = append(out, s)
	}
	return out, d.end()
}

// resyncDone ends the source's part of a resync.
type resyncDone struct {
	base, top, epoch uint64
	time             time.Time
}

func (r *resyncDone) encode() []byte {
	var e enc
	e.u(r.base)
	e.u(r.top)
	e.u(r.epoch)
	e.i(r.time.UnixNano())
	return e.b
}

func decodeResyncDone(p []byte) (*resyncDone, error) {
	d := &dec{b: p}
	r := &resyncDone{base: d.u(), top: d.u(), epoch: d.u(), time: time.Unix(0, d.i()).UTC()}
	return r, d.end()
}
