package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kms"
)

// TestKeyStates: a disabled key locks its file systems (clear errors on
// read and write, nothing garbled), enabling unlocks them, rotation
// re-wraps the data key without rewriting data, and a file system whose
// key is disabled across a restart opens locked and unlocks later.
func TestKeyStates(t *testing.T) {
	ctx := context.Background()
	v := newEnv(t)
	if err := v.ring.Attach(filepath.Join(t.TempDir(), "keyring.json")); err != nil {
		t.Fatal(err)
	}
	cmk, err := kms.Generate("11111111-2222-3333-4444-555555555555")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.ring.Add(cmk); err != nil {
		t.Fatal(err)
	}
	fs, err := v.e.CreateFS(ctx, "enc", FSOptions{BlockSize: MinBlockSize, KMSKeyID: cmk.ID})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("secret "), 40000) // several blocks
	ino := writeFile(t, fs, RootIno, "f", data)
	blocksBefore := diskDigest(t, v.disk, "blocks")

	setState := func(state string) {
		t.Helper()
		if _, err := v.ring.Update(cmk.ID, func(k *kms.Key) error { k.State = state; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := v.e.KeysChanged(ctx, cmk.ID); err != nil {
			t.Fatal(err)
		}
	}
	setState(kms.StateDisabled)
	if _, _, _, err := fs.Read(ctx, RootCred, ino, 0, 10); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("read with the key disabled: %v", err)
	}
	if _, err := fs.GetAttr(ctx, ino); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("getattr with the key disabled: %v", err)
	}
	if _, _, err := fs.Write(ctx, RootCred, ino, 0, []byte("x")); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("write with the key disabled: %v", err)
	}
	if _, err := v.e.CreateFS(ctx, "enc2", FSOptions{KMSKeyID: cmk.ID}); !errors.Is(err, kms.ErrDisabled) {
		t.Fatalf("new file system with a disabled key: %v", err)
	}
	setState(kms.StateEnabled)
	if got := readAll(t, fs, ino); !bytes.Equal(got, data) {
		t.Fatal("data changed after re-enabling the key")
	}

	// Rotation re-wraps the data key; the block files are untouched.
	if _, err := v.ring.Rotate(cmk.ID, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	st, err := v.e.KeysChanged(ctx, cmk.ID)
	if err != nil || st.Rewrapped != 1 {
		t.Fatalf("rotation: %+v %v", st, err)
	}
	if ver, _ := kms.WrappedVersion(fs.dom.rec.WrappedDEK); ver != 1 {
		t.Fatalf("data key wrapped under version %d after rotation", ver)
	}
	if diskDigest(t, v.disk, "blocks") != blocksBefore {
		t.Fatal("rotation rewrote block files")
	}
	v.reopen()
	if got := readAll(t, v.fs("enc"), ino); !bytes.Equal(got, data) {
		t.Fatal("data unreadable after rotation and restart")
	}

	// Disabled across a restart: the file system opens locked.
	setState(kms.StateDisabled)
	v.reopen()
	if _, err := v.e.FS("enc"); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("locked file system: %v", err)
	}
	if err := v.e.DeleteFS(ctx, "enc"); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("delete of a locked file system: %v", err)
	}
	setState(kms.StateEnabled)
	if got := readAll(t, v.fs("enc"), ino); !bytes.Equal(got, data) {
		t.Fatal("data unreadable after unlocking")
	}
}

// diskDigest hashes the names and contents of every file under dir.
func diskDigest(t *testing.T, d interface {
	ReadDir(string) ([]fs.DirEntry, error)
	Open(string) (disk.File, error)
}, dir string) string {
	t.Helper()
	h := sha256.New()
	var walk func(string)
	walk = func(p string) {
		ents, err := d.ReadDir(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			name := p + "/" + e.Name()
			io.WriteString(h, name+"\n")
			if e.IsDir() {
				walk(name)
				continue
			}
			f, err := d.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<30))
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			h.Write(b)
		}
	}
	walk(dir)
	return hex.EncodeToString(h.Sum(nil))
}
