package control

import "context"

// Hooks for this package's external tests (package control_test), which
// share the fakes of package controltest with the layers above.

var (
	AccessPointIDPattern = apIDPattern
)

// PokeForTest wakes the transition worker (after a test moved its clock).
func (r *Region) PokeForTest() { r.poke() }

// CreateFileSystemForTest creates a file system that stays creating for
// the rest of the test: its transition is due long after it.
func (r *Region) CreateFileSystemForTest(ctx context.Context, in CreateFileSystemInput) (FileSystem, error) {
	r.mu.Lock()
	delay := r.o.TransitionDelay
	r.o.TransitionDelay = 1 << 62
	r.mu.Unlock()
	fs, err := r.CreateFileSystem(ctx, in)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.o.TransitionDelay = delay
	if err == nil {
		n := *r.fss[fs.ID]
		n.Since = r.now().Add(1 << 61) // due long after the test
		r.fss[fs.ID] = &n
	}
	return fs, err
}
