package engine

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestColdReadKeyedHashes: a cold read (blocks from their files, not the
// cache) checks each block as its stored form allows, the CRC-32C of a
// plaintext block or the AES-GCM tag of a sealed one, and computes no
// keyed hash; a scrub and a verification with block reads prove every
// block against its id by its keyed hash.
func TestColdReadKeyedHashes(t *testing.T) {
	withAndWithoutKMS(t, func(t *testing.T, ctx context.Context, v *env, fs *FS, _ string) {
		ino := must(fs.Create(ctx, RootCred, RootIno, "x", CreateGuarded, SetAttr{}, 0))(t).Attr.Ino
		data := make([]byte, 3*MinBlockSize) // three distinct blocks
		for i := range data {
			data[i] = byte(i / 7)
		}
		if _, _, err := fs.Write(ctx, RootCred, ino, 0, data); err != nil {
			t.Fatal(err)
		}
		v.reopen() // an empty cache
		fs = v.fs("f")
		h := fs.dom.blockHasher()
		hashes, gets := h.Sums(), fs.Stats().Blocks.Gets
		got, _, _, err := fs.Read(ctx, RootCred, ino, 0, len(data))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
		if n := fs.Stats().Blocks.Gets - gets; n != 3 {
			t.Fatalf("%d blocks read from their files, want 3", n)
		}
		if n := h.Sums() - hashes; n != 0 {
			t.Errorf("a cold read of 3 blocks computed %d keyed hashes, want 0", n)
		}
		hashes = h.Sums()
		rep, err := v.e.Scrub(ctx)
		if err != nil || rep.Blocks != 3 || len(rep.Corrupt) != 0 {
			t.Fatalf("scrub: %+v %v", rep, err)
		}
		if n := h.Sums() - hashes; n != 3 {
			t.Errorf("a scrub of 3 blocks computed %d keyed hashes, want 3", n)
		}
		hashes = h.Sums()
		if err := fs.Replica().Verify(ctx, true); err != nil {
			t.Fatal(err)
		}
		if n := h.Sums() - hashes; n < 3 {
			t.Errorf("a verification with block reads computed %d keyed hashes, want at least 3", n)
		}
	})
}

// TestBlockFileVersions: plaintext block files are written in version 2
// (a CRC-32C in the header); a block file of version 1, written by a
// release of store format 1, still reads, and a damaged one is reported.
func TestBlockFileVersions(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	fs := v.mkfs("f")
	ino := must(fs.Create(ctx, RootCred, RootIno, "x", CreateGuarded, SetAttr{}, 0))(t).Attr.Ino
	data := bytes.Repeat([]byte("versions"), MinBlockSize/8)
	if _, _, err := fs.Write(ctx, RootCred, ino, 0, data); err != nil {
		t.Fatal(err)
	}
	files := blockFiles(t, v.disk)
	if len(files) != 1 {
		t.Fatalf("%d block files", len(files))
	}
	rewriteFile(t, v.disk, files[0], func(b []byte) {
		if !bytes.HasPrefix(b, []byte("RFB\x02\x00")) {
			t.Fatalf("plaintext block file starts %q", b[:min(len(b), 8)])
		}
	})
	// What a release of format 1 wrote: the version 1 header, no checksum.
	v1 := append([]byte("RFB\x01\x00\x00\x00\x00"), data...)
	for _, damaged := range []bool{false, true} {
		content := bytes.Clone(v1)
		if damaged {
			content[len(content)/2] ^= 0x20
		}
		if err := v.disk.Remove(files[0]); err != nil {
			t.Fatal(err)
		}
		w := must(v.disk.Create(files[0]))(t)
		if _, err := w.Write(content); err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		v.reopen()
		fs = v.fs("f")
		got, _, _, err := fs.Read(ctx, RootCred, ino, 0, len(data))
		if damaged {
			wantErr(t, err, ErrCorrupt)
			if st := fs.Stats(); st.Blocks.CorruptReads != 1 {
				t.Fatalf("damaged version 1 block: %d corrupt reads", st.Blocks.CorruptReads)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("version 1 block: %d bytes, %v", len(got), err)
		}
	}
}

// TestFormatStamp: a store of format 1 is stamped with the current
// format when it opens (so a release of format 1 refuses it rather than
// take its new block files for corrupt ones), and a store of a newer
// format is refused without being changed.
func TestFormatStamp(t *testing.T) {
	v := newEnv(t)
	v.mkfs("f")
	format := func() uint64 {
		t.Helper()
		b, err := v.kv.Get(serverKey(srvFormat))
		if err != nil {
			t.Fatal(err)
		}
		return must(decodeU64(b))(t)
	}
	if got := format(); got != FormatVersion {
		t.Fatalf("new store of format %d, want %d", got, FormatVersion)
	}
	set := func(ver uint64) {
		t.Helper()
		b := v.kv.NewBatch()
		defer b.Close()
		b.Set(serverKey(srvFormat), encodeU64(ver))
		if err := b.Commit(true); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.e.Close(); err != nil {
		t.Fatal(err)
	}
	set(1)
	v.open()
	if got := format(); got != FormatVersion {
		t.Fatalf("store of format 1 opened: format %d, want %d", got, FormatVersion)
	}
	v.fs("f")
	if err := v.e.Close(); err != nil {
		t.Fatal(err)
	}
	set(FormatVersion + 1)
	o := v.opts
	o.KV, o.Disk = v.kv, v.disk
	e, err := Open(context.Background(), o)
	if err == nil {
		e.Close()
		t.Fatal("a store of a newer format opened")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("newer format: %v", err)
	}
	v.e = nil
	if got := format(); got != FormatVersion+1 {
		t.Fatalf("refused store changed to format %d", got)
	}
}
