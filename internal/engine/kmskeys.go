package engine

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"

	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Encrypted file systems and the state of their KMS key.
//
// A domain whose key is disabled, pending deletion or deleted is locked:
// every read and write of its file systems fails with ErrKeyUnavailable
// (the value-sealing AEAD refuses to open values, the committer refuses
// operations), so data is never served garbled nor written under a key
// the owner revoked. A domain whose key was unusable when the engine
// opened stays unopened until KeysChanged finds the key usable; its file
// systems are listed but FS returns ErrKeyUnavailable.
//
// Key rotation re-wraps each domain's data key under the key's newest
// backing key (one synced write of the domain record); block files and
// sealed values are not rewritten, as the data key does not change.

func keyUnusable(err error) bool {
	return errors.Is(err, kms.ErrDisabled) || errors.Is(err, kms.ErrPendingDeletion) || errors.Is(err, kms.ErrUnknownKey)
}

func (d *domain) lock(keyID string, cause error) {
	err := fmt.Errorf("%w: KMS key %s: %w", ErrKeyUnavailable, keyID, cause)
	d.keyErr.Store(&err)
}

func (d *domain) keyError() error {
	if p := d.keyErr.Load(); p != nil {
		return *p
	}
	return nil
}

// gate is the value-sealing AEAD of an encrypted domain: it refuses to
// open values while the domain's key is unavailable (inner is nil for a
// domain locked since open).
type gate struct {
	d     *domain
	inner cipher.AEAD
}

func (g gate) NonceSize() int { return 12 }
func (g gate) Overhead() int  { return 16 }

func (g gate) Seal(dst, nonce, plaintext, ad []byte) []byte {
	if g.inner == nil {
		// Writes of a locked domain are refused before they are sealed
		// (doOp); reaching here is a broken invariant.
		panic("engine: sealing a value of a domain without its data key")
	}
	return g.inner.Seal(dst, nonce, plaintext, ad)
}

func (g gate) Open(dst, nonce, ciphertext, ad []byte) ([]byte, error) {
	if err := g.d.keyError(); err != nil || g.inner == nil {
		return nil, fmt.Errorf("%w: %w", kv.ErrKeyUnavailable, err)
	}
	return g.inner.Open(dst, nonce, ciphertext, ad)
}

// KeyState is the engine's view of a domain's key after KeysChanged.
type KeyState struct {
	// Locked file systems cannot be used (their key is unavailable).
	Locked []string
	// Unlocked file systems were opened because their key is usable
	// again.
	Unlocked []string
	// Rewrapped domains had their data key wrapped under the key's newest
	// backing key.
	Rewrapped int
}

// KeysChanged applies the current state of KMS key keyID (enabled,
// disabled, rotated, deleted) to the file systems it encrypts: it locks or
// unlocks them and re-wraps their data keys after a rotation.
func (e *Engine) KeysChanged(ctx context.Context, keyID string) (KeyState, error) {
	if e.opts.Keyring == nil {
		return KeyState{}, nil
	}
	e.regMu.Lock()
	defer e.regMu.Unlock()
	key, kerr := e.opts.Keyring.Resolve(keyID)
	usable := kerr == nil && key.Usable() == nil
	var cause error = kerr
	if kerr == nil {
		cause = key.Usable()
		keyID = key.ID
	}
	e.mu.Lock()
	var doms []*domain
	for id, d := range e.domains {
		// On a shared store, the owner of a domain applies key changes
		// to it.
		if d.rec.KMSKeyID == keyID && e.ownsLocked(id) {
			doms = append(doms, d)
		}
	}
	e.mu.Unlock()
	var st KeyState
	for _, d := range doms {
		opened := true
		if g, ok := d.metaAEAD.(gate); ok && g.inner == nil {
			opened = false
		}
		switch {
		case !usable:
			d.lock(keyID, cause)
			st.Locked = append(st.Locked, e.domainFSNames(d.id)...)
		case !opened:
			names, err := e.unlockDomain(ctx, d)
			if err != nil {
				return st, err
			}
			st.Unlocked = append(st.Unlocked, names...)
		default:
			if d.keyErr.Load() != nil {
				d.keyErr.Store(nil)
				st.Unlocked = append(st.Unlocked, e.domainFSNames(d.id)...)
			}
			ok, err := e.rewrap(d, key)
			if err != nil {
				return st, err
			}
			if ok {
				st.Rewrapped++
			}
		}
	}
	if len(st.Locked)+len(st.Unlocked)+st.Rewrapped > 0 {
		e.log.Info("kms key change applied", "kms_key", keyID, "usable", usable, "locked", st.Locked, "unlocked", st.Unlocked, "rewrapped", st.Rewrapped)
	}
	return st, nil
}

func (e *Engine) domainFSNames(dom uint64) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var names []string
	for name, id := range e.names {
		if fs := e.fss[id]; fs != nil && fs.dom.id == dom {
			names = append(names, name)
		} else if rec := e.locked[id]; rec != nil && rec.Domain == dom {
			names = append(names, name)
		}
	}
	return names
}

// rewrap wraps d's data key under the newest backing key of key.
func (e *Engine) rewrap(d *domain, key kms.Key) (bool, error) {
	d.recMu.Lock()
	defer d.recMu.Unlock()
	if d.rec.Pending || d.rec.WrappedDEK == nil {
		return false, nil
	}
	v, err := kms.WrappedVersion(d.rec.WrappedDEK)
	if err != nil || v == key.CurrentVersion() {
		return false, err
	}
	dek, err := e.opts.Keyring.Unwrap(key.ID, d.rec.WrappedDEK)
	if err != nil {
		return false, fmt.Errorf("engine: rewrap domain %d: %w", d.id, err)
	}
	rec := d.rec
	if rec.WrappedDEK, err = e.opts.Keyring.Wrap(key.ID, dek); err != nil {
		return false, fmt.Errorf("engine: rewrap domain %d: %w", d.id, err)
	}
	b := e.kv.NewBatch()
	defer b.Close()
	b.Set(domainKey(d.id), rec.encode())
	if err := b.Commit(true); err != nil {
		return false, fmt.Errorf("engine: rewrap domain %d: %w", d.id, err)
	}
	d.rec = rec
	return true, nil
}

// unlockDomain opens a domain that was locked at open, and its file
// systems.
func (e *Engine) unlockDomain(ctx context.Context, d *domain) ([]string, error) {
	nd, err := e.openDomain(ctx, d.id, &d.rec)
	if err != nil {
		return nil, fmt.Errorf("engine: unlock domain %d: %w", d.id, err)
	}
	e.mu.Lock()
	e.domains[d.id] = nd
	var ids []uint64
	for id, rec := range e.locked {
		if rec.Domain == d.id {
			ids = append(ids, id)
		}
	}
	e.mu.Unlock()
	var names []string
	for _, id := range ids {
		e.mu.Lock()
		rec := e.locked[id]
		e.mu.Unlock()
		e.setSealing(id, nd.metaAEAD)
		fs, err := e.openFS(ctx, id, rec, nd)
		if err != nil {
			return names, fmt.Errorf("engine: open file system %q: %w", rec.Name, err)
		}
		e.mu.Lock()
		delete(e.locked, id)
		e.fss[id] = fs
		e.mu.Unlock()
		names = append(names, rec.Name)
	}
	return names, nil
}
