package kms

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Errors.
var (
	ErrUnknownKey = errors.New("kms: unknown key")
	ErrUnwrap     = errors.New("kms: cannot unwrap data key")
	// ErrDisabled: the key is disabled; ErrPendingDeletion: it is scheduled
	// for deletion. Neither wraps nor unwraps until it is enabled again.
	ErrDisabled        = errors.New("kms: key is disabled")
	ErrPendingDeletion = errors.New("kms: key is pending deletion")
	// ErrExists: a key id or alias name is taken.
	ErrExists = errors.New("kms: name in use")
	// ErrStatic: configured keys (AWS managed keys) cannot be changed.
	ErrStatic = errors.New("kms: configured key")
)

// KeySize is the size of key material and of data keys.
const KeySize = 32

const (
	fileVersion  = 1
	wrapVersion1 = 1 // ‖ nonce ‖ sealed: material version 0
	wrapVersion2 = 2 // ‖ version(4) ‖ nonce ‖ sealed
)

// Key states.
const (
	StateEnabled         = "Enabled"
	StateDisabled        = "Disabled"
	StatePendingDeletion = "PendingDeletion"
)

// Key is one key-encryption key. Material is its first backing key; each
// rotation adds a newer one to Rotations, and the newest wraps new data
// keys while every older one still unwraps what it wrapped.
type Key struct {
	ID        string     `json:"id"`
	Aliases   []string   `json:"aliases,omitempty"`
	Material  []byte     `json:"material"`
	Created   time.Time  `json:"created"`
	Rotations []Rotation `json:"rotations,omitempty"`
	// State is "" (Enabled) or one of the State constants.
	State string `json:"state,omitempty"`
	// Static: a configured key (an AWS managed key): no API changes it.
	Static bool `json:"-"`
	// Meta is what the KMS API keeps about the key (description, policy,
	// tags, rotation schedule, deletion date); the keyring stores it.
	Meta json.RawMessage `json:"meta,omitempty"`
}

// Rotation is a newer backing key.
type Rotation struct {
	Version  uint32    `json:"v"`
	Material []byte    `json:"material"`
	Created  time.Time `json:"created"`
	OnDemand bool      `json:"onDemand,omitempty"`
}

// CurrentVersion is the version of the backing key that wraps new data
// keys (0 before any rotation).
func (k Key) CurrentVersion() uint32 {
	if n := len(k.Rotations); n > 0 {
		return k.Rotations[n-1].Version
	}
	return 0
}

func (k Key) material(v uint32) ([]byte, bool) {
	if v == 0 {
		return k.Material, true
	}
	for _, r := range k.Rotations {
		if r.Version == v {
			return r.Material, true
		}
	}
	return nil, false
}

// Usable reports whether the key may wrap and unwrap: nil, ErrDisabled or
// ErrPendingDeletion.
func (k Key) Usable() error {
	switch k.State {
	case "", StateEnabled:
		return nil
	case StatePendingDeletion:
		return fmt.Errorf("%w: %s", ErrPendingDeletion, k.ID)
	}
	return fmt.Errorf("%w: %s", ErrDisabled, k.ID)
}

func (k Key) clone() Key {
	c := k
	c.Aliases = slices.Clone(k.Aliases)
	c.Rotations = slices.Clone(k.Rotations)
	c.Meta = slices.Clone(k.Meta)
	return c
}

// Keyring holds keys by id and alias; it is safe for concurrent use. Keys
// given to New are static (configured); keys added later live in the file
// the keyring is attached to, rewritten durably on every change.
type Keyring struct {
	mu    sync.RWMutex // guards the fields below
	keys  []Key
	names map[string]int // id or alias → index
	path  string         // "" when not attached
}

type file struct {
	Version int   `json:"version"`
	Keys    []Key `json:"keys"`
}

