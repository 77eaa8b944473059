package rpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// Record marking errors.
var (
	// ErrRecordTooLarge: a record's fragments add up to more than the
	// maximum; the connection must be closed (its remaining bytes cannot
	// be skipped reliably).
	ErrRecordTooLarge = errors.New("rpc: record exceeds the maximum size")
)

const lastFragment = 1 << 31

// ReadRecord reads one record (all its fragments) from r into buf's
// storage (reused when large enough) and returns it. It fails with
// ErrRecordTooLarge before reading a fragment that would take the record
// past limit bytes, with io.EOF when r ends cleanly before a record, and
// with io.ErrUnexpectedEOF when r ends inside one.
func ReadRecord(r io.Reader, buf []byte, limit int) ([]byte, error) {
	rec := buf[:0]
	var hdr [4]byte
	first := true
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF && !first {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		first = false
		h := binary.BigEndian.Uint32(hdr[:])
		n := int(h &^ lastFragment)
		if n > limit-len(rec) {
			return nil, fmt.Errorf("%w: %d+%d > %d bytes", ErrRecordTooLarge, len(rec), n, limit)
		}
		start := len(rec)
		if cap(rec)-start < n {
			// Past the first fragment twice as large (up to limit): a
			// record in many small fragments is copied a few times,
			// not once per fragment. (start+n ≤ limit, checked above.)
			size := min(2*cap(rec), limit)
			if start == 0 || size < start+n {
				size = start + n
			}
			grown := make([]byte, start, size)
			copy(grown, rec)
			rec = grown
		}
		rec = rec[:start+n]
		if _, err := io.ReadFull(r, rec[start:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if h&lastFragment != 0 {
			return rec, nil
		}
	}
}

// maxFragment is the largest fragment length a header can carry.
const maxFragment = lastFragment - 1

// WriteRecord writes msg to w as one record in as few system calls as it
// can: a single fragment (or several for a message over 2 GiB - 1).
func WriteRecord(w io.Writer, msg []byte) error {
	for {
		n := min(len(msg), maxFragment)
		h := uint32(n)
		if n == len(msg) {
			h |= lastFragment
		}
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], h)
		bufs := net.Buffers{hdr[:], msg[:n]}
		if _, err := bufs.WriteTo(w); err != nil {
			return err
		}
		msg = msg[n:]
		if h&lastFragment != 0 {
			return nil
		}
	}
}

// RecordHeaderSize is the size of a fragment header. An encoder that
// reserves it at the start of a message and calls FinishRecord at the end
// gets a complete single-fragment record to write with one system call.
const RecordHeaderSize = 4

// FinishRecord writes the last-fragment header for the message that
// follows the first RecordHeaderSize bytes of b.
func FinishRecord(b []byte) { FinishRecordWithTail(b, 0) }

// FinishRecordWithTail writes the header of a record made of b's message
// and tail more bytes sent after it.
func FinishRecordWithTail(b []byte, tail int) {
	binary.BigEndian.PutUint32(b, uint32(len(b)-RecordHeaderSize+tail)|lastFragment)
}
