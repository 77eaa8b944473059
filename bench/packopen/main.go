// Command packopen measures what opening a replica's block store costs
// when it holds many pack files (blocks.Dir with a PackIndex in a Pebble
// store, as the engine opens it): the time of OpenDirPacked, the
// process's resident memory before and after, and point reads of packed
// blocks after it.
//
// Two steps, each its own process (the second is the measurement, run
// alone under timed):
//
//	go build -o /tmp/packopen ./bench/packopen
//	/tmp/packopen -dir D -fill -packs 100000 -blocks 8 -size 512   # setup
//	/work/bin/timed /tmp/packopen -dir D -reads 2000                 # measure
//
// The fill writes every pack through PutPack with file and directory
// syncs left out (setup, not measured) and syncs the file system once at
// the end.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv/pebblekv"
)

func main() {
	dir := flag.String("dir", "", "directory of the store (fresh for -fill)")
	fill := flag.Bool("fill", false, "write the store instead of opening it")
	packs := flag.Int("packs", 100000, "packs to write (-fill)")
	per := flag.Int("blocks", 8, "blocks per pack (-fill)")
	size := flag.Int("size", 512, "bytes per block (-fill)")
	reads := flag.Int("reads", 2000, "random packed blocks to read after the open")
	flag.Parse()
	if *dir == "" || *packs < 1 || *per < 1 || *size < 16 {
		flag.Usage()
		os.Exit(2)
	}
	var err error
	if *fill {
		err = runFill(*dir, *packs, *per, *size)
	} else {
		err = runOpen(*dir, *reads)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "packopen:", err)
		os.Exit(1)
	}
}

var hashKey = []byte("packopen hash key, 32 bytes long")

// noSync leaves out file and directory syncs: the fill is setup.
type noSync struct{ disk.FS }

func (n noSync) Create(name string) (disk.File, error) {
	f, err := n.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (noSync) SyncDir(string) error { return nil }

type noSyncFile struct{ disk.File }

func (noSyncFile) Sync() error { return nil }

func open(dir string, fsys func(disk.FS) disk.FS) (*blocks.Dir, *pebblekv.Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blocks"), 0o755); err != nil {
		return nil, nil, err
	}
	osfs, err := disk.NewOS(dir)
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	st, err := pebblekv.Open(filepath.Join(dir, "kv"), pebblekv.Options{})
	if err != nil {
		return nil, nil, err
	}
	kvOpen := time.Since(start)
	h, err := blocks.NewHasher(hashKey)
	if err != nil {
		return nil, nil, err
	}
	start = time.Now()
	d, err := blocks.OpenDirPacked(fsys(osfs), "blocks", blocks.Keys{Hasher: h}, blocks.PackIndex{KV: st, Prefix: []byte("p")})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	fmt.Printf("opened the metadata store in %.1f ms, the block store in %.1f ms\n",
		float64(kvOpen.Microseconds())/1000, float64(time.Since(start).Microseconds())/1000)
	return d, st, nil
}

func block(pack, i, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, uint64(pack))
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	return b
}

func runFill(dir string, packs, per, size int) error {
	d, st, err := open(dir, func(f disk.FS) disk.FS { return noSync{f} })
	if err != nil {
		return err
	}
	h, _ := blocks.NewHasher(hashKey)
	ctx := context.Background()
	start := time.Now()
	ids := make([]blocks.ID, per)
	data := make([][]byte, per)
	for p := range packs {
		for i := range per {
			data[i] = block(p, i, size)
			ids[i] = h.Sum(data[i])
		}
		if err := d.PutPack(ctx, ids, data); err != nil {
			return err
		}
	}
	if err := st.Close(); err != nil {
		return err
	}
	unix.Sync()
	fmt.Printf("fill: %d packs of %d blocks of %d bytes in %.1f s\n", packs, per, size, time.Since(start).Seconds())
	return nil
}

// rss returns the process's resident set size in KiB.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

func runOpen(dir string, reads int) error {
	runtime.GC()
	before := rss()
	var ru0, ru1 unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	start := time.Now()
	d, st, err := open(dir, func(f disk.FS) disk.FS { return f })
	if err != nil {
		return err
	}
	defer st.Close()
	took := time.Since(start)
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	runtime.GC()
	after := rss()
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	fmt.Printf("open: %.1f ms wall, %.1f ms CPU; RSS %d KiB before, %d KiB after (+%d KiB)\n",
		float64(took.Microseconds())/1000, float64(cpu.Microseconds())/1000, before, after, after-before)
	// Point reads of random packed blocks (the ids are found by walking).
	var ids []blocks.ID
	n := 0
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	wstart := time.Now()
	if err := d.Walk(ctx, func(id blocks.ID) error {
		n++
		if len(ids) < reads {
			ids = append(ids, id)
		} else if j := rng.IntN(n); j < reads {
			ids[j] = id
		}
		return nil
	}); err != nil {
		return err
	}
	fmt.Printf("walk: %d packed blocks in %.1f ms\n", n, float64(time.Since(wstart).Microseconds())/1000)
	rstart := time.Now()
	for _, id := range ids {
		if _, err := d.Get(ctx, id); err != nil {
			return err
		}
	}
	if len(ids) > 0 {
		fmt.Printf("get: %d random packed blocks, %.1f µs each; RSS %d KiB\n", len(ids), float64(time.Since(rstart).Microseconds())/float64(len(ids)), rss())
	}
	return nil
}