// New builds a keyring of static keys, checking ids, aliases and material.
func New(keys ...Key) (*Keyring, error) {
	k := &Keyring{names: map[string]int{}}
	for _, key := range keys {
		key.Static = true
		if err := k.addLocked(key); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func (k *Keyring) addLocked(key Key) error {
	i := len(k.keys)
	if key.ID == "" || strings.TrimSpace(key.ID) != key.ID {
		return fmt.Errorf("kms: key %d: empty or padded id %q", i, key.ID)
	}
	if len(key.Material) != KeySize {
		return fmt.Errorf("kms: key %q: material of %d bytes, want %d", key.ID, len(key.Material), KeySize)
	}
	for _, r := range key.Rotations {
		if len(r.Material) != KeySize || r.Version == 0 {
			return fmt.Errorf("kms: key %q: bad rotation %d", key.ID, r.Version)
		}
	}
	for _, n := range append([]string{key.ID}, key.Aliases...) {
		if n == "" {
			return fmt.Errorf("kms: key %q: empty alias", key.ID)
		}
		if _, dup := k.names[n]; dup {
			return fmt.Errorf("%w: %q used twice", ErrExists, n)
		}
	}
	for _, n := range append([]string{key.ID}, key.Aliases...) {
		k.names[n] = i
	}
	k.keys = append(k.keys, key)
	return nil
}

// Generate returns a new key with random material.
func Generate(id string, aliases ...string) (Key, error) {
	m, err := NewDataKey()
	if err != nil {
		return Key{}, err
	}
	return Key{ID: id, Aliases: aliases, Material: m, Created: time.Now().UTC().Truncate(time.Second)}, nil
}

// Load reads a keyring file (its keys are static).
func Load(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	return Parse(b)
}

func parseFile(b []byte) ([]Key, error) {
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("kms: keyring: %w", err)
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("kms: keyring version %d, want %d", f.Version, fileVersion)
	}
	return f.Keys, nil
}

// Parse decodes the JSON form of a keyring (its keys are static).
func Parse(b []byte) (*Keyring, error) {
	keys, err := parseFile(b)
	if err != nil {
		return nil, err
	}
	return New(keys...)
}

// Attach adds the keys stored at path (created empty when missing) and
// makes every later change durable there.
func (k *Keyring) Attach(path string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.path != "" {
		return fmt.Errorf("kms: keyring already attached to %s", k.path)
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("kms: %w", err)
		}
		k.path = path
		return k.saveLocked()
	case err != nil:
		return fmt.Errorf("kms: %w", err)
	}
	keys, err := parseFile(b)
	if err != nil {
		return fmt.Errorf("kms: %s: %w", path, err)
	}
	for _, key := range keys {
		if err := k.addLocked(key); err != nil {
			return fmt.Errorf("kms: %s: %w", path, err)
		}
	}
	k.path = path
	return nil
}

// Save writes every key (static ones included) durably to path: temp
// file, fsync, rename, mode 0600.
func (k *Keyring) Save(path string) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return writeKeys(path, k.keys)
}

func (k *Keyring) saveLocked() error {
	var own []Key
	for _, key := range k.keys {
		if !key.Static {
			own = append(own, key)
		}
	}
	return writeKeys(k.path, own)
}

func writeKeys(path string, keys []Key) error {
	if keys == nil {
		keys = []Key{}
	}
	b, err := json.MarshalIndent(file{Version: fileVersion, Keys: keys}, "", "  ")
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

// Keys returns copies of the keys.
func (k *Keyring) Keys() []Key {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]Key, len(k.keys))
	for i, key := range k.keys {
		out[i] = key.clone()
	}
	return out
}

// Resolve finds a key by id or alias (whatever its state).
func (k *Keyring) Resolve(name string) (Key, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	i, ok := k.names[name]
	if !ok {
		return Key{}, fmt.Errorf("%w: %q", ErrUnknownKey, name)
	}
	return k.keys[i].clone(), nil
}

