package nfs

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// BenchmarkSmallFileCreates: what nfs-cp does for a small file (CREATE,
// WRITE UNSTABLE, COMMIT), on the real disk, with 1 and 8 connections.
// Run: go test ./internal/nfs -run '^$' -bench SmallFileCreates -benchtime 1x
func BenchmarkSmallFileCreates(b *testing.B) {
	for _, conns := range []int{1, 8} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			v := newEnv(b, envOpt{dir: b.TempDir()})
			ctx := context.Background()
			data := make([]byte, 4096)
			const perConn = 1500
			for range b.N {
				start := time.Now()
				var wg sync.WaitGroup
				for w := range conns {
					c := v.dial()
					root := v.mount(c, "/")
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range perConn {
							res, err := c.Create(ctx, root, fmt.Sprintf("w%d-%d-%d", w, i, time.Now().UnixNano()), proto.Unchecked, proto.Sattr{})
							if err != nil {
								b.Error(err)
								return
							}
							if _, err := c.Write(ctx, res.FH, 0, data, proto.Unstable); err != nil {
								b.Error(err)
								return
							}
							if _, err := c.Commit(ctx, res.FH, 0, 0); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(conns*perConn)/time.Since(start).Seconds(), "files/s")
			}
		})
	}
}
