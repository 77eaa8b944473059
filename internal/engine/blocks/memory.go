package blocks

import (
	"context"
	"fmt"
	"sync"
)

// Memory is an in-memory Store (tests). It stores blocks as the Dir store
// would (sealed when the keys say so) and verifies them on Get.
type Memory struct {
	keys Keys

	mu     sync.Mutex // guards the fields below
	blocks map[ID][]byte
	stats  Stats
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store.
func NewMemory(keys Keys) *Memory { return &Memory{keys: keys, blocks: map[ID][]byte{}} }

func (m *Memory) Put(_ context.Context, id ID, data []byte) error {
	stored := append([]byte(nil), data...)
	if m.keys.Sealer != nil {
		var err error
		if stored, err = m.keys.Sealer.Seal(id, data); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.blocks[id]; ok {
		return nil
	}
	m.blocks[id] = stored
	m.stats.Puts++
	m.stats.PutBytes += uint64(len(data))
	return nil
}

func (m *Memory) Sync(context.Context) error { return nil }

func (m *Memory) Get(_ context.Context, id ID) ([]byte, error) {
	m.mu.Lock()
	stored, ok := m.blocks[id]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	data := append([]byte(nil), stored...)
	var err error
	if m.keys.Sealer != nil {
		data, err = m.keys.Sealer.Open(id, stored)
	}
	if err == nil && m.keys.Hasher.Sum(data) != id {
		err = fmt.Errorf("%w: %s: content does not match its id", ErrCorrupt, id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.stats.CorruptReads++
		return nil, err
	}
	m.stats.Gets++
	m.stats.GetBytes += uint64(len(data))
	return data, nil
}

func (m *Memory) Has(_ context.Context, id ID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.blocks[id]
	return ok, nil
}

func (m *Memory) Delete(_ context.Context, id ID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.blocks[id]; ok {
		delete(m.blocks, id)
		m.stats.Deletes++
		m.stats.DeletedBytes += uint64(len(b))
	}
	return nil
}

func (m *Memory) Walk(ctx context.Context, fn func(ID) error) error {
	m.mu.Lock()
	ids := make([]ID, 0, len(m.blocks))
	for id := range m.blocks {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

func (m *Memory) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Corrupt flips a bit of a stored block (tests).
func (m *Memory) Corrupt(id ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.blocks[id]; ok && len(b) > 0 {
		b[len(b)/2] ^= 1
	}
}
