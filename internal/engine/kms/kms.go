package kms

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Errors.
var (
	ErrUnknownKey = errors.New("kms: unknown key")
	ErrUnwrap     = errors.New("kms: cannot unwrap data key")
)

// KeySize is the size of key material and of data keys.
const KeySize = 32

const (
	fileVersion = 1
	wrapVersion = 1
)

// Key is one key-encryption key.
type Key struct {
	ID       string    `json:"id"`
	Aliases  []string  `json:"aliases,omitempty"`
	Material []byte    `json:"material"`
	Created  time.Time `json:"created"`
}

// Keyring holds keys by id and alias. It is immutable and safe for
// concurrent use.
type Keyring struct {
	keys  []Key
	names map[string]int // id or alias → index
}

type file struct {
	Version int   `json:"version"`
	Keys    []Key `json:"keys"`
}

// New builds a keyring, checking ids, aliases and material.
func New(keys ...Key) (*Keyring, error) {
	k := &Keyring{names: map[string]int{}}
	for i, key := range keys {
		if key.ID == "" || strings.TrimSpace(key.ID) != key.ID {
			return nil, fmt.Errorf("kms: key %d: empty or padded id %q", i, key.ID)
		}
		if len(key.Material) != KeySize {
			return nil, fmt.Errorf("kms: key %q: material of %d bytes, want %d", key.ID, len(key.Material), KeySize)
		}
		for _, n := range append([]string{key.ID}, key.Aliases...) {
			if n == "" {
				return nil, fmt.Errorf("kms: key %q: empty alias", key.ID)
			}
			if _, dup := k.names[n]; dup {
				return nil, fmt.Errorf("kms: name %q used twice", n)
			}
			k.names[n] = i
		}
		k.keys = append(k.keys, key)
	}
	return k, nil
}

// Generate returns a new key with random material.
func Generate(id string, aliases ...string) (Key, error) {
	m := make([]byte, KeySize)
	if _, err := rand.Read(m); err != nil {
		return Key{}, err
	}
	return Key{ID: id, Aliases: aliases, Material: m, Created: time.Now().UTC().Truncate(time.Second)}, nil
}

// Load reads a keyring file.
func Load(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	return Parse(b)
}

// Parse decodes the JSON form of a keyring.
func Parse(b []byte) (*Keyring, error) {
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("kms: keyring: %w", err)
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("kms: keyring version %d, want %d", f.Version, fileVersion)
	}
	return New(f.Keys...)
}

// Save writes the keyring durably (temp file, fsync, rename, mode 0600).
func (k *Keyring) Save(path string) error {
	b, err := json.MarshalIndent(file{Version: fileVersion, Keys: k.keys}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyring-*")
	if err != nil {
		return fmt.Errorf("kms: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("kms: %w", err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Keys returns the keys (shared; do not modify).
func (k *Keyring) Keys() []Key { return k.keys }

// Resolve finds a key by id or alias.
func (k *Keyring) Resolve(name string) (Key, error) {
	i, ok := k.names[name]
	if !ok {
		return Key{}, fmt.Errorf("%w: %q", ErrUnknownKey, name)
	}
	return k.keys[i], nil
}

func (k *Keyring) aead(keyID string) (cipher.AEAD, Key, error) {
	key, err := k.Resolve(keyID)
	if err != nil {
		return nil, Key{}, err
	}
	b, err := aes.NewCipher(key.Material)
	if err != nil {
		return nil, Key{}, err
	}
	g, err := cipher.NewGCM(b)
	return g, key, err
}

func aad(keyID string) []byte { return []byte("regionfs dek v1" + keyID) }

// Wrap encrypts a data key under the key named keyID (id or alias; the
// additional data binds the key's id).
func (k *Keyring) Wrap(keyID string, dek []byte) ([]byte, error) {
	g, key, err := k.aead(keyID)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+g.NonceSize(), 1+g.NonceSize()+len(dek)+g.Overhead())
	out[0] = wrapVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return g.Seal(out, out[1:], dek, aad(key.ID)), nil
}

// Unwrap decrypts a data key wrapped by Wrap.
func (k *Keyring) Unwrap(keyID string, wrapped []byte) ([]byte, error) {
	g, key, err := k.aead(keyID)
	if err != nil {
		return nil, err
	}
	if len(wrapped) < 1+g.NonceSize()+g.Overhead() || wrapped[0] != wrapVersion {
		return nil, fmt.Errorf("%w: bad format", ErrUnwrap)
	}
	dek, err := g.Open(nil, wrapped[1:1+g.NonceSize()], wrapped[1+g.NonceSize():], aad(key.ID))
	if err != nil {
		return nil, fmt.Errorf("%w with key %q", ErrUnwrap, key.ID)
	}
	return dek, nil
}

// NewDataKey returns a random data key.
func NewDataKey() ([]byte, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}