// Update changes a key that is not static: fn gets a copy and returns the
// new state (aliases, material and id cannot change through it), durable
// before Update returns.
func (k *Keyring) Update(id string, fn func(*Key) error) (Key, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	i, ok := k.names[id]
	if !ok || k.keys[i].ID != id {
		return Key{}, fmt.Errorf("%w: %q", ErrUnknownKey, id)
	}
	if k.keys[i].Static {
		return Key{}, fmt.Errorf("%w: %s", ErrStatic, id)
	}
	c := k.keys[i].clone()
	if err := fn(&c); err != nil {
		return Key{}, err
	}
	c.ID, c.Aliases, c.Material, c.Static = k.keys[i].ID, k.keys[i].Aliases, k.keys[i].Material, false
	old := k.keys[i]
	k.keys[i] = c
	if err := k.saveLocked(); err != nil {
		k.keys[i] = old
		return Key{}, err
	}
	return c.clone(), nil
}

// Add stores a new key.
func (k *Keyring) Add(key Key) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.path == "" {
		return errors.New("kms: the keyring is not attached to a file")
	}
	key.Static = false
	names := maps(k.names)
	n := len(k.keys)
	if err := k.addLocked(key); err != nil {
		return err
	}
	if err := k.saveLocked(); err != nil {
		k.keys, k.names = k.keys[:n], names
		return err
	}
	return nil
}

