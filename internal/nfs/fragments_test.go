package nfs

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

// fragmented re-sends a single-fragment record as fragments of size
// bytes up to its upTo-th byte of body, the rest in one last fragment.
func fragmented(rec []byte, size, upTo int) []byte {
	body := rec[rpc.RecordHeaderSize:]
	var out []byte
	for len(body) > 0 {
		n := len(body)
		if done := len(rec) - rpc.RecordHeaderSize - len(body); done < upTo {
			n = min(size, upTo-done, len(body))
		}
		h := uint32(n)
		if n == len(body) {
			h |= 1 << 31
		}
		out = binary.BigEndian.AppendUint32(out, h)
		out = append(out, body[:n]...)
		body = body[n:]
	}
	return out
}

// TestRecordInSmallFragments: a record sent in many small fragments
// (RFC 5531 §11 allows any split) is put together with a bounded number
// of copies: the server grew its buffer by each fragment's length, so a
// 200 KiB WRITE in 32-byte fragments cost ~640 MB of copies and garbage
// (a client could keep a core busy per connection with ~1 MB sent). The
// data arrives whole whatever the fragment size, across the switch from
// a small buffer to a record buffer.
func TestRecordInSmallFragments(t *testing.T) {
	v := newEnv(t, envOpt{})
	cl := v.dial()
	ctx := t.Context()
	fh := v.file(cl, "f")
	const size = 200 << 10
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	for i, frag := range []int{32, 1, 4093, 70000, 64 << 10} {
		data[0] = byte(i)
		call := rawCall(uint32(100+i), proto.ProgNFS, proto.VersNFS, proto.ProcWrite, client.Unix("h", 0, 0),
			&proto.WriteArgs{FH: fh, Count: size, Stable: proto.FileSync, Data: data})
		upTo := size
		if frag == 1 {
			// The first 8 KiB only (200 K one-byte fragments take
			// longer than the record's deadline).
			upTo = 8 << 10
		}
		wire := fragmented(call, frag, upTo)
		r := v.rawDial(t)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r.send(wire)
		rep := r.reply()
		runtime.ReadMemStats(&after)
		if st := acceptStat(t, rep); st != rpc.Success {
			t.Fatalf("fragments of %d bytes: accept status %v", frag, st)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("fragments of %d bytes: %d bytes allocated", frag, alloc)
		if alloc > 16<<20 {
			t.Errorf("a %d KiB WRITE in fragments of %d bytes allocated %d MiB: its buffer grows by each fragment", size>>10, frag, alloc>>20)
		}
		rr, err := cl.Read(ctx, fh, 0, size)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rr.Data, data) {
			t.Fatalf("fragments of %d bytes: the file does not hold the WRITE's data", frag)
		}
	}
}
