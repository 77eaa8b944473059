package replication

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/blocks"
)

func testID(b byte) blocks.ID {
	var id blocks.ID
	id[0] = byte(blocks.AlgBLAKE3)
	for i := 1; i < len(id); i++ {
		id[i] = b + byte(i)
	}
	return id
}

func TestFrameRoundTripAndTamper(t *testing.T) {
	key := []byte("session-key-session-key-32-bytes")
	var buf bytes.Buffer
	w := framer{key: key, dir: dirToDest}
	types := []byte{msgRecords, msgHeartbeat, msgChunk}
	for i, p := range [][]byte{[]byte("one"), nil, bytes.Repeat([]byte{7}, 70000)} {
		if err := w.write(&buf, types[i], p); err != nil {
			t.Fatal(err)
		}
	}
	stream := buf.Bytes()
	r := framer{key: key, dir: dirToDest}
	rd := bytes.NewReader(stream)
	for i := range 3 {
		typ, p, err := r.read(rd)
		if err != nil || typ != types[i] {
			t.Fatalf("frame %d: type %d, %v", i, typ, err)
		}
		if i == 2 && len(p) != 70000 {
			t.Fatalf("frame 2 is %d bytes", len(p))
		}
	}
	if _, _, err := r.read(rd); err != io.EOF {
		t.Fatalf("after the last frame: %v", err)
	}
	cases := map[string]func() ([]byte, framer){
		"flipped payload bit": func() ([]byte, framer) {
			b := bytes.Clone(stream)
			b[frameHead+1] ^= 1
			return b, framer{key: key, dir: dirToDest}
		},
		"flipped type": func() ([]byte, framer) {
			b := bytes.Clone(stream)
			b[4] ^= 2
			return b, framer{key: key, dir: dirToDest}
		},
		"wrong key": func() ([]byte, framer) {
			return stream, framer{key: []byte("another key"), dir: dirToDest}
		},
		"reflected to its sender": func() ([]byte, framer) {
			return stream, framer{key: key, dir: dirToSource}
		},
		"replayed (counter behind)": func() ([]byte, framer) {
			return stream, framer{key: key, dir: dirToDest, counter: 1}
		},
		"huge length": func() ([]byte, framer) {
			return []byte{0x7f, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 1}, framer{key: key, dir: dirToDest}
		},
		"truncated": func() ([]byte, framer) {
			return stream[:20], framer{key: key, dir: dirToDest}
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			b, f := mk()
			_, _, err := f.read(bytes.NewReader(b))
			if !errors.Is(err, ErrFrame) {
				t.Fatalf("read: %v, want ErrFrame", err)
			}
		})
	}
}

