// Package controltest holds the fakes that tests of the control plane and
// of the layers above it share: a mount-target server that serves nothing
// and remembers what it was asked to serve.
package controltest

import (
	"context"
	"fmt"
	"sync"

	"github.com/regionfs/regionfs/internal/control"
)

// MountTargets is a control.MountTargetServer that remembers what it
// serves. It is safe for concurrent use.
type MountTargets struct {
	mu       sync.Mutex // guards the fields below
	serving  map[string]control.MountTargetSpec
	flushed  []string
	failNext error
	stopGate chan struct{}
	onUpdate func(control.MountTargetSpec)
}

var _ control.MountTargetServer = (*MountTargets)(nil)

// NewMountTargets returns a server that serves nothing yet.
func NewMountTargets() *MountTargets {
	return &MountTargets{serving: map[string]control.MountTargetSpec{}}
}

// Start records s as served (or fails with the error given to FailNext).
func (m *MountTargets) Start(_ context.Context, s control.MountTargetSpec) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failNext; err != nil {
		m.failNext = nil
		return err
	}
	m.serving[s.ID] = s
	return nil
}

// Update replaces a served mount target's spec; one not served is an
// error.
func (m *MountTargets) Update(_ context.Context, s control.MountTargetSpec) error {
	m.mu.Lock()
	f := m.onUpdate
	m.mu.Unlock()
	if f != nil {
		f(s)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.serving[s.ID]; !ok {
		return fmt.Errorf("update of %s, which is not served", s.ID)
	}
	m.serving[s.ID] = s
	return nil
}

// OnUpdate makes Update call f with every spec it is given, first (the
// control plane calls it once it has committed a change: what else is
// durable by then).
func (m *MountTargets) OnUpdate(f func(control.MountTargetSpec)) {
	m.mu.Lock()
	m.onUpdate = f
	m.mu.Unlock()
}

// Stop forgets a mount target; while HoldStops holds them, it waits.
func (m *MountTargets) Stop(_ context.Context, id string) error {
	m.mu.Lock()
	gate := m.stopGate
	m.mu.Unlock()
	if gate != nil {
		<-gate
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.serving, id)
	return nil
}

// Flush records that the buffered writes of the file system fsID were
// made durable (there are none: nothing is served).
func (m *MountTargets) Flush(_ context.Context, fsID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flushed = append(m.flushed, fsID)
	return nil
}

// Flushed returns the file systems Flush was called for, in order.
func (m *MountTargets) Flushed() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.flushed...)
}

// Spec returns what the mount target id is served with.
func (m *MountTargets) Spec(id string) (control.MountTargetSpec, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.serving[id]
	return s, ok
}

// Serving returns how many mount targets are served.
func (m *MountTargets) Serving() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.serving)
}

// FailNext makes the next Start fail with err.
func (m *MountTargets) FailNext(err error) {
	m.mu.Lock()
	m.failNext = err
	m.mu.Unlock()
}

// HoldStops makes Stop wait until release is called.
func (m *MountTargets) HoldStops() (release func()) {
	gate := make(chan struct{})
	m.mu.Lock()
	m.stopGate = gate
	m.mu.Unlock()
	return func() { close(gate) }
}
