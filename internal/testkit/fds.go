package testkit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// OpenFiles counts the process's descriptors of files under root (a
// directory path as the tests made it), and of those the ones whose name
// is gone: a guard that descriptors kept open (blocks.Descs) are closed
// when their files are deleted. Linux only (/proc/self/fd).
func OpenFiles(t testing.TB, root string) (open, deleted int) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || !strings.HasPrefix(p, root+"/") {
			continue
		}
		open++
		if strings.HasSuffix(p, " (deleted)") {
			deleted++
		}
	}
	return open, deleted
}