// Block data travels outside the frame MAC; a changed byte of it is caught
// by the block's id (or its checksum, in a msgBlocksSum frame), a changed
// header byte — an id, a length, a checksum — by the MAC.
func TestBlocksFrameAuthentication(t *testing.T) {
	key := []byte("session-key-session-key-32-bytes")
	ids := []blocks.ID{testID(1), testID(2)}
	data := [][]byte{[]byte("first block"), []byte("second")}
	for _, m := range []*blocksMsg{
		{ids: ids, data: data},
		{ids: ids, data: data, sums: []uint32{blocks.Checksum(ids[0], data[0]), blocks.Checksum(ids[1], data[1])}},
	} {
		t.Run(fmt.Sprintf("type %d", m.typ()), func(t *testing.T) {
			var buf bytes.Buffer
			w := framer{key: key, dir: dirToDest}
			if err := w.write(&buf, m.typ(), m.parts()...); err != nil {
				t.Fatal(err)
			}
			frame := buf.Bytes()
			read := func(b []byte) (*blocksMsg, error) {
				r := framer{key: key, dir: dirToDest}
				typ, p, err := r.read(bytes.NewReader(b))
				if err != nil {
					return nil, err
				}
				if typ != m.typ() {
					t.Fatalf("type %d", typ)
				}
				return decodeBlocks(typ, p)
			}
			got, err := read(frame)
			if err != nil || string(got.data[1]) != "second" || got.ids[0] != testID(1) || (m.sums == nil) != (got.sums == nil) {
				t.Fatalf("round trip: %+v %v", got, err)
			}
			for i := range got.sums {
				if got.sums[i] != m.sums[i] {
					t.Fatalf("checksum %d: %08x, sent %08x", i, got.sums[i], m.sums[i])
				}
			}
			// A data byte: the frame passes, the data no longer matches
			// its id (PutBlock refuses it: see
			// TestDamagedAndReplayedTrafficRejected) nor its checksum
			// (TestPushedBlockChecks).
			b := bytes.Clone(frame)
			b[len(b)-macSize-1] ^= 1
			got, err = read(b)
			if err != nil || string(got.data[1]) == "second" {
				t.Fatalf("data byte: %v", err)
			}
			if got.sums != nil && blocks.Checksum(got.ids[1], got.data[1]) == got.sums[1] {
				t.Fatal("a damaged block passes its checksum")
			}
			// Each header byte (ids, lengths, checksums): the MAC fails.
			hdrLen := int(binary.BigEndian.Uint32(frame[frameHead:]))
			for i := frameHead + 4; i < frameHead+4+hdrLen; i++ {
				b = bytes.Clone(frame)
				b[i] ^= 1
				if _, err := read(b); !errors.Is(err, ErrFrame) {
					t.Fatalf("header byte %d: %v", i-frameHead-4, err)
				}
			}
		})
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	now := time.Unix(1700000000, 123).UTC()
	a := &ack{AppliedEpoch: 2, AppliedSeq: 99, AppliedTime: now, Synced: now.Add(-time.Second), Syncing: true, SyncBase: 7,
		Cursor: []byte("I\x00\x01"), Rewind: true, Missing: []blocks.ID{testID(1), testID(2)}, Fatal: "boom",
		Differ: []engine.SyncRange{{Lo: []byte("a"), Hi: []byte("b")}}, Echo: now.Add(-2 * time.Second)}
	got, err := decodeAck(a.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.AppliedSeq != 99 || got.SyncBase != 7 || !got.Synced.Equal(a.Synced) || !bytes.Equal(got.Cursor, a.Cursor) ||
		len(got.Missing) != 2 || got.Missing[1] != testID(2) || got.Fatal != "boom" || !got.Rewind || !got.Syncing ||
		len(got.Differ) != 1 || !got.Echo.Equal(a.Echo) {
		t.Fatalf("ack round trip: %+v", got)
	}
	if z, err := decodeAck((&ack{}).encode()); err != nil || !z.Synced.IsZero() || z.Cursor != nil {
		t.Fatalf("zero ack: %+v %v", z, err)
	}
	c := &engine.SyncChunk{Seq: 5, Epoch: 1, Time: now, Lo: []byte("A"), Hi: []byte("Z"),
		Pairs: []engine.Mutation{{Key: []byte("B"), Value: []byte("v")}, {Key: []byte("C"), Value: nil}}}
	gc, err := decodeChunk(encodeChunk(c))
	if err != nil || gc.Seq != 5 || !bytes.Equal(gc.Hi, []byte("Z")) || len(gc.Pairs) != 2 || string(gc.Pairs[0].Value) != "v" {
		t.Fatalf("chunk round trip: %+v %v", gc, err)
	}
	last := &engine.SyncChunk{Seq: 5, Epoch: 1, Time: now, Lo: []byte("A")}
	if gl, err := decodeChunk(encodeChunk(last)); err != nil || gl.Hi != nil {
		t.Fatalf("last chunk keeps Hi nil: %+v %v", gl, err)
	}
	// An empty (not nil) Hi stays distinct from "to the end".
	empty := &engine.SyncChunk{Seq: 5, Epoch: 1, Time: now, Hi: []byte{}}
	if ge, err := decodeChunk(encodeChunk(empty)); err != nil || ge.Hi == nil {
		t.Fatalf("empty hi: %+v %v", ge, err)
	}
	bm := &blocksMsg{ids: []blocks.ID{testID(3)}, data: [][]byte{[]byte("data")}}
	gb, err := decodeBlocks(msgBlocks, bm.encode())
	if err != nil || gb.ids[0] != testID(3) || string(gb.data[0]) != "data" || gb.sums != nil {
		t.Fatalf("blocks round trip: %+v %v", gb, err)
	}
	bm.sums = []uint32{0xfedcba98}
	gb, err = decodeBlocks(msgBlocksSum, bm.encode())
	if err != nil || gb.ids[0] != testID(3) || string(gb.data[0]) != "data" || len(gb.sums) != 1 || gb.sums[0] != 0xfedcba98 {
		t.Fatalf("blocks with checksums round trip: %+v %v", gb, err)
	}
	recs := []*engine.Record{{Epoch: 1, Seq: 4, Time: now, Op: engine.OpSummary{Op: "mkdir"}},
		{Epoch: 1, Seq: 5, Time: now, Mutations: []engine.Mutation{{Key: []byte("I1"), Value: []byte("x")}}}}
	gr, err := decodeRecords((&recordsMsg{recs: recs}).encode())
	if err != nil || len(gr.recs) != 2 || gr.recs[1].Seq != 5 {
		t.Fatalf("records round trip: %+v %v", gr, err)
	}
	bad := (&recordsMsg{recs: []*engine.Record{recs[1], recs[0]}}).encode()
	if _, err := decodeRecords(bad); !errors.Is(err, ErrFrame) {
		t.Fatalf("records out of order: %v", err)
	}
	h := &heartbeat{Durable: 9, Time: now, Epoch: 3}
	if gh, err := decodeHeartbeat(h.encode()); err != nil || *gh != *h {
		t.Fatalf("heartbeat round trip: %+v %v", gh, err)
	}
}

// Every decoder refuses damaged input with ErrFrame and never panics.
func FuzzDecoders(f *testing.F) {
	now := time.Unix(1700000000, 0)
	f.Add(byte(msgAck), (&ack{AppliedSeq: 3, Missing: []blocks.ID{testID(1)}, Cursor: []byte("x")}).encode())
	f.Add(byte(msgAck), (&ack{AppliedSeq: 3, Echo: now}).encode())
	f.Add(byte(msgChunk), encodeChunk(&engine.SyncChunk{Seq: 1, Epoch: 1, Time: now, Hi: []byte("b"),
		Pairs: []engine.Mutation{{Key: []byte("a"), Value: []byte("1")}}}))
	f.Add(byte(msgBlocks), (&blocksMsg{ids: []blocks.ID{testID(2)}, data: [][]byte{[]byte("d")}}).encode())
	f.Add(byte(5), (&blocksMsg{ids: []blocks.ID{testID(2)}, data: [][]byte{[]byte("d")}, sums: []uint32{0xffffffff}}).encode())
	f.Add(byte(msgRecords), (&recordsMsg{recs: []*engine.Record{{Epoch: 1, Seq: 1, Time: now}}}).encode())
	f.Add(byte(msgHeartbeat), (&heartbeat{Durable: 1, Time: now, Epoch: 1}).encode())
	f.Add(byte(0), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, typ byte, p []byte) {
		var err error
		switch typ % 6 {
		case 0:
			_, err = decodeAck(p)
		case 1:
			_, err = decodeChunk(p)
		case 2:
			_, err = decodeBlocks(msgBlocks, p)
		case 3:
			_, err = decodeRecords(p)
		case 4:
			_, err = decodeHeartbeat(p)
		case 5:
			var m *blocksMsg
			if m, err = decodeBlocks(msgBlocksSum, p); err == nil && len(m.sums) != len(m.ids) {
				t.Fatalf("%d ids, %d checksums", len(m.ids), len(m.sums))
			}
		}
		if err != nil && !errors.Is(err, ErrFrame) {
			t.Fatalf("decoder error does not wrap ErrFrame: %v", err)
		}
	})
}

// The frame reader refuses anything that was not sealed under its key.
func FuzzFrameRead(f *testing.F) {
	key := []byte("k")
	var buf bytes.Buffer
	w := framer{key: key, dir: dirToDest}
	w.write(&buf, msgAck, []byte("payload"))
	f.Add(buf.Bytes())
	f.Add([]byte{0, 0, 0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := framer{key: key, dir: dirToDest}
		typ, p, err := r.read(bytes.NewReader(b))
		if err != nil {
			return
		}
		// Accepted only if it is exactly a frame we sealed.
		var again bytes.Buffer
		w := framer{key: key, dir: dirToDest}
		w.write(&again, typ, p)
		if !bytes.HasPrefix(b, again.Bytes()) {
			t.Fatalf("accepted a frame that was not sealed under the key")
		}
	})
}
