package rpc

import (
	"crypto/cipher"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Sealing replies outside the connection's write lock.
//
// Write seals under BC's lock and writes in the same turn, so a
// connection's replies are sealed one at a time and the sealing of one
// waits for the socket write of the one before (AES-GCM of a 1 MiB READ
// reply is ~0.25 ms here, on the path of every reply). WriteRecord
// instead reserves the sequence numbers of a whole RPC record's TLS
// records under the lock (a ticket), seals them outside it into a buffer
// of its own, and writes them when every earlier ticket has been
// written. So several replies of a connection are sealed at once, and
// the next one is sealed while the one before goes out.
//
// The invariant that keeps the nonces unique and in order: a record's
// nonce is its sequence number under its key, sequence numbers are
// handed out under BC's lock only, each once, and records reach the
// socket in the order they were handed out: tickets are written in the
// order they were issued (turn), Write seals only while no ticket is
// outstanding (what it gathers in BC's buffer precedes every ticket's
// records, and a ticket's turn flushes that buffer first), and after a
// failed write nothing more is written. A key changes between two
// tickets' ranges or inside one, at a sequence boundary: the ticket
// that crosses the limit carries the KeyUpdate record, sealed under the
// old key at its place in the stream.
//
// Write and WriteRecord keep the nonce order whatever their callers do;
// an RPC record stays whole in the stream only if its pieces given to
// Write are not interleaved with a WriteRecord (the NFS server writes
// replies with WriteRecord alone, the client its calls with Write).

// ticketState is a TLSWriter's reservation bookkeeping (guarded by BC's
// lock).
type ticketState struct {
	issued  uint64     // tickets handed out
	written uint64     // tickets done (written, or skipped after an error)
	sealed  uint64     // tickets sealed (tests: sealing outside the lock)
	turn    *sync.Cond // on BC.mu: broadcast when written moves
}

// sealSpan is a run of records sealed under one key: n data records
// from seq on, or (update) the one KeyUpdate record at seq, with the
// request value req.
type sealSpan struct {
	aead   cipher.AEAD
	iv     [12]byte
	seq    uint64
	n      int
	update bool
	req    byte
}

// sealedSize is the size of n bytes of content as records of up to
// MaxTLSPlaintext bytes under aead's overhead, and how many records.
func sealedSize(n, overhead int) (size, records int) {
	records = (n + MaxTLSPlaintext - 1) / MaxTLSPlaintext
	return n + records*(tlsRecordHeader+1+overhead), records
}

// keyUpdateSize is the size of a sealed KeyUpdate record.
func keyUpdateSize(overhead int) int { return tlsRecordHeader + 5 + 1 + overhead }

// WriteRecord seals the bytes of pieces (one or more whole RPC records,
// their record marks included) as application data records and writes
// them in one write, after every record reserved before them. It seals
// outside BC's lock (see above); timeout, when positive, is the write's
// deadline from when its turn comes. A failed write ends the stream: it
// and every later write fail.
func (w *TLSWriter) WriteRecord(pieces [][]byte, timeout time.Duration) error {
	n := 0
	for _, p := range pieces {
		n += len(p)
	}
	if n == 0 {
		return nil
	}
	b := w.BC
	b.mu.Lock()
	if w.err != nil {
		err := w.err
		b.mu.Unlock()
		return err
	}
	overhead := w.key.aead.Overhead()
	size, records := sealedSize(n, overhead)
	var spanBuf [4]sealSpan
	spans, err := w.reserveLocked(records, spanBuf[:0])
	if err != nil {
		b.mu.Unlock()
		return err
	}
	for _, s := range spans {
		if s.update {
			size += keyUpdateSize(overhead)
		}
	}
	ticket := w.tickets.issued
	w.tickets.issued++
	b.mu.Unlock()

	// A ticket is issued: whatever happens, its turn must end, or every
	// later writer waits for ever.
	buf := b.Bufs.sealBuf(size)
	sealed := false
	defer func() {
		if !sealed {
			b.mu.Lock()
			w.waitTurnLocked(ticket)
			w.endLocked(errTLSAborted)
			w.endTurnLocked()
			b.mu.Unlock()
		}
	}()
	buf = sealSpans(buf, pieces, spans)
	sealed = true

	b.mu.Lock()
	w.tickets.sealed++
	w.waitTurnLocked(ticket)
	err = w.err
	if err == nil {
		// What Write gathered before this ticket was issued goes first.
		if err = b.flushLocked(); err != nil {
			w.endLocked(err)
		}
	}
	b.mu.Unlock()
	if err == nil {
		if timeout > 0 {
			_ = b.Conn.SetWriteDeadline(time.Now().Add(timeout))
		}
		_, err = b.Conn.Write(buf)
	}
	// Back on the list at once: the peer may already be sending the
	// next call, whose reply would otherwise find the list empty and
	// take a fresh buffer (TestTLSReadAllocations).
	b.Bufs.putSealBuf(buf)
	b.mu.Lock()
	if err != nil {
		w.endLocked(err)
	}
	w.endTurnLocked()
	b.mu.Unlock()
	return err
}

// errTLSAborted ends a stream whose writer gave up a reserved turn (a
// panic while sealing): the records after it would leave a gap in the
// sequence.
var errTLSAborted = fmt.Errorf("%w: a reserved record was not written", errTLS)

// waitTurnLocked waits until every ticket before ticket is done.
func (w *TLSWriter) waitTurnLocked(ticket uint64) {
	for w.tickets.written != ticket {
		w.turnLocked().Wait()
	}
}

// endTurnLocked ends the current ticket's turn.
func (w *TLSWriter) endTurnLocked() {
	w.tickets.written++
	w.turnLocked().Broadcast()
}

// waitTicketsLocked waits until no ticket is outstanding (Write seals
// only then: its records must follow every ticket's).
func (w *TLSWriter) waitTicketsLocked() {
	for w.tickets.written != w.tickets.issued {
		w.turnLocked().Wait()
	}
}

func (w *TLSWriter) turnLocked() *sync.Cond {
	if w.tickets.turn == nil {
		w.tickets.turn = sync.NewCond(&w.BC.mu)
	}
	return w.tickets.turn
}

// reserveLocked hands out the sequence numbers of records data records,
// with the KeyUpdates due before or among them (as sealLocked would
// send them, record by record), appending their spans to spans.
func (w *TLSWriter) reserveLocked(records int, spans []sealSpan) ([]sealSpan, error) {
	for records > 0 {
		if req, due := w.updateDueLocked(); due {
			spans = append(spans, sealSpan{aead: w.key.aead, iv: w.key.iv, seq: w.key.seq, n: 1, update: true, req: req})
			w.key.seq++
			if err := w.key.update(); err != nil {
				w.endLocked(err)
				return nil, err
			}
			w.KeyUpdates.Add(1)
		}
		k := int(min(uint64(records), w.keyLimit()-w.key.seq))
		spans = append(spans, sealSpan{aead: w.key.aead, iv: w.key.iv, seq: w.key.seq, n: k})
		w.key.seq += uint64(k)
		records -= k
	}
	return spans, nil
}

// updateDueLocked says whether a KeyUpdate must precede the next record,
// and its request value; it clears the peer's request and the reader's
// wish it answers.
func (w *TLSWriter) updateDueLocked() (req byte, due bool) {
	if w.key.seq < w.keyLimit() && !w.answer.Load() && !w.ask.Load() {
		return 0, false
	}
	// RFC 8446 4.6.3: update_requested asks the peer to move its key
	// too; an answer to the peer's request (answer) is sent as
	// update_not_requested unless this side needs the peer's key moved
	// on its own account.
	if w.ask.Swap(false) {
		req = 1
	}
	w.answer.Store(false)
	return req, true
}

// sealSpans appends the records of spans to dst: the data records take
// the bytes of pieces in order, MaxTLSPlaintext a record (the last one
// the rest).
func sealSpans(dst []byte, pieces [][]byte, spans []sealSpan) []byte {
	pi, off := 0, 0 // the next content byte: pieces[pi][off]
	left := 0
	for _, p := range pieces {
		left += len(p)
	}
	for _, s := range spans {
		if s.update {
			start := len(dst)
			dst = append(dst, tlsTypeAppData, 3, 3, 0, 0, tlsMsgKeyUpdate, 0, 0, 1, s.req)
			dst = sealAt(dst, start, s.aead, s.iv, s.seq, tlsTypeHandshake)
			continue
		}
		for i := range s.n {
			start := len(dst)
			dst = append(dst, tlsTypeAppData, 3, 3, 0, 0)
			k := min(left, MaxTLSPlaintext)
			left -= k
			for k > 0 {
				c := min(k, len(pieces[pi])-off)
				dst = append(dst, pieces[pi][off:off+c]...)
				k -= c
				if off += c; off == len(pieces[pi]) {
					pi, off = pi+1, 0
				}
			}
			dst = sealAt(dst, start, s.aead, s.iv, s.seq+uint64(i), tlsTypeAppData)
		}
	}
	return dst
}

// sealAt seals the record at dst[start:] (a header whose length is
// not yet set, then the content) under aead at seq: the content type
// follows the content, the length is set and the whole sealed in place.
func sealAt(dst []byte, start int, aead cipher.AEAD, iv [12]byte, seq uint64, typ byte) []byte {
	dst = append(dst, typ)
	size := len(dst) - start - tlsRecordHeader + aead.Overhead()
	dst = slices.Grow(dst, aead.Overhead()) // no-op in a buffer sized for it
	rec := dst[start:]
	rec[3], rec[4] = byte(size>>8), byte(size)
	nonce := seqNonce(iv, seq)
	aead.Seal(rec[tlsRecordHeader:tlsRecordHeader], nonce[:], rec[tlsRecordHeader:], rec[:tlsRecordHeader])
	return dst[:start+tlsRecordHeader+size]
}

// sealBuf returns a buffer with room for n bytes: one of l's when it is
// large enough.
func (l *Buffers) sealBuf(n int) []byte {
	if n > smallSealBytes {
		if b := l.take(); b != nil {
			if cap(b) >= n {
				return b[:0]
			}
			l.putSealBuf(b)
		}
		return make([]byte, 0, max(n, BatchWholeReply))
	}
	return make([]byte, 0, n)
}

// putSealBuf gives a large buffer back to l.
func (l *Buffers) putSealBuf(b []byte) {
	if cap(b) < BatchWholeReply || cap(b) > 2*BatchWholeReply {
		return
	}
	l.give(b)
}

// smallSealBytes: a sealed reply up to this size gets a buffer of its
// own (a GETATTR's reply is ~150 bytes; the shared buffers are 1 MiB).
const smallSealBytes = 64 << 10
