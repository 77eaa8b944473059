package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// dataset is a deterministic tree: every file's content follows from the
// seed and the file's index.
type dataset struct {
	name  string
	seed  uint64
	files []dsFile
	dirs  []string
}

type dsFile struct {
	path string
	size int64
}

// datasetA is 1 GiB in 8 files of 128 MiB (research/baselines.md §2).
func datasetA(seed uint64) *dataset {
	d := &dataset{name: "A", seed: seed}
	for i := range 8 {
		d.files = append(d.files, dsFile{fmt.Sprintf("a%d.bin", i), 128 << 20})
	}
	return d
}

// datasetB is 100 000 files of 4 KiB in a0-9/b0-9/c0-9/f000-099.dat
// (1 111 directories), or fewer files when n is smaller.
func datasetB(seed uint64, n int) *dataset {
	d := &dataset{name: "B", seed: seed}
	for a := range 10 {
		d.dirs = append(d.dirs, fmt.Sprintf("a%d", a))
		for b := range 10 {
			d.dirs = append(d.dirs, fmt.Sprintf("a%d/b%d", a, b))
			for c := range 10 {
				d.dirs = append(d.dirs, fmt.Sprintf("a%d/b%d/c%d", a, b, c))
			}
		}
	}
	for i := range n {
		d.files = append(d.files, dsFile{fmt.Sprintf("a%d/b%d/c%d/f%03d.dat", i/10000, i/1000%10, i/100%10, i%100), 4096})
	}
	return d
}

func (d *dataset) bytes() int64 {
	var n int64
	for _, f := range d.files {
		n += f.size
	}
	return n
}

// fill writes file i's content at off into b.
func (d *dataset) fill(i int, off int64, b []byte) {
	r := rand.NewChaCha8(seedKey(d.seed, uint64(i)))
	// ChaCha8 is a stream: skip to off (files are written in order, so
	// off is a multiple of the chunk; regenerate from the start of the
	// chunk's 1 MiB span for simplicity).
	if off > 0 {
		skip := make([]byte, 1<<20)
		for left := off; left > 0; {
			n := min(left, int64(len(skip)))
			r.Read(skip[:n])
			left -= n
		}
	}
	r.Read(b)
}

// content returns file i's whole content (small files only).
func (d *dataset) content(i int) []byte {
	b := make([]byte, d.files[i].size)
	d.fill(i, 0, b)
	return b
}

