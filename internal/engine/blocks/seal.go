package blocks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
)

// Sealer encrypts blocks with AES-256-GCM under a per-block key derived
// from the file system's data key: key = HKDF-SHA256(dek, info "regionfs
// block v1" ‖ id), random 12-byte nonce, additional data = aad ‖ id, so a
// block cannot be moved to another id or another lineage. Output: nonce ‖
// ciphertext ‖ tag.
type Sealer struct {
	dek []byte
	aad []byte
}

// Keys are what a store needs to name, verify and seal blocks.
type Keys struct {
	Hasher *Hasher
	Sealer *Sealer // nil: blocks are stored in plaintext
}

// NewSealer returns a Sealer for a 32-byte data key and a lineage binding.
func NewSealer(dek, aad []byte) (*Sealer, error) {
	if len(dek) != 32 {
		return nil, fmt.Errorf("blocks: data key of %d bytes, want 32", len(dek))
	}
	return &Sealer{dek: append([]byte(nil), dek...), aad: append([]byte(nil), aad...)}, nil
}

func (s *Sealer) gcm(id ID) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, s.dek, nil, "regionfs block v1"+string(id[:]), 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func (s *Sealer) ad(id ID) []byte { return append(append([]byte(nil), s.aad...), id[:]...) }

// Seal encrypts plaintext as block id.
func (s *Sealer) Seal(id ID, plaintext []byte) ([]byte, error) { return s.sealTo(nil, id, plaintext) }

// sealTo appends the sealed form of plaintext (block id) to dst, whose
// capacity it uses when large enough.
func (s *Sealer) sealTo(dst []byte, id ID, plaintext []byte) ([]byte, error) {
	g, err := s.gcm(id)
	if err != nil {
		return nil, err
	}
	n := len(dst)
	if need := n + g.NonceSize() + len(plaintext) + g.Overhead(); cap(dst) < need {
		dst = append(make([]byte, 0, need), dst...)
	}
	out := dst[:n+g.NonceSize()]
	if _, err := rand.Read(out[n:]); err != nil {
		return nil, err
	}
	return g.Seal(out, out[n:], plaintext, s.ad(id)), nil
}

// Open decrypts a sealed block; failures wrap ErrCorrupt.
func (s *Sealer) Open(id ID, sealed []byte) ([]byte, error) { return s.open(id, sealed, nil) }

// openInPlace is Open decrypting over sealed (no new buffer).
func (s *Sealer) openInPlace(id ID, sealed []byte) ([]byte, error) {
	if len(sealed) < 12 {
		return nil, fmt.Errorf("%w: sealed block %s too short", ErrCorrupt, id)
	}
	return s.open(id, sealed, sealed[12:12])
}

func (s *Sealer) open(id ID, sealed, dst []byte) ([]byte, error) {
	g, err := s.gcm(id)
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize()+g.Overhead() {
		return nil, fmt.Errorf("%w: sealed block %s too short", ErrCorrupt, id)
	}
	p, err := g.Open(dst, sealed[:g.NonceSize()], sealed[g.NonceSize():], s.ad(id))
	if err != nil {
		return nil, fmt.Errorf("%w: block %s fails authentication", ErrCorrupt, id)
	}
	return p, nil
}