func maps(m map[string]int) map[string]int {
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Remove destroys a key's material (after its deletion date).
func (k *Keyring) Remove(id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	i, ok := k.names[id]
	if !ok || k.keys[i].ID != id {
		return fmt.Errorf("%w: %q", ErrUnknownKey, id)
	}
	if k.keys[i].Static {
		return fmt.Errorf("%w: %s", ErrStatic, id)
	}
	oldKeys, oldNames := k.keys, k.names
	k.keys = slices.Delete(slices.Clone(k.keys), i, i+1)
	k.reindexLocked()
	if err := k.saveLocked(); err != nil {
		k.keys, k.names = oldKeys, oldNames
		return err
	}
	return nil
}

func (k *Keyring) reindexLocked() {
	k.names = map[string]int{}
	for i, key := range k.keys {
		k.names[key.ID] = i
		for _, a := range key.Aliases {
			k.names[a] = i
		}
	}
}

// SetAlias points alias at key id (creating or moving it); an empty id
// deletes it. Aliases of static keys cannot change.
func (k *Keyring) SetAlias(alias, id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if alias == "" {
		return errors.New("kms: empty alias")
	}
	from, had := k.names[alias]
	if had && k.keys[from].ID == alias {
		return fmt.Errorf("%w: %q is a key id", ErrExists, alias)
	}
	if had && k.keys[from].Static {
		return fmt.Errorf("%w: alias %s", ErrStatic, alias)
	}
	to := -1
	if id != "" {
		i, ok := k.names[id]
		if !ok || k.keys[i].ID != id {
			return fmt.Errorf("%w: %q", ErrUnknownKey, id)
		}
		if k.keys[i].Static {
			return fmt.Errorf("%w: %s", ErrStatic, id)
		}
		to = i
	}
	oldKeys := k.keys
	k.keys = slices.Clone(k.keys)
	if had {
		c := k.keys[from].clone()
		c.Aliases = slices.DeleteFunc(c.Aliases, func(a string) bool { return a == alias })
		k.keys[from] = c
	}
	if to >= 0 {
		c := k.keys[to].clone()
		c.Aliases = append(c.Aliases, alias)
		k.keys[to] = c
	}
	oldNames := k.names
	k.reindexLocked()
	if err := k.saveLocked(); err != nil {
		k.keys, k.names = oldKeys, oldNames
		return err
	}
	return nil
}

// Rotate adds a new backing key to a key.
func (k *Keyring) Rotate(id string, onDemand bool, now time.Time) (Key, error) {
	m, err := NewDataKey()
	if err != nil {
		return Key{}, err
	}
	return k.Update(id, func(key *Key) error {
		key.Rotations = append(key.Rotations, Rotation{Version: key.CurrentVersion() + 1, Material: m, Created: now.UTC(), OnDemand: onDemand})
		return nil
	})
}

func (k *Keyring) aead(key Key, version uint32) (cipher.AEAD, error) {
	m, ok := key.material(version)
	if !ok {
		return nil, fmt.Errorf("%w: key %q has no backing key version %d", ErrUnwrap, key.ID, version)
	}
	b, err := aes.NewCipher(m)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func aad1(keyID string) []byte { return []byte("regionfs dek v1" + keyID) }

func aad2(keyID string, v uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte("regionfs dek v2"+keyID+"\x00"), v)
}

// Wrap encrypts a data key under the current backing key of the key named
// keyID (id or alias), which must be usable.
func (k *Keyring) Wrap(keyID string, dek []byte) ([]byte, error) {
	key, err := k.Resolve(keyID)
	if err != nil {
		return nil, err
	}
	if err := key.Usable(); err != nil {
		return nil, err
	}
	v := key.CurrentVersion()
	g, err := k.aead(key, v)
	if err != nil {
		return nil, err
	}
	if v == 0 {
		out := make([]byte, 1+g.NonceSize(), 1+g.NonceSize()+len(dek)+g.Overhead())
		out[0] = wrapVersion1
		if _, err := rand.Read(out[1:]); err != nil {
			return nil, err
		}
		return g.Seal(out, out[1:], dek, aad1(key.ID)), nil
	}
	out := make([]byte, 5+g.NonceSize(), 5+g.NonceSize()+len(dek)+g.Overhead())
	out[0] = wrapVersion2
	binary.BigEndian.PutUint32(out[1:5], v)
	if _, err := rand.Read(out[5:]); err != nil {
		return nil, err
	}
	return g.Seal(out, out[5:], dek, aad2(key.ID, v)), nil
}

// WrappedVersion returns the backing key version a wrapped data key is
// sealed under.
func WrappedVersion(wrapped []byte) (uint32, error) {
	switch {
	case len(wrapped) > 0 && wrapped[0] == wrapVersion1:
		return 0, nil
	case len(wrapped) > 5 && wrapped[0] == wrapVersion2:
		return binary.BigEndian.Uint32(wrapped[1:5]), nil
	}
	return 0, fmt.Errorf("%w: bad format", ErrUnwrap)
}

// Unwrap decrypts a data key wrapped by Wrap (under any backing key version
// of the key, which must be usable).
func (k *Keyring) Unwrap(keyID string, wrapped []byte) ([]byte, error) {
	key, err := k.Resolve(keyID)
	if err != nil {
		return nil, err
	}
	if err := key.Usable(); err != nil {
		return nil, err
	}
	v, err := WrappedVersion(wrapped)
	if err != nil {
		return nil, err
	}
	g, err := k.aead(key, v)
	if err != nil {
		return nil, err
	}
	var nonce, sealed, ad []byte
	if wrapped[0] == wrapVersion1 {
		if len(wrapped) < 1+g.NonceSize()+g.Overhead() {
			return nil, fmt.Errorf("%w: bad format", ErrUnwrap)
		}
		nonce, sealed, ad = wrapped[1:1+g.NonceSize()], wrapped[1+g.NonceSize():], aad1(key.ID)
	} else {
		if len(wrapped) < 5+g.NonceSize()+g.Overhead() {
			return nil, fmt.Errorf("%w: bad format", ErrUnwrap)
		}
		nonce, sealed, ad = wrapped[5:5+g.NonceSize()], wrapped[5+g.NonceSize():], aad2(key.ID, v)
	}
	dek, err := g.Open(nil, nonce, sealed, ad)
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