// writeLocal writes the tree under dir.
func (d *dataset) writeLocal(dir string) error {
	for _, sub := range d.dirs {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, f := range d.files {
		fh, err := os.Create(filepath.Join(dir, f.path))
		if err != nil {
			return err
		}
		r := rand.NewChaCha8(seedKey(d.seed, uint64(i)))
		buf := make([]byte, min(f.size, 1<<20))
		for left := f.size; left > 0; {
			n := min(left, int64(len(buf)))
			r.Read(buf[:n])
			if _, err := fh.Write(buf[:n]); err != nil {
				fh.Close()
				return err
			}
			left -= n
		}
		if err := fh.Close(); err != nil {
			return err
		}
	}
	return nil
}

// writeNFS writes the tree at the root of an export over conns
// connections: small files with CREATE + UNSTABLE WRITE + COMMIT, large
// ones in 1 MiB UNSTABLE WRITEs (4 in flight) and COMMIT.
func (d *dataset) writeNFS(ctx context.Context, t target, conns int) error {
	s, err := t.dial(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	dirFH := map[string]proto.FH{"": s.root, ".": s.root}
	for _, sub := range d.dirs {
		parent := filepath.Dir(sub)
		fh, err := s.mkdir(ctx, dirFH[parent], filepath.Base(sub))
		if err != nil {
			return err
		}
		dirFH[sub] = fh
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, conns)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := t.dial(ctx)
			if err != nil {
				errc <- err
				return
			}
			defer s.close()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(d.files) {
					return
				}
				f := d.files[i]
				dir := dirFH[filepath.Dir(f.path)]
				if f.size <= 1<<20 {
					if _, err := s.createFile(ctx, dir, filepath.Base(f.path), d.content(i)); err != nil {
						errc <- err
						return
					}
					continue
				}
				cr, err := s.c.Create(ctx, dir, filepath.Base(f.path), proto.Guarded, proto.Sattr{Mode: &fileMode})
				if err != nil {
					errc <- fmt.Errorf("create %s: %w", f.path, err)
					return
				}
				r := rand.NewChaCha8(seedKey(d.seed, uint64(i)))
				err = s.writeLarge(ctx, cr.FH, f.size, 1<<20, 4, func(_ int64, b []byte) { r.Read(b) })
				if err != nil {
					errc <- fmt.Errorf("write %s: %w", f.path, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// verifyNFS checks that every file of the tree is on an export at its
// size, and that the content of every sample-th file (and of every large
// file) is exactly what was written.
func (d *dataset) verifyNFS(ctx context.Context, t target, sample int) error {
	s, err := t.dial(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	dirFH := map[string]proto.FH{".": s.root}
	for _, sub := range d.dirs {
		fh, _, err := s.lookupPath(ctx, sub)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		dirFH[sub] = fh
	}
	var next atomic.Int64
	var bad atomic.Int64
	var firstBad atomic.Value
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(d.files) {
					return
				}
				f := d.files[i]
				r, err := s.c.Lookup(ctx, dirFH[filepath.Dir(f.path)], filepath.Base(f.path))
				if err == nil && (r.Attr == nil || int64(r.Attr.Size) != f.size) {
					err = fmt.Errorf("size %v, want %d", r.Attr, f.size)
				}
				if err == nil && (f.size > 1<<20 || i%sample == 0) {
					err = d.compare(ctx, s, r.FH, i)
				}
				if err != nil {
					bad.Add(1)
					firstBad.CompareAndSwap(nil, fmt.Sprintf("%s: %v", f.path, err))
				}
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		return fmt.Errorf("%s: %d of %d files missing or wrong (first: %s)", t.name, n, len(d.files), firstBad.Load())
	}
	return nil
}

func (d *dataset) compare(ctx context.Context, s *session, fh proto.FH, i int) error {
	f := d.files[i]
	r := rand.NewChaCha8(seedKey(d.seed, uint64(i)))
	want := make([]byte, 1<<20)
	for off := int64(0); off < f.size; {
		rr, err := s.c.Read(ctx, fh, uint64(off), uint32(min(1<<20, f.size-off)))
		if err != nil {
			return err
		}
		if len(rr.Data) == 0 {
			return fmt.Errorf("short file at %d", off)
		}
		w := want[:len(rr.Data)]
		r.Read(w)
		if !bytes.Equal(rr.Data, w) {
			return fmt.Errorf("content differs in [%d, %d)", off, off+int64(len(w)))
		}
		off += int64(len(rr.Data))
	}
	return nil
}

// change is one of the failback benchmark's changes to the tree.
type change struct {
	path    string
	isNew   bool
	content []byte
}

// mutations picks 10 existing files to overwrite and 10 new files
// (research/baselines.md §4 mutate), all 4 KiB, from seed.
func (d *dataset) mutations(seed uint64) []change {
	r := rand.New(rand.NewPCG(seed, 0x6d75746174))
	var out []change
	picked := map[int]bool{}
	for len(out) < 10 {
		i := r.IntN(len(d.files))
		if picked[i] {
			continue
		}
		picked[i] = true
		out = append(out, change{path: d.files[i].path})
	}
	for k := range 10 {
		dir := d.dirs[len(d.dirs)-1-r.IntN(1000)] // a leaf directory
		if strings.Count(dir, "/") != 2 {
			dir = "a0/b0/c0"
		}
		out = append(out, change{path: fmt.Sprintf("%s/new%02d.dat", dir, k), isNew: true})
	}
	for k := range out {
		b := make([]byte, 4096)
		rand.NewChaCha8(seedKey(seed, uint64(1000+k))).Read(b)
		out[k].content = b
	}
	return out
}

func applyLocal(dir string, cs []change) error {
	for _, c := range cs {
		if err := os.WriteFile(filepath.Join(dir, c.path), c.content, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// applyNFS makes the changes over NFS: an overwrite is a FILE_SYNC WRITE
// of the whole 4 KiB at offset 0, a new file CREATE + WRITE + COMMIT.
func applyNFS(ctx context.Context, t target, cs []change) error {
	s, err := t.dial(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	for _, c := range cs {
		if c.isNew {
			dir, _, err := s.lookupPath(ctx, filepath.Dir(c.path))
			if err != nil {
				return err
			}
			if _, err := s.createFile(ctx, dir, filepath.Base(c.path), c.content); err != nil {
				return err
			}
			continue
		}
		fh, _, err := s.lookupPath(ctx, c.path)
		if err != nil {
			return err
		}
		if _, err := s.c.Write(ctx, fh, 0, c.content, proto.FileSync); err != nil {
			return fmt.Errorf("overwrite %s: %w", c.path, err)
		}
	}
	return nil
}

// verifyChanges reads every changed file back from an export.
func verifyChanges(ctx context.Context, t target, cs []change, timeout time.Duration) error {
	s, err := t.dial(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	deadline := time.Now().Add(timeout)
	for _, c := range cs {
		for {
			fh, attr, err := s.lookupPath(ctx, c.path)
			if err == nil && attr != nil && attr.Size == uint64(len(c.content)) {
				var got []byte
				if got, err = s.readAll(ctx, fh, attr.Size); err == nil && bytes.Equal(got, c.content) {
					break
				}
				if err == nil {
					err = errors.New("content differs")
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s on %s: %v", c.path, t.name, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}
