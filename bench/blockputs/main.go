// Command blockputs measures the system calls of three ways a replica could
// store pushed 1 MiB blocks, nothing else (no sealing, no checksums, no
// transport), so that the store's format can be weighed by what it saves:
//
//   - files: what blocks.Dir does today, one file per block in one of 256
//     fan-out directories (create a temporary file, write, fdatasync,
//     fadvise DONTNEED, close, rename), the blocks of a batch 8 at once,
//     then one fsync per fan-out directory the batch touched;
//   - pack: one append-only file per batch (write every block, one
//     fdatasync, fadvise DONTNEED), then one fsync of its directory;
//   - direct: files, but each file's whole 4 KiB pages written with
//     O_DIRECT from an aligned buffer and only its tail through the page
//     cache, so no fadvise (a replica's cold puts so written were measured
//     in bench/replication, repl15, and not landed).
//
// It prints wall time and the process's CPU per GiB. Run it in a fresh
// directory on the disk the blocks would live on:
//
//	go run ./bench/blockputs -dir $(mktemp -d) -n 512 -batch 8 -mode pack
package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	dir := flag.String("dir", "", "a fresh directory (required)")
	n := flag.Int("n", 512, "blocks of 1 MiB to store")
	batch := flag.Int("batch", 8, "blocks per batch (a blocks frame, an apply)")
	mode := flag.String("mode", "files", "files, pack or direct")
	size := flag.Int("size", 1<<20, "bytes per block file (a sealed block: 1 MiB and its header)")
	flag.Parse()
	if *dir == "" || *batch < 1 || (*mode != "files" && *mode != "pack" && *mode != "direct") {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*dir, *n, *batch, *size, *mode); err != nil {
		fmt.Fprintln(os.Stderr, "blockputs:", err)
		os.Exit(1)
	}
}

func run(dir string, n, batch, size int, mode string) error {
	// Page-aligned, as O_DIRECT needs.
	raw := make([]byte, size+4096)
	off := 0
	for uintptr(unsafe.Pointer(&raw[off]))%4096 != 0 {
		off++
	}
	blk := raw[off : off+size]
	if _, err := rand.Read(blk); err != nil {
		return err
	}
	for i := range 256 {
		if err := os.MkdirAll(filepath.Join(dir, fmt.Sprintf("%02x", i)), 0o755); err != nil {
			return err
		}
	}
	packs := filepath.Join(dir, "packs")
	if err := os.MkdirAll(packs, 0o755); err != nil {
		return err
	}
	start, cpu0 := time.Now(), cpuTime()
	for b := range n / batch {
		var err error
		if mode != "pack" {
			err = putFiles(dir, blk, batch, mode == "direct")
		} else {
			err = putPack(filepath.Join(packs, fmt.Sprintf("%08d.pack", b)), blk, batch)
		}
		if err != nil {
			return err
		}
	}
	wall, cpu := time.Since(start), cpuTime()-cpu0
	stored := n / batch * batch
	fmt.Printf("%s batch=%d n=%d: %.2f s wall (%.0f MB/s), %.2f CPU-s per GiB\n", mode, batch, stored,
		wall.Seconds(), float64(stored)*(1<<20)/1e6/wall.Seconds(), cpu.Seconds()/(float64(stored)/1024))
	return nil
}

// putFiles stores one batch as blocks.Dir does: 8 puts at once, then the
// touched directories synced.
func putFiles(dir string, blk []byte, batch int, direct bool) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		dirs  = map[string]bool{}
		first error
	)
	sem := make(chan struct{}, 8)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	for range batch {
		var id [16]byte
		if _, err := rand.Read(id[:]); err != nil {
			return err
		}
		d := filepath.Join(dir, fmt.Sprintf("%02x", id[0]))
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			name := hex.EncodeToString(id[:])
			tmp := filepath.Join(d, "tmp-"+name)
			write := writeSynced
			if direct {
				write = writeDirect
			}
			if err := write(tmp, blk, 1); err != nil {
				fail(err)
				return
			}
			if err := os.Rename(tmp, filepath.Join(d, name)); err != nil {
				fail(err)
				return
			}
			mu.Lock()
			dirs[d] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	for d := range dirs {
		wg.Go(func() {
			if err := syncDir(d); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	return first
}

// putPack stores one batch as one file, then syncs its directory.
func putPack(name string, blk []byte, batch int) error {
	if err := writeSynced(name, blk, batch); err != nil {
		return err
	}
	return syncDir(filepath.Dir(name))
}

// writeSynced creates name with count copies of blk, fdatasyncs it and
// drops its pages from the cache.
func writeSynced(name string, blk []byte, count int) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	for range count {
		if _, err := f.Write(blk); err != nil {
			f.Close()
			return err
		}
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		f.Close()
		return err
	}
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) // advice
	return f.Close()
}

// writeDirect creates name with count copies of blk, its whole pages
// written with O_DIRECT and the tail through the page cache, and
// fdatasyncs it.
func writeDirect(name string, blk []byte, count int) error {
	fd, err := unix.Open(name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_DIRECT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	aligned := len(blk) &^ 4095
	for range count {
		if _, err := f.Write(blk[:aligned]); err != nil {
			f.Close()
			return err
		}
	}
	if aligned < len(blk) || count > 1 {
		if count > 1 {
			f.Close()
			return fmt.Errorf("direct: one block per file")
		}
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err == nil {
			_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_DIRECT)
		}
		if err == nil {
			_, err = f.Write(blk[aligned:])
		}
		if err != nil {
			f.Close()
			return err
		}
	}
	if err := unix.Fdatasync(fd); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// cpuTime returns the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
