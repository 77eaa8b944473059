package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"github.com/regionfs/regionfs/internal/engine/blocks"
)

// Mutation is the after-image of one replicated key: its new value, or its
// deletion. Key is relative to the file system (no local prefix).
type Mutation struct {
	Key    []byte
	Value  []byte
	Delete bool
}

// OpSummary says what a transaction did, for audit and loss reports.
type OpSummary struct {
	Op    string   // e.g. "create", "write", "rename"
	Inos  []uint64 // inodes involved
	Names []string // names involved
}

func (s OpSummary) String() string {
	var b bytes.Buffer
	b.WriteString(s.Op)
	for _, ino := range s.Inos {
		fmt.Fprintf(&b, " ino=%d", ino)
	}
	for _, n := range s.Names {
		fmt.Fprintf(&b, " name=%q", n)
	}
	return b.String()
}

// Record is one journal record: one source transaction.
type Record struct {
	Epoch     uint64
	Seq       uint64
	Time      time.Time // source commit time
	Op        OpSummary
	Mutations []Mutation  // sorted by key, one per key
	AddedRefs []blocks.ID // blocks this transaction adds a reference to
	ZeroRefs  []blocks.ID // blocks whose reference count reached zero
}

const recordVersion = JournalFormatVersion

// JournalFormatVersion is the version byte of journal records.
const JournalFormatVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode returns the versioned binary form of r, ending in a CRC-32C.
func (r *Record) Encode() []byte { return r.AppendEncode(make([]byte, 0, r.sizeHint())) }

// AppendEncode appends the record's encoding (Encode's) to b.
func (r *Record) AppendEncode(b []byte) []byte {
	start := len(b)
	b = slices.Grow(b, r.sizeHint())
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, r.Epoch)
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendVarint(b, r.Time.UnixNano())
	b = appendString(b, r.Op.Op)
	b = binary.AppendUvarint(b, uint64(len(r.Op.Inos)))
	for _, ino := range r.Op.Inos {
		b = binary.AppendUvarint(b, ino)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Op.Names)))
	for _, n := range r.Op.Names {
		b = appendString(b, n)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Mutations)))
	for _, m := range r.Mutations {
		if m.Delete {
			b = append(b, 1)
			b = appendBytes(b, m.Key)
			continue
		}
		b = append(b, 0)
		b = appendBytes(b, m.Key)
		b = appendBytes(b, m.Value)
	}
	for _, ids := range [][]blocks.ID{r.AddedRefs, r.ZeroRefs} {
		b = binary.AppendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			b = append(b, id[:]...)
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

func (r *Record) sizeHint() int {
	n := 64 + len(r.Op.Op) + 10*len(r.Op.Inos) + blocks.IDSize*(len(r.AddedRefs)+len(r.ZeroRefs))
	for _, s := range r.Op.Names {
		n += len(s) + 2
	}
	for _, m := range r.Mutations {
		n += len(m.Key) + len(m.Value) + 7
	}
	return n
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// DecodeRecord parses an encoded record. Damaged input returns an error
// wrapping ErrCorrupt; it never panics.
func DecodeRecord(b []byte) (*Record, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("%w: record of %d bytes", ErrCorrupt, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: record checksum mismatch", ErrCorrupt)
	}
	if body[0] != recordVersion {
		return nil, fmt.Errorf("%w: record version %d", ErrCorrupt, body[0])
	}
	d := decoder{b: body[1:]}
	r := &Record{}
	r.Epoch = d.uvarint()
	r.Seq = d.uvarint()
	r.Time = time.Unix(0, d.varint()).UTC()
	r.Op.Op = string(d.bytes())
	if n := d.count(1); n > 0 {
		r.Op.Inos = make([]uint64, n)
		for i := range r.Op.Inos {
			r.Op.Inos[i] = d.uvarint()
		}
	}
	if n := d.count(1); n > 0 {
		r.Op.Names = make([]string, n)
		for i := range r.Op.Names {
			r.Op.Names[i] = string(d.bytes())
		}
	}
	if n := d.count(2); n > 0 {
		r.Mutations = make([]Mutation, n)
		for i := range r.Mutations {
			m := &r.Mutations[i]
			switch d.byte() {
			case 0:
				m.Key = d.bytes()
				m.Value = d.bytes()
			case 1:
				m.Key, m.Delete = d.bytes(), true
			default:
				d.fail("mutation kind")
			}
			if d.err == nil && len(m.Key) == 0 {
				d.fail("empty mutation key")
			}
			if d.err == nil && i > 0 && bytes.Compare(r.Mutations[i-1].Key, m.Key) >= 0 {
				d.fail("mutations out of order")
			}
		}
	}
	r.AddedRefs = d.ids()
	r.ZeroRefs = d.ids()
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: record: %s", ErrCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("short")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("length beyond end")
		return nil
	}
	v := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return v
}

// count reads an element count, rejecting counts that cannot fit in the
// remaining bytes at minSize bytes each.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/minSize) {
		d.fail("count beyond end")
		return 0
	}
	return int(n)
}

func (d *decoder) ids() []blocks.ID {
	n := d.count(blocks.IDSize)
	if n == 0 {
		return nil
	}
	ids := make([]blocks.ID, n)
	for i := range ids {
		id, err := blocks.IDFromBytes(d.b[:blocks.IDSize])
		if err != nil {
			d.fail("block id")
			return nil
		}
		ids[i] = id
		d.b = d.b[blocks.IDSize:]
	}
	return ids
}
