package kms

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWrapUnwrap(t *testing.T) {
	a, _ := Generate("key-a", "alias/aws/elasticfilesystem")
	b, _ := Generate("key-b")
	k, err := New(a, b)
	if err != nil {
		t.Fatal(err)
	}
	dek, _ := NewDataKey()
	w, err := k.Wrap("alias/aws/elasticfilesystem", dek)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w, dek) {
		t.Fatal("wrapped key contains the data key")
	}
	got, err := k.Unwrap("key-a", w)
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := k.Unwrap("key-b", w); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("unwrap with another key: %v", err)
	}
	w[len(w)-1] ^= 1
	if _, err := k.Unwrap("key-a", w); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("unwrap of tampered key: %v", err)
	}
	if _, err := k.Wrap("nope", dek); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestValidation(t *testing.T) {
	a, _ := Generate("a", "alias/x")
	b, _ := Generate("b", "alias/x")
	if _, err := New(a, b); err == nil {
		t.Fatal("duplicate alias accepted")
	}
	c, _ := Generate("a")
	if _, err := New(a, c); err == nil {
		t.Fatal("duplicate id accepted")
	}
	bad := a
	bad.Material = bad.Material[:16]
	if _, err := New(bad); err == nil {
		t.Fatal("short material accepted")
	}
	for _, s := range []string{``, `{}`, `{"version":2,"keys":[]}`, `{"version":1,"keys":[{"id":""}]}`, `[`} {
		if _, err := Parse([]byte(s)); err == nil {
			t.Errorf("parsed %q", s)
		}
	}
}

func TestSaveLoad(t *testing.T) {
	a, _ := Generate("a", "alias/aws/elasticfilesystem")
	k, _ := New(a)
	p := filepath.Join(t.TempDir(), "keyring.json")
	if err := k.Save(p); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	l, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.Resolve("alias/aws/elasticfilesystem")
	if err != nil || r.ID != "a" || !bytes.Equal(r.Material, a.Material) {
		t.Fatalf("resolve after load: %+v %v", r, err)
	}
}

func FuzzUnwrap(f *testing.F) {
	a, _ := Generate("a")
	k, _ := New(a)
	w, _ := k.Wrap("a", make([]byte, 32))
	f.Add(w)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := k.Unwrap("a", b); err != nil && !errors.Is(err, ErrUnwrap) {
			t.Fatal(err)
		}
	})
}

func FuzzParse(f *testing.F) {
	a, _ := Generate("a", "alias/b")
	k, _ := New(a)
	p := filepath.Join(f.TempDir(), "k.json")
	k.Save(p)
	b, _ := os.ReadFile(p)
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := Parse(b)
		if err != nil {
			return
		}
		for _, key := range k.Keys() {
			if len(key.Material) != KeySize {
				t.Fatal("accepted bad material")
			}
		}
	})
}
