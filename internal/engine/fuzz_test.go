package engine

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/blocks"
)

func sampleRecord() *Record {
	id := blocks.ID{1, 2, 3}
	return &Record{
		Epoch: 3, Seq: 77, Time: time.Unix(12, 34).UTC(),
		Op:        OpSummary{Op: "rename", Inos: []uint64{1, 5}, Names: []string{"a", "b"}},
		Mutations: []Mutation{{Key: []byte("Ia"), Value: []byte("v")}, {Key: []byte("Ib"), Delete: true}},
		AddedRefs: []blocks.ID{id},
		ZeroRefs:  []blocks.ID{id},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := sampleRecord()
	got, err := DecodeRecord(r.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
	enc := r.Encode()
	for i := range enc {
		b := bytes.Clone(enc)
		b[i] ^= 0x20
		if _, err := DecodeRecord(b); err == nil {
			t.Fatalf("flipped byte %d decoded without error", i)
		}
	}
}

// FuzzDecodeRecord: arbitrary bytes never panic; whatever decodes
// re-encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(sampleRecord().Encode())
	f.Add((&Record{Seq: 1, Time: time.Unix(0, 0)}).Encode())
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4, 5, 6})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Encode(), b) {
			t.Fatalf("decoded record re-encodes differently")
		}
	})
}

// FuzzRelKey: key parsing never panics and round-trips.
func FuzzRelKey(f *testing.F) {
	id := blocks.ID{byte(blocks.AlgBLAKE3), 9}
	for _, k := range [][]byte{
		metaKey(metaSuper), attrKey(7), blockKey(7, 3), dentryKey(1, "name"), extentKey(4, 5, 6),
		inlineKey(9), orderKey(1, 2), refKey(id), zombieKey(3), mergeKey(3, 4), {}, {'I'}, {'Q', 1},
	} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, k []byte) {
		r, err := parseRelKey(k)
		if err != nil {
			return
		}
		if !bytes.Equal(r.encode(), k) {
			t.Fatalf("key %x parses to %+v which encodes to %x", k, r, r.encode())
		}
	})
}

// FuzzValues: the value decoders never panic on arbitrary input, and what
// they accept re-encodes to the same bytes.
func FuzzValues(f *testing.F) {
	n := &inode{typ: TypeSymlink, mode: 0o777, nlink: 1, target: "x/y"}
	f.Add(n.encode()) // version 1: held not known
	f.Add((&inode{typ: TypeRegular, mode: 0o644, nlink: 1, size: 1 << 40, held: 8192, heldOK: true}).encode())
	f.Add((&inode{typ: TypeRegular, mode: 0o644, nlink: 1, size: 5}).encode())
	f.Add(dentry{ino: 5, typ: TypeDir, cookie: 9}.encode())
	f.Add(orderEntry{ino: 5, typ: TypeRegular, name: "n"}.encode())
	f.Add(blockEntry{id: blocks.ID{byte(blocks.AlgBLAKE3)}, length: 7}.encode())
	f.Add(encodeKeyList([][]byte{attrKey(7), dentryKey(1, "n"), {}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := decodeInode(b); err == nil && !bytes.Equal(n.encode(), b) {
			t.Fatalf("inode re-encodes differently")
		}
		if d, err := decodeDentry(b); err == nil && !bytes.Equal(d.encode(), b) {
			t.Fatalf("dentry re-encodes differently")
		}
		if o, err := decodeOrder(b); err == nil && !bytes.Equal(o.encode(), b) {
			t.Fatalf("order entry re-encodes differently")
		}
		if be, err := decodeBlockEntry(b); err == nil && !bytes.Equal(be.encode(), b) {
			t.Fatalf("block entry re-encodes differently")
		}
		if off, data, err := decodeExtent(b); err == nil && !bytes.Equal(encodeExtent(off, data), b) {
			t.Fatalf("extent re-encodes differently")
		}
		if keys, err := decodeKeyList(b); err == nil {
			// A resync's key set (stored, read back after a restart):
			// what decodes re-encodes to a list that decodes the same.
			again, err := decodeKeyList(encodeKeyList(keys))
			if err != nil || !reflect.DeepEqual(again, keys) {
				t.Fatalf("key list %q re-decodes as %q, %v", keys, again, err)
			}
		}
		_, _ = decodeSuper(b)
		_, _ = decodeEpochs(b)
		_, _ = decodeMode(b)
		_, _ = decodeFSRecord(b)
		_, _ = decodeDomain(b)
		_, _ = decodeGCEntry(b)
	})
}
