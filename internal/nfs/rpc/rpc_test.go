package rpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

func record(frags ...[]byte) []byte {
	var b []byte
	for i, f := range frags {
		h := uint32(len(f))
		if i == len(frags)-1 {
			h |= lastFragment
		}
		b = binary.BigEndian.AppendUint32(b, h)
		b = append(b, f...)
	}
	return b
}

func TestReadRecord(t *testing.T) {
	in := append(record([]byte("abc"), []byte{}, []byte("defg")), record([]byte("second"))...)
	r := bytes.NewReader(in)
	rec, err := ReadRecord(r, nil, 100)
	if err != nil || string(rec) != "abcdefg" {
		t.Fatalf("first %q %v", rec, err)
	}
	rec, err = ReadRecord(r, rec, 100)
	if err != nil || string(rec) != "second" {
		t.Fatalf("second %q %v", rec, err)
	}
	if _, err := ReadRecord(r, nil, 100); err != io.EOF {
		t.Fatalf("at the end: %v", err)
	}
	// Inside a record: unexpected EOF.
	for _, cut := range []int{2, 5, 9} {
		if _, err := ReadRecord(bytes.NewReader(in[:cut]), nil, 100); err != io.ErrUnexpectedEOF {
			t.Fatalf("cut at %d: %v", cut, err)
		}
	}
	// Too large: refused before reading the fragment.
	huge := []byte{0xff, 0xff, 0xff, 0xff}
	if _, err := ReadRecord(bytes.NewReader(huge), nil, 1<<20); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("2 GiB: %v", err)
	}
	if _, err := ReadRecord(bytes.NewReader(record(make([]byte, 60), make([]byte, 60))), nil, 100); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("fragments over the maximum: %v", err)
	}
	var w bytes.Buffer
	if err := WriteRecord(&w, []byte("payload")); err != nil {
		t.Fatal(err)
	}
	if rec, err := ReadRecord(&w, nil, 100); err != nil || string(rec) != "payload" {
		t.Fatalf("write/read %q %v", rec, err)
	}
}

func TestCallAndReply(t *testing.T) {
	cred := UnixCred{Stamp: 1, MachineName: "host", UID: 1000, GID: 100, GIDs: []uint32{4, 5}}.Auth()
	h := CallHeader{XID: 42, Prog: 100003, Vers: 3, Proc: 1, Cred: cred}
	e := xdr.NewEncoder(nil)
	h.Encode(e)
	e.Uint32(0xabcdef)
	got, args, err := ParseCall(e.Bytes())
	if err != nil || got.XID != 42 || got.Prog != 100003 || got.Proc != 1 || len(args) != 4 {
		t.Fatalf("parse %+v %v", got, err)
	}
	uc, err := ParseUnixCred(got.Cred.Body)
	if err != nil || uc.UID != 1000 || uc.GID != 100 || len(uc.GIDs) != 2 || uc.MachineName != "host" {
		t.Fatalf("cred %+v %v", uc, err)
	}
	// Replies.
	for _, c := range []struct {
		build func(*xdr.Encoder)
		check func(error) bool
	}{
		{func(e *xdr.Encoder) { AppendAccepted(e, 1, Success); e.Uint32(9) }, func(err error) bool { return err == nil }},
		{func(e *xdr.Encoder) { AppendAccepted(e, 1, ProcUnavail) }, func(err error) bool {
			re, ok := err.(*ReplyError)
			return ok && re.Accepted && re.AcceptStat == ProcUnavail
		}},
		{func(e *xdr.Encoder) { AppendAccepted(e, 1, ProgMismatch); AppendMismatchInfo(e, 3, 3) }, func(err error) bool {
			re, ok := err.(*ReplyError)
			return ok && re.Low == 3 && re.High == 3
		}},
		{func(e *xdr.Encoder) { AppendRPCMismatch(e, 1) }, func(err error) bool {
			re, ok := err.(*ReplyError)
			return ok && re.Mismatch && re.Low == 2
		}},
		{func(e *xdr.Encoder) { AppendAuthError(e, 1, AuthTooWeak) }, func(err error) bool {
			re, ok := err.(*ReplyError)
			return ok && !re.Accepted && re.AuthStat == AuthTooWeak
		}},
	} {
		e := xdr.NewEncoder(nil)
		c.build(e)
		xid, _, err := ParseReply(e.Bytes())
		if xid != 1 || !c.check(err) {
			t.Fatalf("reply %x: %v", e.Bytes(), err)
		}
	}
	// Malformed calls.
	bad := e.Bytes()
	binary.BigEndian.PutUint32(bad[8:], 3)
	if _, _, err := ParseCall(bad); !errors.Is(err, ErrRPCVersion) {
		t.Fatalf("rpc version 3: %v", err)
	}
	if _, _, err := ParseCall([]byte{0, 0, 0, 1, 0, 0, 0, 1}); !errors.Is(err, ErrNotCall) {
		t.Fatalf("reply as call: %v", err)
	}
	if _, err := ParseUnixCred(UnixCred{GIDs: make([]uint32, 17)}.Auth().Body); !errors.Is(err, ErrBadCred) {
		t.Fatalf("17 groups: %v", err)
	}
}

