package nfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// BenchmarkProbeCreates: the create probe of issue 16 (CREATE GUARDED, one
// 4 KiB FILE_SYNC WRITE, COMMIT per file, one file at a time per
// connection), on the real disk, with 1, 4 and 8 connections. It reports
// files/s, the durable commits per file (each one an fsync of the
// journal; group commit shares them between connections) and the median
// latency of each NFS procedure as the client sees it, and the CPU time
// of the process (server, client and Pebble's background work, user and
// system) per file: on the shared 2-core machine the wall-clock figures
// swing with other load, the CPU per file much less. disk-KiB/file is
// what the process wrote to the disk (/proc/self/io write_bytes) per
// file: WAL records, memtable flushes, and the zeros written ahead of
// the WAL (a fresh server filled every new log to 35 MB until 2026-12-05:
// 200 KiB per file here).
// Run: go test ./internal/nfs -run '^$' -bench ProbeCreates -benchtime 1x
func BenchmarkProbeCreates(b *testing.B) {
	for _, conns := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			v := newEnv(b, envOpt{dir: b.TempDir(), overwriteWAL: true})
			ctx := context.Background()
			const perConn = 1000
			for r := range b.N {
				before := v.fs.Stats().Commits
				cpu0 := processCPU(b)
				io0 := processWriteBytes(b)
				start := time.Now()
				var wg sync.WaitGroup
				var mu sync.Mutex
				var lat [3][]time.Duration
				for w := range conns {
					c := v.dial()
					root := v.mount(c, "/")
					dir, err := c.Mkdir(ctx, root, fmt.Sprintf("d%d-%d", r, w), proto.Sattr{})
					if err != nil {
						b.Fatal(err)
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						data := make([]byte, 4096)
						for i := range perConn {
							binary.LittleEndian.PutUint64(data, uint64(w)<<32|uint64(i))
							t0 := time.Now()
							res, err := c.Create(ctx, dir.FH, fmt.Sprintf("f%06d", i), proto.Guarded, proto.Sattr{})
							if err != nil {
								b.Error(err)
								return
							}
							t1 := time.Now()
							if _, err := c.Write(ctx, res.FH, 0, data, proto.FileSync); err != nil {
								b.Error(err)
								return
							}
							t2 := time.Now()
							if _, err := c.Commit(ctx, res.FH, 0, 0); err != nil {
								b.Error(err)
								return
							}
							t3 := time.Now()
							mu.Lock()
							lat[0] = append(lat[0], t1.Sub(t0))
							lat[1] = append(lat[1], t2.Sub(t1))
							lat[2] = append(lat[2], t3.Sub(t2))
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				for k, name := range []string{"create", "write", "commit"} {
					slices.Sort(lat[k])
					b.ReportMetric(float64(lat[k][len(lat[k])/2].Microseconds()), name+"-p50-µs")
				}
				files := conns * perConn
				b.ReportMetric(float64(files)/time.Since(start).Seconds(), "files/s")
				b.ReportMetric(float64(v.fs.Stats().Commits-before)/float64(files), "commits/file")
				b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(files), "cpu-µs/file")
				b.ReportMetric(float64(processWriteBytes(b)-io0)/1024/float64(files), "disk-KiB/file")
			}
		})
	}
}

// processCPU is the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processWriteBytes is what the process has had written to storage
// (write_bytes of /proc/self/io).
func processWriteBytes(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatal(err)
	}
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(line, []byte("write_bytes: ")); ok {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no write_bytes in /proc/self/io")
	return 0
}
