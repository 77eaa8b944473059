package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv/pebblekv"
)

// BenchmarkSmallFilePointReads: what the NFS path's point reads of small
// (inline) files cost the engine once their keys sit in compacted tables:
// GETATTR (the inode), LOOKUP (the dentry, then the inode) and READ of
// 4 KiB (the inode with its inline data), each of files picked at random,
// with Pebble's block cache cold (the engine just reopened; the
// operating system's page cache holds the tables) and warm (every file
// read once before). It is the figure for Pebble's data block size
// (pebblekv.Options): a larger block holds more files, so a cold point
// read loads, checks and caches more bytes for its one key.
//
//	go test ./internal/engine -run '^$' -bench SmallFilePointReads -benchtime 1x
func BenchmarkSmallFilePointReads(b *testing.B) {
	const (
		dirs    = 50
		perDir  = 200
		files   = dirs * perDir
		sampled = 2000 // files per measured pass
	)
	ctx := context.Background()
	dir := b.TempDir()
	po := serverKV
	o := openPointReadEngine(b, dir, po)
	fs := o.fs
	data := make([]byte, 4096)
	type file struct {
		dir, ino uint64
		name     string
	}
	all := make([]file, files)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			buf := make([]byte, len(data))
			for d := w; d < dirs; d += 8 {
				dino := must(fs.Mkdir(ctx, RootCred, RootIno, fmt.Sprint("d", d), SetAttr{}))(b).Attr.Ino
				for i := range perDir {
					for j := range buf {
						buf[j] = byte(rng.Uint32())
					}
					name := fmt.Sprintf("f%04d", i)
					en, err := fs.Create(ctx, RootCred, dino, name, CreateGuarded, SetAttr{}, 0)
					if err == nil {
						_, _, err = fs.Write(ctx, RootCred, en.Attr.Ino, 0, buf)
					}
					if err != nil {
						b.Error(err)
						return
					}
					all[d*perDir+i] = file{dino, en.Attr.Ino, name}
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	// Where a store's old files are: compacted out of the memtable and L0.
	if err := o.st.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := o.st.DB().Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatal(err)
	}
	o.close()
	ops := []struct {
		name string
		do   func(fs *FS, f file) error
	}{
		{"getattr", func(fs *FS, f file) error { _, err := fs.GetAttr(ctx, f.ino); return err }},
		{"lookup", func(fs *FS, f file) error { _, err := fs.Lookup(ctx, RootCred, f.dir, f.name); return err }},
		{"read", func(fs *FS, f file) error {
			got, _, _, err := fs.Read(ctx, RootCred, f.ino, 0, len(data))
			if err == nil && len(got) != len(data) {
				err = fmt.Errorf("read %d bytes of %d", len(got), len(data))
			}
			return err
		}},
	}
	rng := rand.New(rand.NewPCG(7, 7))
	// pass returns the wall time and the process's CPU time per
	// operation (the CPU figure is the steadier one on a shared machine).
	pass := func(fs *FS, do func(fs *FS, f file) error) (wall, cpu time.Duration) {
		start, cpu0 := time.Now(), processCPU(b)
		for _, i := range rng.Perm(files)[:sampled] {
			if err := do(fs, all[i]); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start) / sampled, (processCPU(b) - cpu0) / sampled
	}
	b.ResetTimer()
	for range b.N {
		// Each kind of pass three times, the kinds in turn; the median
		// is reported (this machine is shared and noisy).
		const rounds = 3
		// Per kind of operation: cold wall, cold CPU, warm wall, warm CPU.
		figs := make([][4][]time.Duration, len(ops))
		for range rounds {
			for i, op := range ops {
				// Cold: a fresh block cache, each file met once.
				o := openPointReadEngine(b, dir, po)
				w, c := pass(o.fs, op.do)
				figs[i][0], figs[i][1] = append(figs[i][0], w), append(figs[i][1], c)
				// Warm: every file read once, then the same kind of pass.
				for _, f := range all {
					if err := op.do(o.fs, f); err != nil {
						b.Fatal(err)
					}
				}
				w, c = pass(o.fs, op.do)
				figs[i][2], figs[i][3] = append(figs[i][2], w), append(figs[i][3], c)
				o.close()
			}
		}
		for i, op := range ops {
			for j, unit := range []string{"-cold-µs", "-cold-cpu-µs", "-warm-µs", "-warm-cpu-µs"} {
				slices.Sort(figs[i][j])
				b.ReportMetric(float64(figs[i][j][rounds/2].Nanoseconds())/1e3, op.name+unit)
			}
		}
	}
}

type pointReadEngine struct {
	e  *Engine
	fs *FS
	st *pebblekv.Store
}

// openPointReadEngine opens (or makes) the engine kept in dir and its file
// system "bench"; close closes both.
func openPointReadEngine(b *testing.B, dir string, po pebblekv.Options) *pointReadEngine {
	b.Helper()
	e, fs, st := openBenchEngine(b, dir, po)
	return &pointReadEngine{e: e, fs: fs, st: st}
}

func (o *pointReadEngine) close() {
	o.e.Close()
	o.st.Close()
}