func FuzzReadRecord(f *testing.F) {
	f.Add(record([]byte("abc"), []byte("def")), 64)
	f.Add([]byte{0x80, 0, 0, 0}, 64)
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 1, 2, 3}, 1<<20)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		max = max&0xffff + 1
		rec, err := ReadRecord(bytes.NewReader(in), nil, max)
		if err != nil {
			return
		}
		if len(rec) > max {
			t.Fatalf("record of %d bytes over the maximum %d", len(rec), max)
		}
		var w bytes.Buffer
		if err := WriteRecord(&w, rec); err != nil {
			t.Fatal(err)
		}
		again, err := ReadRecord(&w, nil, max)
		if err != nil || !bytes.Equal(again, rec) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzParseCall(f *testing.F) {
	e := xdr.NewEncoder(nil)
	(&CallHeader{XID: 1, Prog: 100003, Vers: 3, Proc: 4, Cred: UnixCred{MachineName: "m", GIDs: []uint32{1}}.Auth()}).Encode(e)
	f.Add(e.Bytes())
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, in []byte) {
		h, args, err := ParseCall(in)
		if err != nil {
			return
		}
		e := xdr.NewEncoder(nil)
		h.Encode(e)
		e.Fixed(args) // pads args to a multiple of four
		h2, args2, err := ParseCall(e.Bytes())
		if err != nil || h2.XID != h.XID || h2.Proc != h.Proc || len(args2) < len(args) || !bytes.Equal(args, args2[:len(args)]) || !bytes.Equal(h.Cred.Body, h2.Cred.Body) {
			t.Fatalf("round trip: %v", err)
		}
		if h.Cred.Flavor == AuthUnix {
			if c, err := ParseUnixCred(h.Cred.Body); err == nil && len(c.GIDs) > MaxGroups {
				t.Fatalf("%d groups accepted", len(c.GIDs))
			}
		}
	})
}

func FuzzParseUnixCred(f *testing.F) {
	f.Add(UnixCred{Stamp: 3, MachineName: "host", UID: 1, GID: 2, GIDs: []uint32{3, 4}}.Auth().Body)
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseUnixCred(in)
		if err != nil {
			return
		}
		if len(c.GIDs) > MaxGroups || len(c.MachineName) > MaxMachineName {
			t.Fatalf("limits not enforced: %d groups, name of %d bytes", len(c.GIDs), len(c.MachineName))
		}
		c2, err := ParseUnixCred(c.Auth().Body)
		if err != nil || c2.UID != c.UID || c2.GID != c.GID || c2.MachineName != c.MachineName || len(c2.GIDs) != len(c.GIDs) {
			t.Fatalf("round trip: %+v %+v %v", c, c2, err)
		}
	})
}

func FuzzParseReply(f *testing.F) {
	e := xdr.NewEncoder(nil)
	AppendAccepted(e, 7, ProgMismatch)
	AppendMismatchInfo(e, 3, 3)
	f.Add(e.Bytes())
	e = xdr.NewEncoder(nil)
	AppendAuthError(e, 7, AuthBadCred)
	f.Add(e.Bytes())
	e = xdr.NewEncoder(nil)
	AppendStartTLS(e, 7)
	f.Add(e.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		_, res, err := ParseReply(in)
		if err == nil && len(res) > len(in) {
			t.Fatal("results longer than the message")
		}
		if v, ok := ParseReplyVerifier(in); ok && (err != nil || len(v.Body) > MaxAuthBytes) {
			t.Fatalf("verifier of a reply ParseReply refuses (%v) or too long (%d)", err, len(v.Body))
		}
	})
}

// TestReadRecordSmallFragments: a record in many small fragments is put
// together with a few copies, not one per fragment (a 200 KiB reply in
// 32-byte fragments cost ~640 MB of copies and garbage), and whole.
func TestReadRecordSmallFragments(t *testing.T) {
	msg := make([]byte, 200<<10)
	for i := range msg {
		msg[i] = byte(i * 7 / 3)
	}
	var wire []byte
	for rest := msg; len(rest) > 0; {
		n := min(32, len(rest))
		h := uint32(n)
		if n == len(rest) {
			h |= lastFragment
		}
		wire = binary.BigEndian.AppendUint32(wire, h)
		wire = append(wire, rest[:n]...)
		rest = rest[n:]
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rec, err := ReadRecord(bytes.NewReader(wire), nil, 1<<20)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec, msg) {
		t.Fatal("the record read differs from the one sent")
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8*uint64(len(msg)) {
		t.Fatalf("a %d KiB record in 32-byte fragments allocated %d KiB: the buffer grows by each fragment", len(msg)>>10, alloc>>10)
	}
}
