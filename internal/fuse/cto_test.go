package fuse

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/client"
)

// otherMount mounts m's server a second time (its own session and FUSE
// mount): another machine's mount of the same file system.
func (m *testMount) otherMount(t *testing.T) string {
	t.Helper()
	sess := client.NewSession(client.SessionOptions{
		Logger: logger(t),
		Dial: func(ctx context.Context) (client.Dialed, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, "tcp", m.addr)
			if err != nil {
				return client.Dialed{}, err
			}
			return client.Dialed{Conn: client.NewConn(nc), Addr: m.addr}, nil
		},
	})
	f := New(Options{Session: sess, Root: m.f.o.Root, Logger: logger(t), AttrTimeout: m.attrTimeout, EntryTimeout: m.attrTimeout})
	dir := t.TempDir()
	srv, err := f.Mount(dir, f.MountOptions("fs-test-b:/"))
	if err != nil {
		t.Fatal(err)
	}
	// Before m's cleanup (registered earlier), which stops the server.
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount of the second mount: %v", err)
		}
		sess.Close()
	})
	return dir
}

// TestCloseToOpenBetweenMounts: a file changed and closed through one
// mount is read whole, as changed, by an open through another mount right
// after the close, while that mount's kernel still holds the file's
// attributes (read or stat'd just before, well within the attribute
// timeout): the open's GETATTR sees the change and the kernel's cached
// size and pages go, whether the file grew, shrank or kept its size.
func TestCloseToOpenBetweenMounts(t *testing.T) {
	m := newMount(t)
	b := m.otherMount(t)
	pa, pb := filepath.Join(m.dir, "f"), filepath.Join(b, "f")
	for i, want := range []string{
		"first",
		"the second version, longer",
		"short",
		"SHORT",
		"the fifth version is longer again\n",
	} {
		// b's kernel caches the attributes (and, after the first round,
		// the pages) of the last version.
		if i > 0 {
			if _, err := os.ReadFile(pb); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(pb); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(pa, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(pb)
		if err != nil || string(got) != want {
			t.Fatalf("version %d read through the other mount right after its close: %q, %v; want %q", i, got, err, want)
		}
		st, err := os.Stat(pb)
		if err != nil || st.Size() != int64(len(want)) {
			t.Fatalf("version %d: size through the other mount %v, %v; want %d", i, st.Size(), err, len(want))
		}
	}
}
